using System.Diagnostics;
using System.Formats.Asn1;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using NUnit.Framework;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Resilience;

/// <summary>
/// Crash safety, proven: FactoryCa runs as a child process (<c>dotnet FactoryCa.dll serve</c>, EST on a free port, sync
/// off) under concurrent EST load from several mTLS stations, and is killed with SIGKILL at random moments. After every
/// kill and every restart the journal verifies against the root, its seqs are contiguous, no serial appears twice, and
/// every certificate any station received is in the journal.
/// </summary>
/// <remarks>
/// 30 kills per normal run. Soak mode: <c>OFFLINEPKI_SOAK=1</c> runs 300 kills, <c>OFFLINEPKI_SOAK=N</c> (N &gt; 1) runs N.
/// </remarks>
[NonParallelizable]
public class CrashSafetyTests
{
    private const int Stations = 4;

    private static int Kills()
    {
        var soak = Environment.GetEnvironmentVariable("OFFLINEPKI_SOAK");
        if (string.IsNullOrEmpty(soak))
        {
            return 30;
        }

        int n = int.Parse(soak, CultureInfo.InvariantCulture);
        return n <= 1 ? 300 : n;
    }

    [Test]
    public async Task FactoryCa_killed_with_SIGKILL_under_EST_load_never_loses_an_acknowledged_certificate()
    {
        var pki = TestPki.Default;
        string id = Guid.NewGuid().ToString("N")[..8];
        string dataDir = "data/crash-" + id;
        int port = FreePort();
        var config = JsonNode.Parse(File.ReadAllText(pki.PathOf("factoryca.json")))!;
        var f = config["FactoryCa"]!;
        f["DataDirectory"] = dataDir;
        f["Est"]!["Listen"] = $"https://127.0.0.1:{port}";
        f["Sync"]!["Enabled"] = false;
        f["Journal"]!["CheckpointEveryEntries"] = 7;
        string configPath = pki.PathOf($"factoryca-crash-{id}.json");
        File.WriteAllText(configPath, config.ToJsonString());
        string journalDir = Path.Combine(Path.GetDirectoryName(configPath)!, dataDir, "journal");
        string estBase = $"https://127.0.0.1:{port}/.well-known/est";

        var received = new System.Collections.Concurrent.ConcurrentBag<byte[]>();
        var clients = Enumerable.Range(0, Stations).Select(i => StationClient(pki, i % 2 == 0 ? "station-01" : "station-02")).ToArray();
        var random = new Random(1122);
        int kills = Kills(), requests = 0, failed = 0, failedBeforeKill = 0;
        var startup = TimeSpan.Zero;
        string? firstError = null;
        try
        {
            for (int k = 0; k < kills; k++)
            {
                using var process = FactoryProcess.Start(configPath);
                try
                {
                    var sw = Stopwatch.StartNew();
                    await FactoryProcess.WaitReadyAsync(clients[0], estBase, process);
                    startup += sw.Elapsed;
                    Check(journalDir, pki, received, $"after restart {k}");

                    using var stop = new CancellationTokenSource();
                    bool killed = false;
                    var load = clients.Select((c, s) => Task.Run(async () =>
                    {
                        int n = 0;
                        while (!stop.IsCancellationRequested)
                        {
                            string device = $"CRASH-{id}-{k}-{s}-{n++}";
                            Interlocked.Increment(ref requests);
                            try
                            {
                                received.Add(await EnrollAsync(c, estBase, device, stop.Token));
                            }
#pragma warning disable CA1031 // the kill breaks requests in flight; only certificates actually received count
                            catch (Exception ex)
#pragma warning restore CA1031
                            {
                                Interlocked.Increment(ref failed);
                                if (!Volatile.Read(ref killed))
                                {
                                    Interlocked.Increment(ref failedBeforeKill);
                                    Interlocked.CompareExchange(ref firstError, ex.Message, null);
                                }
                            }
                        }
                    })).ToArray();

                    await Task.Delay(random.Next(150, 700));
                    Volatile.Write(ref killed, true);
                    process.Kill(entireProcessTree: true); // SIGKILL on Linux
                    await stop.CancelAsync();
                    await process.WaitForExitAsync();
                    await Task.WhenAll(load);
                }
                finally
                {
                    if (!process.HasExited)
                    {
                        process.Kill(entireProcessTree: true);
                    }
                }

                Check(journalDir, pki, received, $"after kill {k}");
            }
        }
        finally
        {
            foreach (var c in clients)
            {
                c.Dispose();
            }
        }

        TestContext.Out.WriteLine($"{kills} SIGKILLs, {requests} EST requests, {received.Count} certificates received, {failed} requests broken by kills ({failedBeforeKill} failed before a kill: {firstError}); mean startup {startup.TotalMilliseconds / kills:F0} ms");
        Assert.That(received, Is.Not.Empty);
    }

    /// <summary>The journal verifies, seqs are contiguous, serials are unique, and every received certificate is in it.</summary>
    private static void Check(string journalDir, TestPki pki, IEnumerable<byte[]> received, string when)
    {
        var report = JournalFileVerifier.Verify(journalDir, pki.Root);
        var reader = JournalFileReader.Open(Path.Combine(journalDir, JournalFileFormat.FileName));
        ulong expected = 1;
        var serials = new HashSet<string>(StringComparer.Ordinal);
        var fingerprints = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in reader.ReadFrom(1))
        {
            Assert.That(e.Seq, Is.EqualTo(expected++), $"{when}: seqs are contiguous");
            if (e.Type == EntryType.CertificateIssued)
            {
                var der = CertificateIssued.Parser.ParseFrom(e.Payload).Certificate.ToByteArray();
                using var cert = X509CertificateLoader.LoadCertificate(der);
                Assert.That(serials.Add(cert.SerialNumber), Is.True, $"{when}: serial {cert.SerialNumber} appears twice");
                fingerprints.Add(Convert.ToHexString(SHA256.HashData(der)));
            }
        }

        Assert.That(expected - 1, Is.EqualTo(report.HeadSeq), $"{when}: the reader and the verifier agree on the head");
        var missing = received.Select(d => Convert.ToHexString(SHA256.HashData(d))).Where(fp => !fingerprints.Contains(fp)).ToList();
        Assert.That(missing, Is.Empty, $"{when}: certificates received by stations but missing from the journal");
    }

    private static async Task<byte[]> EnrollAsync(HttpClient client, string estBase, string deviceId, CancellationToken cancellationToken)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest($"CN={deviceId}, SERIALNUMBER={deviceId}", key, HashAlgorithmName.SHA256).CreateSigningRequest();
        using var content = new StringContent(Convert.ToBase64String(csr));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/pkcs10");
        using var response = await client.PostAsync(estBase + "/simpleenroll", content, cancellationToken);
        string body = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"EST {(int)response.StatusCode}: {body}");
        }

        return CertsOnlyLeaf(Convert.FromBase64String(body));
    }

    /// <summary>The first certificate of an RFC 7030 §4.1.3 certs-only CMS SignedData (RFC 5652 §5.1).</summary>
    private static byte[] CertsOnlyLeaf(byte[] cms)
    {
        var contentInfo = new AsnReader(cms, AsnEncodingRules.BER).ReadSequence();
        contentInfo.ReadObjectIdentifier();
        var signedData = contentInfo.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 0)).ReadSequence();
        signedData.ReadInteger();
        signedData.ReadSetOf();
        signedData.ReadSequence();
        var certs = signedData.ReadSetOf(new Asn1Tag(TagClass.ContextSpecific, 0));
        return certs.ReadEncodedValue().ToArray();
    }

    private static HttpClient StationClient(TestPki pki, string station)
    {
        var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromSeconds(30), ConnectTimeout = TimeSpan.FromSeconds(5) };
        handler.SslOptions.ClientCertificates = [pki.CertWithKey(station)];
        var tlsCa = pki.Cert("tls-ca");
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) =>
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(tlsCa);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return cert is X509Certificate2 c && chain.Build(c);
        };
        return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(20) };
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}
