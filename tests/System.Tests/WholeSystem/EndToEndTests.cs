using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;
using OfflinePki.FactoryCa;
using OfflinePki.MirrorCa;
using OfflinePki.Registry;
using OfflinePki.Sync;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.WholeSystem;

/// <summary>
/// Whole-system test: both daemons on loopback, from their generated configs. Stations enroll over EST/mTLS, the
/// factory syncs its journal over gRPC/mTLS, the mirror revokes, and openssl checks the CRL and the OCSP answers.
/// </summary>
[NonParallelizable]
public class EndToEndTests
{
    private TestPki _pki = null!;
    private BothDaemons _daemons = null!;
    private WebApplication _mirror = null!;
    private WebApplication _factory = null!;
    private string _mirrorHttp = null!;
    private string _estBase = null!;
    private HttpClient _station = null!;

    [OneTimeSetUp]
    public async Task StartBothDaemons()
    {
        _pki = TestPki.Create("F1");
        _daemons = await BothDaemons.StartAsync(_pki);
        _mirror = _daemons.Mirror;
        _factory = _daemons.Factory;
        _mirrorHttp = _daemons.MirrorHttp;
        _estBase = _daemons.FactoryHttps + "/.well-known/est";

        _station = _pki.MtlsClient("station-01");
    }

    [OneTimeTearDown]
    public async Task StopBothDaemons()
    {
        _station.Dispose();
        await _daemons.DisposeAsync();
    }

    [Test]
    public async Task Enroll_sync_revoke_then_CRL_and_OCSP_agree_with_openssl()
    {
        // 1. 120 devices over EST: more than 64 KiB of journal, so one push exceeds any small-request body limit.
        var issued = new List<X509Certificate2>();
        for (int i = 1; i <= 120; i++)
        {
            issued.Add(await EnrollAsync($"E2E-{i:D5}"));
        }

        Assert.That(issued.Select(c => c.SerialNumber).Distinct().Count(), Is.EqualTo(120));

        // 2. Sync through the daemon's control socket, as `FactoryCa sync-now` does.
        Assert.That(await SyncNowCommand.RunAsync(_pki.PathOf("factoryca.json"), CancellationToken.None), Is.EqualTo(0));
        var registry = _mirror.Services.GetRequiredService<MirrorRegistry>();
        var journal = registry.GetSummary().Factories.Single();
        var factoryHead = _factory.Services.GetRequiredService<OfflinePki.Journal.JournalWriter>().Head;
        Assert.That(journal.HeadSeq, Is.EqualTo(factoryHead.Seq), "the mirror holds the whole journal up to the sync checkpoint");
        Assert.That(journal.Certificates, Is.EqualTo(120));

        // A second sync is a no-op.
        var client = _factory.Services.GetRequiredService<JournalSyncClient>();
        var again = await client.SyncOnceAsync(CancellationToken.None);
        Assert.That(again.EntriesApplied, Is.Zero);

        // 3. Revoke two devices with the CLI verb, durably.
        var revoked = new[] { issued[1], issued[4] };
        foreach (var cert in revoked)
        {
            var output = new StringWriter();
            int exit = MirrorCaCli.Create().Parse(["revoke", "--config", _pki.PathOf("mirrorca.json"), "--serial", cert.SerialNumber, "--reason", "keyCompromise"])
                .Invoke(new global::System.CommandLine.InvocationConfiguration { Output = output, Error = output });
            Assert.That(exit, Is.EqualTo(0), output.ToString());
        }

        // 4. The CRL, fetched over HTTP, verifies with openssl and lists exactly the revoked serials.
        using var http = new HttpClient();
        var crl = await http.GetByteArrayAsync($"{_mirrorHttp}/crl/F1.crl");
        string crlPath = _pki.PathOf("e2e.crl");
        await File.WriteAllBytesAsync(crlPath, crl);
        var crlText = Tool.OpenSsl("crl", "-inform", "DER", "-in", crlPath, "-noout", "-text", "-CAfile", _pki.PathOf("issuing-ca-F1.crt")).EnsureSuccess("openssl crl");
        Assert.That(crlText.StdErr + crlText.StdOut, Does.Contain("verify OK"));
        foreach (var cert in revoked)
        {
            Assert.That(crlText.StdOut, Does.Contain(cert.SerialNumber));
        }

        Assert.That(crlText.StdOut, Does.Not.Contain(issued[0].SerialNumber));

        // 5. openssl ocsp: good, revoked, and a certificate minted outside the journal with the CA key: revoked.
        Assert.That(Ocsp(issued[0]), Does.Contain(": good"));
        Assert.That(Ocsp(issued[1]), Does.Contain(": revoked"));
        using var rogueKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var rogueReq = new CertificateRequest("CN=ROGUE, SERIALNUMBER=ROGUE-1", rogueKey, HashAlgorithmName.SHA256);
        using var ca = _pki.IssuingCa;
        using var caKey = ca.GetECDsaPrivateKey()!;
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] = (byte)((serial[0] & 0x7F) | 0x01);
        using var rogue = rogueReq.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey),
            DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddYears(1), serial);
        Assert.That(Ocsp(rogue), Does.Contain(": revoked"));

        // 6. The journal verifies against the root alone.
        string journalPath = Path.Combine(_pki.Directory, "data", "factory-F1", "journal", "journal.log");
        Assert.That(VerifyCommand.Run(journalPath, _pki.PathOf("root-ca.crt")), Is.EqualTo(0));
    }

    private string Ocsp(X509Certificate2 cert)
    {
        string path = _pki.PathOf($"ocsp-{cert.SerialNumber}.pem");
        File.WriteAllText(path, cert.ExportCertificatePem());
        var r = Tool.OpenSsl("ocsp", "-issuer", _pki.PathOf("issuing-ca-F1.crt"), "-cert", path, "-url", _mirrorHttp + "/ocsp",
            "-CAfile", _pki.PathOf("root-ca.crt")).EnsureSuccess("openssl ocsp");
        Assert.That(r.StdErr + r.StdOut, Does.Contain("Response verify OK"));
        return r.StdOut;
    }

    private async Task<X509Certificate2> EnrollAsync(string deviceId)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest($"CN={deviceId}, SERIALNUMBER={deviceId}", key, HashAlgorithmName.SHA256).CreateSigningRequest();
        using var content = new StringContent(Convert.ToBase64String(csr));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/pkcs10");
        using var response = await _station.PostAsync(_estBase + "/simpleenroll", content);
        string body = await response.Content.ReadAsStringAsync();
        Assert.That(response.IsSuccessStatusCode, Is.True, body);
        // Decode the certs-only PKCS#7 with openssl, as a station would.
        var pem = Tool.Run("openssl", ["pkcs7", "-inform", "DER", "-print_certs"], Convert.FromBase64String(body)).EnsureSuccess("openssl pkcs7");
        var certs = new X509Certificate2Collection();
        certs.ImportFromPem(pem.StdOut);
        return certs.Single(c => c.Subject.Contains(deviceId, StringComparison.Ordinal));
    }
}
