using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using OfflinePki.FactoryCa;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Factory;


/// <summary>
/// Profiles as data (idevid, tls-client, Matter DAC) and the full EST surface (labels, csrattrs, simplereenroll,
/// serverkeygen) and the station limits (suspended, rate limit, local revocation, operator id from a CSR attribute),
/// driven by curl and checked with openssl and python3. Every refusal leaves the journal unchanged.
/// </summary>
[NonParallelizable]
public class EstProfilesTests
{
    private readonly FakeJournalAppender _journal = new();
    private readonly CapturingLoggerProvider _logs = new();
    // The factory's clock; the test moves it forward by hand (the rate limiter, the revocation file re-read and its
    // journaler run on it; nothing sleeps). It starts ten minutes ahead of real time and only moves forward, so it is
    // never behind real time while the fixture runs: certificates openssl makes during the test are already valid.
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow.AddMinutes(10));

    // Moves the wall clock as a real clock change would (FakeTimeProvider.AdjustTime): the rate limiter and the file
    // re-read see the new time, and no timer fires, so the revocation journaler (a 2 s timer) does not run at the same
    // instant as the request under test. Only the test that waits for the journaler fires its timer (Advance).
    private void MoveClock(TimeSpan by) => _clock.AdjustTime(_clock.GetUtcNow() + by);
    private WebApplication _app = null!;
    private string _base = null!;
    private string _config = null!;
    private string _data = null!;
    private readonly Dictionary<string, (string Crt, string Key)> _stations = new(StringComparer.Ordinal);
    private static TestPki Pki => TestPki.Default;

    private sealed record Reply(int Status, string Body, string Headers, string BodyFile, string HeaderFile);

    [OneTimeSetUp]
    public async Task Start()
    {
        foreach (var cn in new[] { "st-suspended", "st-limited", "st-revoked", "st-idevid-only" })
        {
            _stations[cn] = Peers.ClientCert(cn, Pki.PathOf("tls-ca.crt"), Pki.PathOf("tls-ca.key"));
        }

        _data = Path.Combine(Peers.Scratch, "est-profiles-data");
        var root = JsonNode.Parse(File.ReadAllText(Pki.PathOf("factoryca.json")))!;
        var f = root["FactoryCa"]!;
        f["DataDirectory"] = _data;
        var idevid = f["Profile"]!.DeepClone();
        f.AsObject().Remove("Profile");
        var tls = idevid.DeepClone();
        tls["Name"] = "tls";
        tls["Kind"] = "tls-client";
        tls["SubjectCommonName"] = "Example Device TLS";
        tls["Validity"] = "825.00:00:00";
        var matter = idevid.DeepClone();
        matter["Name"] = "matter";
        matter["Kind"] = "matter-dac";
        matter["SubjectCommonName"] = "Example Matter DAC";
        matter["VendorId"] = "FFF1";
        matter["ProductId"] = "8001";
        matter["AllowServerKeyGen"] = true;
        f["Profiles"] = new JsonArray(idevid, tls, matter);
        f["DefaultProfile"] = "idevid";
        f["Est"]!["Labels"] = new JsonObject
        {
            ["tls"] = new JsonObject { ["Profile"] = "tls" },
            ["matter"] = new JsonObject { ["Profile"] = "matter" },
            ["matter-order"] = new JsonObject { ["Profile"] = "matter", ["OrderId"] = "ORD-1" },
        };
        f["Stations"] = new JsonArray(
            new JsonObject { ["Id"] = "station-01", ["CertificateSubjectCn"] = "station-01", ["AllowServerKeyGen"] = true },
            new JsonObject { ["Id"] = "station-02", ["CertificateSubjectCn"] = "station-02" },
            new JsonObject { ["Id"] = "st-suspended", ["CertificateSubjectCn"] = "st-suspended", ["Suspended"] = true },
            new JsonObject { ["Id"] = "st-limited", ["CertificateSubjectCn"] = "st-limited", ["RateLimitPerMinute"] = 2 },
            new JsonObject { ["Id"] = "st-revoked", ["CertificateSubjectCn"] = "st-revoked" },
            new JsonObject { ["Id"] = "st-idevid-only", ["CertificateSubjectCn"] = "st-idevid-only", ["Profiles"] = new JsonArray("idevid") });
        _config = Pki.PathOf("factoryca-est-profiles.json");
        File.WriteAllText(_config, root.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));

        _app = FactoryCaApp.Build(_config,
            services =>
            {
                services.AddSingleton<IJournalAppender>(_journal);
                services.AddSingleton<TimeProvider>(_clock);
                services.AddSingleton<ILoggerProvider>(_logs);
            },
            o => o.Est.Listen = "https://127.0.0.1:0");
        await _app.StartAsync();
        _base = _app.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal)).TrimEnd('/');

        // The "matter" label names order ORD-1: accept it as the OEM would (a signed order file).
        var order = OfflinePki.Tests.Orders.OrderFiles.Json("ORD-1", 100);
        order["profile"] = "matter";
        order["deviceIds"] = new JsonObject { ["from"] = "ORD-0001", ["to"] = "ORD-9999" };
        await _app.Services.GetRequiredService<OfflinePki.Orders.OrderBook>().AcceptAsync(
            OfflinePki.Tests.Orders.OrderFiles.Sign(Pki, order), "file", CancellationToken.None);
    }

    [OneTimeTearDown]
    public async Task Stop() => await _app.DisposeAsync();

    private Reply Curl(string path, byte[]? body, string? station = "station-01", (string Crt, string Key)? clientCert = null, params string[] extra)
    {
        string outFile = Peers.NewPath(".out"), hdrFile = Peers.NewPath(".hdr");
        var args = new List<string> { "-sS", "--max-time", "20", "--cacert", Pki.PathOf("tls-ca.crt"), "-o", outFile, "-D", hdrFile, "-w", "%{http_code}" };
        if (clientCert is { } cc)
        {
            args.AddRange(["--cert", cc.Crt, "--key", cc.Key]);
        }
        else if (station is not null)
        {
            var (crt, key) = _stations.TryGetValue(station, out var s) ? s : (Pki.PathOf(station + ".crt"), Pki.PathOf(station + ".key"));
            args.AddRange(["--cert", crt, "--key", key]);
        }

        if (body is not null)
        {
            string bodyFile = Peers.NewPath(".b64");
            File.WriteAllBytes(bodyFile, body);
            args.AddRange(["-H", "Content-Type: application/pkcs10", "--data-binary", "@" + bodyFile]);
        }

        args.AddRange(extra);
        args.Add(_base + path);
        var r = Tool.Run("curl", args);
        Assert.That(r.ExitCode, Is.Zero, "curl: " + r.StdErr);
        return new Reply(int.Parse(r.StdOut.Trim(), System.Globalization.CultureInfo.InvariantCulture),
            File.Exists(outFile) ? File.ReadAllText(outFile) : string.Empty, File.ReadAllText(hdrFile), outFile, hdrFile);
    }

    private void Refused(int status, string message, Func<Reply> send)
    {
        int before = _journal.Count;
        var reply = send();
        Assert.That(reply.Status, Is.EqualTo(status), reply.Body);
        Assert.That(reply.Body, Does.Contain(message));
        Assert.That(_journal.Count, Is.EqualTo(before), "a refused request must leave the journal unchanged");
    }

    /// <summary>A P-256 (or other) key and CSR made by openssl; returns the key path and the base64 body.</summary>
    private static (string KeyPath, byte[] Body) KeyAndCsr(string subject, params string[] newKey)
    {
        string key = Peers.NewPath(".key"), csr = Peers.NewPath(".der");
        var args = new List<string> { "req", "-new", "-newkey" };
        args.AddRange(newKey.Length > 0 ? newKey : ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
        args.AddRange(["-subj", subject, "-nodes", "-keyout", key, "-outform", "DER", "-out", csr]);
        Tool.Run("openssl", args).EnsureSuccess("openssl req");
        return (key, Peers.Base64Body(File.ReadAllBytes(csr)));
    }

    /// <summary>The single certificate of a base64 certs-only reply, written as PEM; returns the path.</summary>
    private static string CertPem(Reply reply)
    {
        string pem = Peers.NewPath("-cert.pem");
        Tool.Run("openssl", ["pkcs7", "-inform", "DER", "-print_certs", "-out", pem], stdin: Convert.FromBase64String(reply.Body)).EnsureSuccess("pkcs7");
        return pem;
    }

    private static string Text(string pem) => Tool.OpenSsl("x509", "-in", pem, "-noout", "-text").EnsureSuccess("x509 -text").StdOut;

    /// <summary>openssl verify at the factory's clock, then BouncyCastle's independent parse and signature check; returns BouncyCastle's reading.</summary>
    private Org.BouncyCastle.X509.X509Certificate AssertVerifies(string pem, params string[] extra)
    {
        // The factory runs on the test clock (moved forward by the rate-limit test): verify at that time.
        var args = new List<string> { "verify", "-attime", (_clock.GetUtcNow().ToUnixTimeSeconds() + 1).ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-CAfile", Pki.PathOf("root-ca.crt"), "-untrusted", Pki.PathOf("issuing-ca-F1.crt") };
        args.AddRange(extra);
        args.Add(pem);
        var v = Tool.OpenSsl([.. args]);
        Assert.That(v.StdOut, Does.Contain(": OK"), v.StdErr);
        using var issuingCa = Pki.Cert("issuing-ca-F1");
        var bc = BouncyOracle.CertificatePem(pem, issuingCa);
        Assert.That(bc.IsValid(_clock.GetUtcNow().UtcDateTime.AddSeconds(1)), Is.True, "BouncyCastle: valid at the factory's clock, as openssl said");
        return bc;
    }

    private CertificateIssued LastIssued() => (CertificateIssued)_journal.Appends.Last(a => a.Type == EntryType.CertificateIssued).Payload;

    // ---- profiles ----

    [Test]
    public void A_Matter_DAC_by_label_has_vendor_and_product_id_and_Matter_rules_and_openssl_verifies_it()
    {
        var (_, body) = KeyAndCsr("/serialNumber=MAT-0001/CN=x");
        var reply = Curl("/.well-known/est/matter/simpleenroll", body);
        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
        string pem = CertPem(reply);
        var bc = AssertVerifies(pem);
        string text = Text(pem);
        Assert.That(text, Does.Contain("1.3.6.1.4.1.37244.2.1 = FFF1"));
        Assert.That(text, Does.Contain("1.3.6.1.4.1.37244.2.2 = 8001"));
        Assert.That(text, Does.Contain("CN = Example Matter DAC"));
        Assert.That(text, Does.Contain("Signature Algorithm: ecdsa-with-SHA256"));
        Assert.That(text, Does.Contain("ASN1 OID: prime256v1"));
        Assert.That(text, Does.Match(@"Basic Constraints: critical\s+CA:FALSE"));
        Assert.That(text, Does.Match(@"Key Usage: critical\s+Digital Signature\s*\n"));
        Assert.That(text, Does.Not.Contain("Extended Key Usage"));
        Assert.That(text, Does.Not.Contain("Subject Alternative Name"));
        Assert.That(text, Does.Contain("Not After : Dec 31 23:59:59 9999 GMT"));
        var asn1 = Tool.OpenSsl("asn1parse", "-in", pem).EnsureSuccess("asn1parse").StdOut;
        Assert.That(asn1, Does.Contain("UTF8STRING        :FFF1"));
        Assert.That(asn1, Does.Contain("UTF8STRING        :8001"));
        Assert.That(asn1, Does.Contain("GENERALIZEDTIME   :99991231235959Z"));
        Assert.That(BouncyOracle.SubjectValues(bc, "1.3.6.1.4.1.37244.2.1"), Is.EqualTo(new[] { "FFF1" }), "BouncyCastle: Matter vendor id");
        Assert.That(BouncyOracle.SubjectValues(bc, "1.3.6.1.4.1.37244.2.2"), Is.EqualTo(new[] { "8001" }), "BouncyCastle: Matter product id");
        Assert.That(bc.SigAlgOid, Is.EqualTo("1.2.840.10045.4.3.2"), "ecdsa-with-SHA256");
        Assert.That(bc.GetBasicConstraints(), Is.EqualTo(-1));
        Assert.That(bc.GetKeyUsage()![0], Is.True);
        Assert.That(bc.GetExtendedKeyUsage(), Is.Null.Or.Empty);
        Assert.That(bc.GetSubjectAlternativeNameExtension(), Is.Null);
        Assert.That(bc.NotAfter, Is.EqualTo(new DateTime(9999, 12, 31, 23, 59, 59, DateTimeKind.Utc)));

        var issued = LastIssued();
        Assert.That(issued.Profile, Is.EqualTo("matter"));
        Assert.That(issued.Label, Is.EqualTo("matter"));
        Assert.That(issued.DeviceId, Is.EqualTo("MAT-0001"));
    }

    [Test]
    public void A_Matter_DAC_refuses_a_P384_key() =>
        Refused(400, "P-384 key refused: profile matter allows P-256",
            () => Curl("/.well-known/est/matter/simpleenroll", KeyAndCsr("/serialNumber=MAT-0002/CN=x", "ec", "-pkeyopt", "ec_paramgen_curve:P-384").Body));

    [Test]
    public void A_tls_client_certificate_has_clientAuth_a_finite_validity_and_no_SAN()
    {
        var (_, body) = KeyAndCsr("/serialNumber=TLS-0001/CN=x");
        var reply = Curl("/.well-known/est/tls/simpleenroll", body);
        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
        string pem = CertPem(reply);
        var bc = AssertVerifies(pem, "-purpose", "sslclient");
        Assert.That(bc.GetExtendedKeyUsage()!.Select(o => o.Id), Is.EqualTo(new[] { "1.3.6.1.5.5.7.3.2" }), "BouncyCastle: clientAuth only");
        Assert.That(bc.GetSubjectAlternativeNameExtension(), Is.Null);
        Assert.That(bc.NotAfter - bc.NotBefore, Is.EqualTo(TimeSpan.FromDays(825)));
        string text = Text(pem);
        Assert.That(text, Does.Match(@"Extended Key Usage:\s+TLS Web Client Authentication"));
        Assert.That(text, Does.Match(@"Key Usage: critical\s+Digital Signature"));
        Assert.That(text, Does.Not.Contain("Subject Alternative Name"));
        Assert.That(text, Does.Not.Contain("9999"));
        using var cert = X509CertificateLoader.LoadCertificateFromFile(pem);
        Assert.That(cert.NotAfter.ToUniversalTime() - cert.NotBefore.ToUniversalTime(), Is.EqualTo(TimeSpan.FromDays(825)));
        Assert.That(LastIssued().Profile, Is.EqualTo("tls"));
    }

    [Test]
    public void The_unlabelled_path_uses_the_default_profile()
    {
        var reply = Curl("/.well-known/est/simpleenroll", KeyAndCsr("/serialNumber=DEF-0001/CN=x").Body);
        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
        Assert.That(Text(CertPem(reply)), Does.Contain("othername: 1.3.6.1.5.5.7.8.4::"));
        Assert.That(LastIssued().Profile, Is.EqualTo("idevid"));
        Assert.That(LastIssued().Label, Is.Empty);
    }

    [Test]
    public void An_unknown_label_is_404_naming_the_configured_labels()
    {
        Refused(404, "unknown EST label 'nope' (RFC 7030 §3.2.2): configured labels are matter, matter-order, tls (FactoryCa:Est:Labels)",
            () => Curl("/.well-known/est/nope/simpleenroll", KeyAndCsr("/serialNumber=LBL-0001/CN=x").Body));
        Assert.That(Curl("/.well-known/est/nope/csrattrs", null, station: null).Status, Is.EqualTo(404));
        Assert.That(Curl("/.well-known/est/nope/cacerts", null, station: null).Status, Is.EqualTo(404));
    }

    [Test]
    public void A_label_with_an_order_records_the_order_and_a_conflicting_header_is_refused()
    {
        var reply = Curl("/.well-known/est/matter-order/simpleenroll", KeyAndCsr("/serialNumber=ORD-0001/CN=x").Body);
        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
        Assert.That(LastIssued().BatchId, Is.EqualTo("ORD-1"));
        Assert.That(LastIssued().Label, Is.EqualTo("matter-order"));
        Refused(400, "X-Order-Id 'ORD-2' conflicts with order 'ORD-1' of EST label 'matter-order'",
            () => Curl("/.well-known/est/matter-order/simpleenroll", KeyAndCsr("/serialNumber=ORD-0002/CN=x").Body, extra: ["-H", "X-Order-Id: ORD-2"]));
    }

    [Test]
    public void A_station_limited_to_idevid_is_403_on_the_matter_label() =>
        Refused(403, "station CN=st-idevid-only is not authorised for profile matter",
            () => Curl("/.well-known/est/matter/simpleenroll", KeyAndCsr("/serialNumber=AUT-0001/CN=x").Body, station: "st-idevid-only"));

    // ---- csrattrs ----

    [TestCase("/.well-known/est/csrattrs")]
    [TestCase("/.well-known/est/matter/csrattrs")]
    public void Csrattrs_is_base64_DER_that_openssl_parses(string path)
    {
        var reply = Curl(path, null, station: null);
        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
        Assert.That(reply.Headers, Does.Contain("Content-Type: application/csrattrs").IgnoreCase);
        Assert.That(reply.Headers, Does.Contain("Content-Transfer-Encoding: base64").IgnoreCase);
        string der = Peers.NewPath(".der");
        Tool.Run("bash", ["-c", $"base64 -d < '{reply.BodyFile}' > '{der}'"]).EnsureSuccess("base64 -d");
        var asn1 = Tool.OpenSsl("asn1parse", "-inform", "DER", "-in", der).EnsureSuccess("asn1parse").StdOut;
        Assert.That(asn1, Does.Contain(":ecdsa-with-SHA256"), "signature algorithm OID (RFC 7030 §4.5.2)");
        Assert.That(asn1, Does.Contain(":id-ecPublicKey"), "key type attribute (RFC 8951 §3.3)");
        Assert.That(asn1, Does.Contain(":prime256v1"), "curve in the key type attribute");
        Assert.That(asn1, Does.Contain(":serialNumber"), "the device ID goes in subject serialNumber");
        Assert.That(asn1, Does.Contain(":" + OfflinePki.Asn1.Oids.OperatorIdAttribute), "optional operator id attribute");
    }

    // ---- station limits ----

    [Test]
    public void A_suspended_station_is_403() =>
        Refused(403, "station CN=st-suspended is suspended (FactoryCa:Stations, Id st-suspended: Suspended)",
            () => Curl("/.well-known/est/simpleenroll", KeyAndCsr("/serialNumber=SUS-0001/CN=x").Body, station: "st-suspended"));

    [Test]
    public void A_station_over_its_rate_gets_429_with_Retry_After_until_the_clock_moves()
    {
        MoveClock(TimeSpan.FromMinutes(5));
        for (int i = 0; i < 2; i++)
        {
            Assert.That(Curl("/.well-known/est/simpleenroll", KeyAndCsr($"/serialNumber=RATE-000{i}/CN=x").Body, station: "st-limited").Status, Is.EqualTo(200));
        }

        int before = _journal.Count;
        var limited = Curl("/.well-known/est/simpleenroll", KeyAndCsr("/serialNumber=RATE-0009/CN=x").Body, station: "st-limited");
        Assert.That(limited.Status, Is.EqualTo(429), limited.Body);
        Assert.That(limited.Body, Does.Contain("exceeded 2 enrollments per minute"));
        Assert.That(limited.Headers, Does.Match(@"(?i)Retry-After: [1-9]\d*"));
        Assert.That(_journal.Count, Is.EqualTo(before));

        // Other stations are not affected; one token comes back after 30 s of (test) time.
        Assert.That(Curl("/.well-known/est/simpleenroll", KeyAndCsr("/serialNumber=RATE-0010/CN=x").Body, station: "station-02").Status, Is.EqualTo(200));
        MoveClock(TimeSpan.FromSeconds(31));
        var again = Curl("/.well-known/est/simpleenroll", KeyAndCsr("/serialNumber=RATE-0011/CN=x").Body, station: "st-limited");
        Assert.That(again.Status, Is.EqualTo(200), again.Body);
        Assert.That(Curl("/.well-known/est/simpleenroll", KeyAndCsr("/serialNumber=RATE-0012/CN=x").Body, station: "st-limited").Status, Is.EqualTo(429));
    }

    [Test]
    public async Task A_station_certificate_revoked_by_the_CLI_is_refused_from_then_on_and_journaled()
    {
        var (crt, _) = _stations["st-revoked"];
        Assert.That(Curl("/.well-known/est/simpleenroll", KeyAndCsr("/serialNumber=REV-0001/CN=x").Body, station: "st-revoked").Status, Is.EqualTo(200));

        // Bad arguments change nothing.
        Assert.That(await RevokeStationCommand.RunAsync(_config, "abcd", null, "lost", CancellationToken.None), Is.EqualTo(2));
        Assert.That(await RevokeStationCommand.RunAsync(_config, null, crt, "bad\nreason", CancellationToken.None), Is.EqualTo(2));
        using (var c0 = X509CertificateLoader.LoadCertificateFromFile(crt))
        {
            string p = Path.Combine(_data, "revoked-stations");
            Assert.That(File.Exists(p) && File.ReadAllText(p).Contains(Convert.ToHexStringLower(SHA256.HashData(c0.RawData)), StringComparison.Ordinal), Is.False);
        }

        int before = _journal.Count;
        Assert.That(await RevokeStationCommand.RunAsync(_config, null, crt, "station PC stolen", CancellationToken.None), Is.Zero);
        using var cert = X509CertificateLoader.LoadCertificateFromFile(crt);
        string fp = Convert.ToHexStringLower(SHA256.HashData(cert.RawData));
        Assert.That(File.ReadAllLines(Path.Combine(_data, "revoked-stations")), Has.Some.StartWith(fp + " "));
        Assert.That(_journal.Count, Is.EqualTo(before + 1));
        var (type, payload) = _journal.Appends.Last();
        Assert.That(type, Is.EqualTo(EntryType.PolicyChanged));
        Assert.That(((PolicyChanged)payload).Summary, Does.Contain("sha256=" + fp).And.Contain("station PC stolen"));

        Refused(403, $"its certificate sha256={fp} is revoked on this factory",
            () => Curl("/.well-known/est/simpleenroll", KeyAndCsr("/serialNumber=REV-0002/CN=x").Body, station: "st-revoked"));

        // Revoking again is idempotent and journals nothing new.
        Assert.That(await RevokeStationCommand.RunAsync(_config, fp.ToUpperInvariant(), null, "again", CancellationToken.None), Is.Zero);
        Assert.That(_journal.Count, Is.EqualTo(before + 1));
    }

    [Test]
    public void A_revocation_written_to_the_file_is_picked_up_without_a_restart()
    {
        var limited = _stations["st-limited"];
        using var cert = X509CertificateLoader.LoadCertificateFromFile(limited.Crt);
        // Another station keeps working; then the file gains a line written out of band (e.g. CLI with the socket unreachable).
        var other = Peers.ClientCert("st-hot", Pki.PathOf("tls-ca.crt"), Pki.PathOf("tls-ca.key"));
        Assert.That(Curl("/.well-known/est/simpleenroll", KeyAndCsr("/serialNumber=HOT-0001/CN=x").Body, clientCert: other).Status, Is.EqualTo(403),
            "st-hot is not in the station list");
        using var station02 = X509CertificateLoader.LoadCertificateFromFile(Pki.PathOf("station-02.crt"));
        string fp = Convert.ToHexStringLower(SHA256.HashData(station02.RawData));
        try
        {
            new OfflinePki.Policy.RevokedStationStore(_data, TimeProvider.System).Revoke(fp, "hot reload test");
            MoveClock(TimeSpan.FromSeconds(2));
            var reply = Curl("/.well-known/est/simpleenroll", KeyAndCsr("/serialNumber=HOT-0002/CN=x").Body, station: "station-02");
            Assert.That(reply.Status, Is.EqualTo(403), reply.Body);
            Assert.That(reply.Body, Does.Contain("is revoked on this factory"));

            // The daemon journals the hand-written line too (its journaler checks every 2 s); wait for it (bounded), so
            // that it does not land during another test.
            bool Journaled() => _journal.Appends.Any(a => a.Type == EntryType.PolicyChanged && ((PolicyChanged)a.Payload).Summary.Contains(fp, StringComparison.Ordinal));
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!Journaled() && DateTime.UtcNow < deadline)
            {
                _clock.Advance(TimeSpan.FromSeconds(2));
                Thread.Sleep(100);
            }

            Assert.That(Journaled(), Is.True, "a revocation added to the file by hand is journaled as PolicyChanged");
        }
        finally
        {
            // Undo for the other tests: rewrite the file without that line.
            string path = Path.Combine(_data, "revoked-stations");
            File.WriteAllLines(path, File.ReadAllLines(path).Where(l => !l.StartsWith(fp, StringComparison.Ordinal)));
            MoveClock(TimeSpan.FromSeconds(2));
        }
    }

    [Test]
    public void An_unreadable_revocation_list_fails_closed_with_503()
    {
        string path = Path.Combine(_data, "revoked-stations");
        string? saved = File.Exists(path) ? File.ReadAllText(path) : null;
        try
        {
            File.AppendAllText(path, "not-a-fingerprint 12 x\n");
            MoveClock(TimeSpan.FromSeconds(2));
            int before = _journal.Count;
            var reply = Curl("/.well-known/est/simpleenroll", KeyAndCsr("/serialNumber=BAD-0001/CN=x").Body, station: "station-02");
            Assert.That(reply.Status, Is.EqualTo(503), reply.Body);
            Assert.That(reply.Body, Does.Contain("the station revocation list cannot be read").And.Contain("line"));
            Assert.That(reply.Headers, Does.Match("(?i)Retry-After: 30"));
            Assert.That(_journal.Count, Is.EqualTo(before));
        }
        finally
        {
            if (saved is null)
            {
                File.Delete(path);
            }
            else
            {
                File.WriteAllText(path, saved);
            }

            MoveClock(TimeSpan.FromSeconds(2));
        }
    }

    // ---- operator id from the CSR ----

    private static byte[] CsrWithOperator(string deviceId, string operatorId)
    {
        string cnf = Peers.NewPath(".cnf"), key = Peers.NewPath(".key"), csr = Peers.NewPath(".der");
        File.WriteAllText(cnf, $"""
            oid_section = new_oids
            [new_oids]
            operatorId = {OfflinePki.Asn1.Oids.OperatorIdAttribute}
            [req]
            distinguished_name = dn
            attributes = req_attributes
            prompt = no
            [dn]
            serialNumber = {deviceId}
            CN = x
            [req_attributes]
            operatorId = {operatorId}
            """);
        Tool.OpenSsl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-config", cnf,
            "-outform", "DER", "-out", csr).EnsureSuccess("openssl req with operator attribute");
        return Peers.Base64Body(File.ReadAllBytes(csr));
    }

    [Test]
    public void The_operator_id_may_come_from_a_CSR_attribute_and_must_agree_with_the_header()
    {
        Assert.That(Curl("/.well-known/est/simpleenroll", CsrWithOperator("OPR-0001", "op-csr-9")).Status, Is.EqualTo(200));
        Assert.That(LastIssued().OperatorId, Is.EqualTo("op-csr-9"));
        Assert.That(Curl("/.well-known/est/simpleenroll", CsrWithOperator("OPR-0002", "op-csr-9"), extra: ["-H", "X-Operator-Id: op-csr-9"]).Status, Is.EqualTo(200));
        Assert.That(LastIssued().OperatorId, Is.EqualTo("op-csr-9"));
        Refused(400, "operator id 'op-hdr-1' (X-Operator-Id header) differs from 'op-csr-9' in the CSR attribute",
            () => Curl("/.well-known/est/simpleenroll", CsrWithOperator("OPR-0003", "op-csr-9"), extra: ["-H", "X-Operator-Id: op-hdr-1"]));
    }

    // ---- serverkeygen ----

    [Test]
    public void Serverkeygen_returns_a_P256_key_and_its_certificate_as_multipart_and_never_logs_or_journals_the_key()
    {
        var (_, body) = KeyAndCsr("/serialNumber=SKG-0001/CN=x");
        int before = _journal.Count;
        var reply = Curl("/.well-known/est/matter/serverkeygen", body);
        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
        Assert.That(reply.Headers, Does.Contain("Content-Type: multipart/mixed; boundary=").IgnoreCase);

        // A real MIME parser (python3 email) splits the parts; each part's payload is decoded from base64.
        string dir = Peers.NewPath("-skg");
        Directory.CreateDirectory(dir);
        string script = """
            import sys, email, email.policy
            hdr = open(sys.argv[1], 'rb').read().decode('ascii')
            ctype = [l.split(':', 1)[1].strip() for l in hdr.splitlines() if l.lower().startswith('content-type:')][-1]
            raw = b'Content-Type: ' + ctype.encode() + b'\r\nMIME-Version: 1.0\r\n\r\n' + open(sys.argv[2], 'rb').read()
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            parts = list(msg.iter_parts())
            assert len(parts) == 2, len(parts)
            for i, p in enumerate(parts):
                print(p.get_content_type(), p.get_param('smime-type') or '')
                open(sys.argv[3] + '/part%d.der' % i, 'wb').write(p.get_payload(decode=True))
            """;
        string py = Path.Combine(dir, "parse.py");
        File.WriteAllText(py, script);
        var parsed = Tool.Run("/usr/bin/python3", [py, reply.HeaderFile, reply.BodyFile, dir]);
        parsed.EnsureSuccess("python3 email parser");
        Assert.That(parsed.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { "application/pkcs8 ", "application/pkcs7-mime certs-only" }));

        string keyDer = Path.Combine(dir, "part0.der");
        var keyText = Tool.OpenSsl("pkey", "-inform", "DER", "-in", keyDer, "-noout", "-text").EnsureSuccess("openssl pkey").StdOut;
        Assert.That(keyText, Does.Contain("prime256v1"));
        string certPem = Path.Combine(dir, "cert.pem");
        Tool.OpenSsl("pkcs7", "-inform", "DER", "-in", Path.Combine(dir, "part1.der"), "-print_certs", "-out", certPem).EnsureSuccess("pkcs7");
        var bc = AssertVerifies(certPem);
        var keyPub = Tool.OpenSsl("pkey", "-inform", "DER", "-in", keyDer, "-pubout").EnsureSuccess("pubout").StdOut;
        var certPub = Tool.OpenSsl("x509", "-in", certPem, "-noout", "-pubkey").EnsureSuccess("pubkey").StdOut;
        Assert.That(certPub, Is.EqualTo(keyPub), "the returned key is the certified key");
        Assert.That(Text(certPem), Does.Contain("1.3.6.1.4.1.37244.2.1 = FFF1"));

        Assert.That(_journal.Count, Is.EqualTo(before + 1));
        var issued = LastIssued();
        Assert.That(issued.ServerGeneratedKey, Is.True);
        Assert.That(issued.CsrSha256.IsEmpty, Is.True, "no CSR hash: the CSR's key was not certified");
        Assert.That(issued.DeviceId, Is.EqualTo("SKG-0001"));

        // The key appears nowhere: not in any journal payload, not in any log line (DER, base64, hex of the scalar).
        byte[] pkcs8 = File.ReadAllBytes(keyDer);
        using var ec = ECDsa.Create();
        ec.ImportPkcs8PrivateKey(pkcs8, out _);
        Assert.That(bc.SubjectPublicKeyInfo.GetEncoded(), Is.EqualTo(ec.ExportSubjectPublicKeyInfo()), "BouncyCastle: the returned key is the certified key");
        byte[] d = ec.ExportParameters(true).D!;
        foreach (var (_, p) in _journal.Appends)
        {
            var bytes = Google.Protobuf.MessageExtensions.ToByteArray(p);
            Assert.That(bytes.AsSpan().IndexOf(d), Is.EqualTo(-1), "private scalar in a journal payload");
            Assert.That(bytes.AsSpan().IndexOf(pkcs8), Is.EqualTo(-1));
        }

        string logs = string.Join("\n", _logs.Lines);
        Assert.That(logs, Does.Contain("SKG-0001"), "the issuance itself is logged");
        foreach (var needle in new[] { Convert.ToBase64String(pkcs8)[..40], Convert.ToHexString(d), Convert.ToHexStringLower(d), Convert.ToBase64String(d) })
        {
            Assert.That(logs, Does.Not.Contain(needle));
        }

        string journalFile = Path.Combine(_data, "journal", "journal.log");
        if (File.Exists(journalFile))
        {
            Assert.That(File.ReadAllBytes(journalFile).AsSpan().IndexOf(d), Is.EqualTo(-1));
        }
    }

    [Test]
    public void Serverkeygen_is_403_for_a_station_without_AllowServerKeyGen() =>
        Refused(403, "station CN=station-02 may not use serverkeygen (FactoryCa:Stations, Id station-02: AllowServerKeyGen)",
            () => Curl("/.well-known/est/matter/serverkeygen", KeyAndCsr("/serialNumber=SKG-0002/CN=x").Body, station: "station-02"));

    [Test]
    public void Serverkeygen_is_400_for_a_profile_that_does_not_allow_it() =>
        Refused(400, "profile idevid does not allow serverkeygen",
            () => Curl("/.well-known/est/serverkeygen", KeyAndCsr("/serialNumber=SKG-0003/CN=x").Body));

    // ---- simplereenroll ----

    private (string Crt, string Key) EnrollDevice(string deviceId, string labelPath = "")
    {
        var (key, body) = KeyAndCsr($"/serialNumber={deviceId}/CN=x");
        var reply = Curl($"/.well-known/est{labelPath}/simpleenroll", body);
        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
        return (CertPem(reply), key);
    }

    [Test]
    public void Simplereenroll_is_authenticated_by_the_device_certificate_and_journaled_as_reenroll()
    {
        var device = EnrollDevice("RE-0001");
        using var current = X509CertificateLoader.LoadCertificateFromFile(device.Crt);
        var (_, body) = KeyAndCsr("/serialNumber=RE-0001/CN=x");
        int before = _journal.Count;
        var reply = Curl("/.well-known/est/simplereenroll", body, clientCert: device);
        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
        string pem = CertPem(reply);
        var bc = AssertVerifies(pem);
        Assert.That(BouncyOracle.SubjectValues(bc, "2.5.4.5"), Is.EqualTo(new[] { "RE-0001" }));
        Assert.That(BouncyOracle.HardwareModuleSerial(bc), Is.EqualTo("RE-0001"u8.ToArray()));
        Assert.That(_journal.Count, Is.EqualTo(before + 1));
        var issued = LastIssued();
        Assert.That(issued.Kind, Is.EqualTo(IssuanceKind.Reenroll));
        Assert.That(issued.DeviceId, Is.EqualTo("RE-0001"));
        Assert.That(issued.StationId, Is.EqualTo("device:RE-0001"));
        using var renewed = X509CertificateLoader.LoadCertificateFromFile(pem);
        Assert.That(renewed.SerialNumber, Is.Not.EqualTo(current.SerialNumber));
    }

    [Test]
    public void Simplereenroll_renews_under_the_profile_of_the_current_certificate_and_no_other()
    {
        var dac = EnrollDevice("RE-0010", "/matter");
        var reply = Curl("/.well-known/est/simplereenroll", KeyAndCsr("/serialNumber=RE-0010/CN=x").Body, clientCert: dac);
        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
        Assert.That(LastIssued().Profile, Is.EqualTo("matter"), "no label: the current certificate's profile, not the default");
        Assert.That(Text(CertPem(reply)), Does.Contain("1.3.6.1.4.1.37244.2.1 = FFF1"));

        var idevid = EnrollDevice("RE-0011");
        Refused(403, "station CN=Example Device is not authorised for profile matter",
            () => Curl("/.well-known/est/matter/simplereenroll", KeyAndCsr("/serialNumber=RE-0011/CN=x").Body, clientCert: idevid));
    }

    [Test]
    public void Simplereenroll_refuses_a_CSR_for_another_device()
    {
        var device = EnrollDevice("RE-0002");
        Refused(400, "CSR device serial 'RE-9999' differs from the current certificate's 'RE-0002'",
            () => Curl("/.well-known/est/simplereenroll", KeyAndCsr("/serialNumber=RE-9999/CN=x").Body, clientCert: device));
    }

    [Test]
    public void Simplereenroll_refuses_a_station_certificate_and_simpleenroll_refuses_a_device_certificate()
    {
        Refused(403, "was not issued by the issuing CA",
            () => Curl("/.well-known/est/simplereenroll", KeyAndCsr("/serialNumber=RE-0003/CN=x").Body, station: "station-01"));
        var device = EnrollDevice("RE-0004");
        Refused(403, "does not chain to the RA CA",
            () => Curl("/.well-known/est/simpleenroll", KeyAndCsr("/serialNumber=RE-0004/CN=x").Body, clientCert: device));
        Refused(401, "simplereenroll is authenticated by the device's current certificate",
            () => Curl("/.well-known/est/simplereenroll", KeyAndCsr("/serialNumber=RE-0004/CN=x").Body, station: null));
    }

    [Test]
    public void Simplereenroll_refuses_a_device_certificate_from_a_rogue_CA()
    {
        var rogue = Peers.RogueCa();
        var fake = Peers.ClientCert("RE-0005", rogue.Crt, rogue.Key);
        Refused(403, "was not issued by the issuing CA",
            () => Curl("/.well-known/est/simplereenroll", KeyAndCsr("/serialNumber=RE-0005/CN=x").Body, clientCert: fake));
    }

    /// <summary>
    /// Issue 16 finding 10: a credential minted with the CA key that copies the active certificate's serial, subject and
    /// extensions but carries another key is not the journaled certificate; it is refused and nothing is journaled.
    /// </summary>
    [Test]
    public void Simplereenroll_refuses_a_CA_signed_forgery_that_copies_the_active_serial()
    {
        var device = EnrollDevice("RE-0006");
        using var active = X509CertificateLoader.LoadCertificateFromFile(device.Crt);
        using var issuer = Pki.IssuingCa;
        using var otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(active.SubjectName, otherKey, HashAlgorithmName.SHA256);
        foreach (var extension in active.Extensions)
        {
            request.CertificateExtensions.Add(extension);
        }

        // The IDevID's notAfter is 99991231235959Z (IEEE 802.1AR), beyond the issuer's: sign with the CA key directly,
        // as a holder of that key could, rather than through the overload that checks the issuer's validity.
        using var issuerKey = issuer.GetECDsaPrivateKey()!;
        using var forged = request.Create(issuer.SubjectName, X509SignatureGenerator.CreateForECDsa(issuerKey), active.NotBefore, active.NotAfter,
            active.SerialNumberBytes.Span);
        Assert.That(forged.SerialNumber, Is.EqualTo(active.SerialNumber));
        string crt = Peers.NewPath("-forged.crt"), key = Peers.NewPath("-forged.key");
        File.WriteAllText(crt, forged.ExportCertificatePem());
        File.WriteAllText(key, otherKey.ExportPkcs8PrivateKeyPem());

        Refused(400, "is not the journaled active IDevID of device RE-0006",
            () => Curl("/.well-known/est/simplereenroll", KeyAndCsr("/serialNumber=RE-0006/CN=x").Body, clientCert: (crt, key)));
    }
}
