using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;
using OfflinePki.FactoryCa;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Factory;

/// <summary>
/// The FactoryCa host in-process on 127.0.0.1:0, driven by curl with real station certificates, and checked
/// with openssl. Every refused request must leave the (fake) journal unchanged.
/// </summary>
[NonParallelizable]
public class EstEndpointTests
{
    private readonly FakeJournalAppender _journal = new();
    private WebApplication _app = null!;
    private string _base = null!;
    private static TestPki Pki => TestPki.Default;

    private sealed record Reply(int Status, string Body, string Headers);

    [OneTimeSetUp]
    public async Task Start()
    {
        _app = FactoryCaApp.Build(Pki.PathOf("factoryca.json"),
            services => services.AddSingleton<IJournalAppender>(_journal),
            o => o.Est.Listen = "https://127.0.0.1:0");
        await _app.StartAsync();
        _base = _app.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal)).TrimEnd('/');
    }

    [OneTimeTearDown]
    public async Task Stop() => await _app.DisposeAsync();

    [SetUp]
    public void Reset() => _journal.FailWith = null;

    private Reply Curl(string path, byte[]? body, string? station = "station-01", string contentType = "application/pkcs10",
        (string Crt, string Key)? clientCert = null, params string[] extra)
    {
        string outFile = Peers.NewPath(".out"), hdrFile = Peers.NewPath(".hdr");
        var args = new List<string> { "-sS", "--max-time", "20", "--cacert", Pki.PathOf("tls-ca.crt"), "-o", outFile, "-D", hdrFile, "-w", "%{http_code}" };
        if (clientCert is { } cc)
        {
            args.AddRange(["--cert", cc.Crt, "--key", cc.Key]);
        }
        else if (station is not null)
        {
            args.AddRange(["--cert", Pki.PathOf(station + ".crt"), "--key", Pki.PathOf(station + ".key")]);
        }

        if (body is not null)
        {
            string bodyFile = Peers.NewPath(".b64");
            File.WriteAllBytes(bodyFile, body);
            args.AddRange(["-H", "Content-Type: " + contentType, "--data-binary", "@" + bodyFile]);
        }

        args.AddRange(extra);
        args.Add(_base + path);
        var r = Tool.Run("curl", args);
        Assert.That(r.ExitCode, Is.Zero, "curl: " + r.StdErr);
        return new Reply(int.Parse(r.StdOut.Trim(), System.Globalization.CultureInfo.InvariantCulture),
            File.Exists(outFile) ? File.ReadAllText(outFile) : string.Empty, File.ReadAllText(hdrFile));
    }

    private static X509Certificate2Collection CertsOnly(string base64Body)
    {
        var der = Convert.FromBase64String(base64Body);
        var pem = Tool.Run("openssl", ["pkcs7", "-inform", "DER", "-print_certs"], stdin: der).EnsureSuccess("openssl pkcs7").StdOut;
        var certs = new X509Certificate2Collection();
        certs.ImportFromPem(pem);
        return certs;
    }

    /// <summary>Sends a bad request and checks status, message, and that nothing was journaled.</summary>
    private void Refused(int status, string message, Func<Reply> send)
    {
        int before = _journal.Count;
        var reply = send();
        Assert.That(reply.Status, Is.EqualTo(status), reply.Body);
        Assert.That(reply.Body, Does.Contain(message));
        Assert.That(reply.Headers, Does.Contain("text/plain"));
        Assert.That(_journal.Count, Is.EqualTo(before), "a refused request must leave the journal unchanged");
    }

    [Test]
    public void Cacerts_returns_the_issuing_CA_and_root_as_base64_certs_only()
    {
        var reply = Curl("/.well-known/est/cacerts", body: null, station: null);
        Assert.That(reply.Status, Is.EqualTo(200));
        Assert.That(reply.Headers, Does.Contain("Content-Type: application/pkcs7-mime").IgnoreCase);
        Assert.That(reply.Headers, Does.Contain("Content-Transfer-Encoding: base64").IgnoreCase);
        var subjects = CertsOnly(reply.Body).Select(c => c.Subject).ToList();
        Assert.That(subjects, Is.EquivalentTo(new[] { Pki.Cert("issuing-ca-F1").Subject, Pki.Root.Subject }));
    }

    [Test]
    public void Simpleenroll_issues_an_IDevID_that_openssl_verifies_and_journals_it_first()
    {
        var csrDer = Peers.P256Csr("DEV-0001");
        int before = _journal.Count;
        var reply = Curl("/.well-known/est/simpleenroll", Peers.Base64Body(csrDer), extra: ["-H", "X-Operator-Id: op-7"]);
        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
        Assert.That(reply.Headers, Does.Contain("Content-Type: application/pkcs7-mime; smime-type=certs-only").IgnoreCase);
        Assert.That(reply.Headers, Does.Contain("Content-Transfer-Encoding: base64").IgnoreCase);

        // base64 -d | openssl pkcs7 -inform DER -print_certs, as a station script would.
        string b64 = Peers.NewPath(".p7b64"), pem = Peers.NewPath("-device.pem");
        File.WriteAllText(b64, reply.Body);
        Tool.Run("bash", ["-c", $"base64 -d < '{b64}' | openssl pkcs7 -inform DER -print_certs -out '{pem}'"]).EnsureSuccess("decode");

        var verify = Tool.OpenSsl("verify", "-CAfile", Pki.PathOf("root-ca.crt"), "-untrusted", Pki.PathOf("issuing-ca-F1.crt"), pem);
        Assert.That(verify.StdOut, Does.Contain(": OK"), verify.StdErr);

        var text = Tool.OpenSsl("x509", "-in", pem, "-noout", "-text").EnsureSuccess("x509 -text").StdOut;
        Assert.That(text, Does.Contain("serialNumber = DEV-0001").Or.Contain("serialNumber=DEV-0001"));
        Assert.That(text, Does.Contain("CN = Example Device").Or.Contain("CN=Example Device"));
        Assert.That(text, Does.Match(@"Key Usage: critical\s+Digital Signature\s"));
        Assert.That(text, Does.Match(@"Basic Constraints: critical\s+CA:FALSE"));
        Assert.That(text, Does.Contain("X509v3 Authority Key Identifier"));
        Assert.That(text, Does.Contain("X509v3 Subject Key Identifier"));
        Assert.That(text, Does.Contain("othername: 1.3.6.1.5.5.7.8.4::"), "SAN otherName hardwareModuleName (RFC 4108 §5)");
        Assert.That(text, Does.Contain("URI:http://127.0.0.1:8080/crl/F1.crl"));
        Assert.That(text, Does.Contain("OCSP - URI:http://127.0.0.1:8080/ocsp"));
        Assert.That(text, Does.Contain("CA Issuers - URI:http://127.0.0.1:8080/ca/F1.crt"));
        Assert.That(text, Does.Contain("Not After : Dec 31 23:59:59 9999 GMT"));
        var asn1 = Tool.OpenSsl("asn1parse", "-in", pem).EnsureSuccess("asn1parse").StdOut;
        Assert.That(asn1, Does.Contain("GENERALIZEDTIME   :99991231235959Z"));
        Assert.That(asn1, Does.Contain("PRINTABLESTRING   :DEV-0001"));
        // SAN: otherName id-on-hardwareModuleName { hwType, hwSerialNum OCTET STRING "DEV-0001" }
        Assert.That(asn1, Does.Contain("A03006082B06010505070804A024302206").And.Contain("04084445562D30303031"));

        // BouncyCastle, a second reader, verifies the returned certificate and reads the same fields.
        using (var issuingCa = Pki.Cert("issuing-ca-F1"))
        {
            var bc = BouncyOracle.CertificatePem(pem, issuingCa);
            Assert.That(BouncyOracle.SubjectValues(bc, "2.5.4.5"), Is.EqualTo(new[] { "DEV-0001" }));
            Assert.That(BouncyOracle.SubjectValues(bc, "2.5.4.3"), Is.EqualTo(new[] { "Example Device" }));
            Assert.That(bc.GetKeyUsage()![0], Is.True, "digitalSignature");
            Assert.That(bc.GetCriticalExtensionOids(), Is.SupersetOf(new[] { "2.5.29.15", "2.5.29.19" }));
            Assert.That(bc.GetBasicConstraints(), Is.EqualTo(-1));
            Assert.That(BouncyOracle.HardwareModuleSerial(bc), Is.EqualTo("DEV-0001"u8.ToArray()));
            Assert.That(bc.NotAfter, Is.EqualTo(new DateTime(9999, 12, 31, 23, 59, 59, DateTimeKind.Utc)));
        }

        // Journaled before it was returned, with what the mirror needs.
        Assert.That(_journal.Count, Is.EqualTo(before + 1));
        var (type, payload) = _journal.Appends.Last();
        Assert.That(type, Is.EqualTo(EntryType.CertificateIssued));
        var issued = (CertificateIssued)payload;
        using var returned = X509CertificateLoader.LoadCertificateFromFile(pem);
        Assert.That(issued.Certificate.ToByteArray(), Is.EqualTo(returned.RawData));
        Assert.That(issued.DeviceId, Is.EqualTo("DEV-0001"));
        Assert.That(issued.StationId, Is.EqualTo("station-01"));
        Assert.That(issued.OperatorId, Is.EqualTo("op-7"));
        Assert.That(issued.Profile, Is.EqualTo("idevid"));
        Assert.That(issued.CsrSha256.ToByteArray(), Is.EqualTo(SHA256.HashData(csrDer)));
    }

    [TestCaseSource(typeof(BadInputFixtureTests), nameof(BadInputFixtureTests.Cases))]
    public void Every_bad_CSR_fixture_is_400_and_journals_nothing(string file, OfflinePki.Factory.EnrollmentError code, string message) =>
        Refused(400, message, () => Curl("/.well-known/est/simpleenroll", File.ReadAllBytes(Path.Combine(BadInputFixtureTests.Dir, file))));

    [Test]
    public void Malformed_base64_is_400() =>
        Refused(400, "not valid base64", () => Curl("/.well-known/est/simpleenroll", "MIIB!!!!not-base64"u8.ToArray()));

    [Test]
    public void Malformed_DER_is_400() =>
        Refused(400, "not a DER PKCS#10 request", () => Curl("/.well-known/est/simpleenroll", Peers.Base64Body([0x30, 0x03, 0x02, 0x01, 0x00])));

    [Test]
    public void A_CSR_with_a_bad_signature_is_400()
    {
        var der = Peers.P256Csr("DEV-0002");
        der[^5] ^= 0x01;
        Refused(400, "CSR signature does not verify (proof of possession failed)", () => Curl("/.well-known/est/simpleenroll", Peers.Base64Body(der)));
    }

    [Test]
    public void An_RSA_1024_key_is_400() =>
        Refused(400, "RSA-1024 key refused: allowed keys are P-256, P-384, RSA >= 2048",
            () => Curl("/.well-known/est/simpleenroll", Peers.Base64Body(Peers.Csr("/serialNumber=DEV-0003/CN=x", "rsa:1024"))));

    [Test]
    public void An_Ed25519_key_is_400() =>
        Refused(400, "Ed25519 key refused",
            () => Curl("/.well-known/est/simpleenroll", Peers.Base64Body(Peers.Csr("/serialNumber=DEV-0004/CN=x", "ed25519"))));

    [Test]
    public void No_client_certificate_is_401() =>
        Refused(401, "client certificate required", () => Curl("/.well-known/est/simpleenroll", Peers.Base64Body(Peers.P256Csr("DEV-0005")), station: null));

    [Test]
    public void A_station_certificate_from_another_CA_is_403()
    {
        var rogue = Peers.RogueCa();
        var cert = Peers.ClientCert("station-01", rogue.Crt, rogue.Key);
        Refused(403, "does not chain to the RA CA",
            () => Curl("/.well-known/est/simpleenroll", Peers.Base64Body(Peers.P256Csr("DEV-0006")), clientCert: cert));
    }

    [Test]
    public void An_unlisted_station_from_the_RA_CA_is_403()
    {
        var cert = Peers.ClientCert("station-99", Pki.PathOf("tls-ca.crt"), Pki.PathOf("tls-ca.key"));
        Refused(403, "station CN=station-99 is not in the station list (FactoryCa:Stations)",
            () => Curl("/.well-known/est/simpleenroll", Peers.Base64Body(Peers.P256Csr("DEV-0007")), clientCert: cert));
    }

    [Test]
    public void An_oversized_body_is_413() =>
        Refused(413, "exceeds 16384 bytes (FactoryCa:Est:MaxRequestBytes)",
            () => Curl("/.well-known/est/simpleenroll", new byte[40_000].Select(_ => (byte)'A').ToArray()));

    [Test]
    public void An_oversized_chunked_body_is_413() =>
        Refused(413, "exceeds 16384 bytes", () => Curl("/.well-known/est/simpleenroll", new byte[40_000].Select(_ => (byte)'A').ToArray(),
            extra: ["-H", "Transfer-Encoding: chunked"]));

    [Test]
    public void A_bad_operator_id_is_400() =>
        Refused(400, "operator id must be at most 64 printable ASCII characters",
            () => Curl("/.well-known/est/simpleenroll", Peers.Base64Body(Peers.P256Csr("DEV-0010")), extra: ["-H", "X-Operator-Id: " + new string('x', 65)]));

    [Test]
    public void A_wrong_content_type_is_415() =>
        Refused(415, "application/pkcs10", () => Curl("/.well-known/est/simpleenroll", Peers.Base64Body(Peers.P256Csr("DEV-0008")), contentType: "text/plain"));

    [Test]
    public void A_journal_failure_is_503_with_Retry_After_and_no_certificate()
    {
        _journal.FailWith = new JournalUnavailableException("fsync failed on /data/journal");
        var reply = Curl("/.well-known/est/simpleenroll", Peers.Base64Body(Peers.P256Csr("DEV-0009")));
        Assert.That(reply.Status, Is.EqualTo(503));
        Assert.That(reply.Headers, Does.Contain("Retry-After: 30").IgnoreCase);
        Assert.That(reply.Body, Does.Contain("journal unavailable: fsync failed"));
        Assert.That(reply.Body, Does.Not.Contain("BEGIN"));
        Assert.That(reply.Headers, Does.Not.Contain("pkcs7"));
    }

    [Test]
    public async Task Eight_concurrent_enrollments_succeed_with_unique_serials()
    {
        var bodies = Enumerable.Range(0, 8).Select(i => Peers.Base64Body(Peers.P256Csr($"DEV-C{i:000}"))).ToArray();
        int before = _journal.Count;
        var replies = await Task.WhenAll(bodies.Select((b, i) =>
            Task.Run(() => Curl("/.well-known/est/simpleenroll", b, station: i % 2 == 0 ? "station-01" : "station-02"))));
        Assert.That(replies.Select(r => r.Status), Is.All.EqualTo(200));
        var serials = replies.Select(r => CertsOnly(r.Body).Single().SerialNumber).ToList();
        Assert.That(serials.Distinct().Count(), Is.EqualTo(8));
        using var issuingCa = Pki.Cert("issuing-ca-F1");
        Assert.That(replies.Select(r => BouncyOracle.SerialHex(BouncyOracle.Certificate(CertsOnly(r.Body).Single().RawData, issuingCa))), Is.EqualTo(serials),
            "BouncyCastle verifies each and reads the same serials");
        Assert.That(_journal.Count, Is.EqualTo(before + 8));
        Assert.That(_journal.Appends.Skip(before).Select(a => ((CertificateIssued)a.Payload).StationId).Distinct(),
            Is.EquivalentTo(new[] { "station-01", "station-02" }));
    }
}
