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
