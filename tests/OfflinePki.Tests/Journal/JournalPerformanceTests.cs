using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using NUnit.Framework;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using static OfflinePki.Tests.Journal.JournalTestData;

namespace OfflinePki.Tests.Journal;

/// <summary>Throughput measurements; explicit so the normal suite stays fast.</summary>
[Explicit("measurement")]
public class JournalPerformanceTests
{
    [TestCase(20_000)]
    public void Verifier_throughput(int n)
    {
        var b = new Builder();
        var first = b.AddCertificate("dev-p");
        var payload = first.Payload;
        for (int i = 1; i < n; i++)
        {
            b.Add(EntryType.CertificateIssued, CertificateIssued.Parser.ParseFrom(payload));
            if (i % 1000 == 0)
            {
                b.AddCheckpoint();
            }
        }

        var der = CertificateIssued.Parser.ParseFrom(payload).Certificate.ToByteArray();
        var parts = DerCertificateParts.Parse(der);
        using var caKey = M.IssuingCa.GetECDsaPublicKey()!;
        var raw = Stopwatch.StartNew();
        for (int i = 0; i < n; i++)
        {
            if (!caKey.VerifyData(parts.Tbs.Span, parts.Signature.Span, System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.DSASignatureFormat.Rfc3279DerSequence))
            {
                throw new InvalidOperationException();
            }
        }

        TestContext.Out.WriteLine($"raw ECDSA P-256 verify: {raw.Elapsed.TotalMicroseconds / n:F1} µs each");

        foreach (var (materialize, touch) in new[] { (false, false), (true, false), (true, true), (false, false), (true, false), (true, true) })
        {
            using var v = new JournalChainVerifier(M.Root) { MaterializeIssuedCertificates = materialize };
            var sw = Stopwatch.StartNew();
            foreach (var e in b.Entries)
            {
                var ve = v.Accept(e);
                if (touch)
                {
                    ve.IssuedCertificate?.Dispose();
                }
            }

            sw.Stop();
            TestContext.Out.WriteLine($"materialize={materialize} touched={touch}: {b.Entries.Count} entries in {sw.Elapsed.TotalMilliseconds:F0} ms = {sw.Elapsed.TotalMicroseconds / b.Entries.Count:F1} µs/entry");
        }
    }
}

/// <summary>Group-commit throughput and recovery time; explicit.</summary>
[Explicit("measurement")]
public class JournalWriterPerformanceTests
{
    [TestCase(32, 2000)]
    public async Task Group_commit_throughput(int stations, int perStation)
    {
        var dir = Path.Combine(Path.GetTempPath(), "offlinepki-tests", "perf-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var options = new JournalWriterOptions { Directory = dir, CheckpointEveryEntries = 1000 };
            var genesis = new GenesisParameters(M.FactoryId, [M.IssuingCa.RawData], new byte[32]);
            var cert = M.DeviceCertificate("dev-perf");
            var sw = Stopwatch.StartNew();
            await using (var w = await JournalWriter.OpenOrCreateAsync(options, M.SignerKey, M.SignerCert, genesis, TimeProvider.System,
                Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance))
            {
                await Task.WhenAll(Enumerable.Range(0, stations).Select(s => Task.Run(async () =>
                {
                    for (int i = 0; i < perStation; i++)
                    {
                        await w.AppendAsync(EntryType.CertificateIssued, new CertificateIssued
                        {
                            Certificate = Google.Protobuf.ByteString.CopyFrom(cert),
                            DeviceId = $"dev-{s}-{i}",
                            StationId = "station-" + s,
                        });
                    }
                })));
                sw.Stop();
                TestContext.Out.WriteLine($"{stations} stations x {perStation}: {w.Appends} appends, {w.Fsyncs} fsyncs, {w.Checkpoints} checkpoints in {sw.ElapsedMilliseconds} ms = {w.Appends / sw.Elapsed.TotalSeconds:F0} appends/s, {(double)w.Appends / w.Fsyncs:F1} appends/fsync");
            }

            sw.Restart();
            await using (var w = await JournalWriter.OpenOrCreateAsync(options, M.SignerKey, M.SignerCert, genesis, TimeProvider.System,
                Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance))
            {
                TestContext.Out.WriteLine($"reopen (recovery) of {w.Head.Seq} entries: {sw.ElapsedMilliseconds} ms");
                sw.Restart();
                long n = w.ReadFrom(1).LongCount();
                TestContext.Out.WriteLine($"ReadFrom(1) of {n} entries: {sw.ElapsedMilliseconds} ms");
            }

            sw.Restart();
            var report = JournalFileVerifier.Verify(dir, M.Root);
            TestContext.Out.WriteLine($"JournalFileVerifier of {report.Entries} entries: {sw.ElapsedMilliseconds} ms");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
