using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using NUnit.Framework;
using OfflinePki.MirrorCa;
using OfflinePki.Revocation;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Mirror;

/// <summary>The admin HTTPS API (mTLS, roles) with curl, and the delta CRL endpoint and publish directory of the same host.</summary>
[NonParallelizable]
public class AdminApiTests
{
    private MirrorTestBed _bed = null!;
    private WebApplication _app = null!;
    private string _http = null!;
    private string _admin = null!;
    private string _publish = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _bed = new MirrorTestBed();
        _publish = Path.Combine(_bed.DataDirectory, "publish");
        _app = MirrorCaApp.Build(_bed.ConfigPath, new Dictionary<string, string?>
        {
            ["MirrorCa:Http:Listen"] = "http://127.0.0.1:0",
            ["MirrorCa:Sync:Listen"] = "",
            ["MirrorCa:Admin:Listen"] = "https://127.0.0.1:0",
            ["MirrorCa:Crl:Deltas:Enabled"] = "true",
            ["MirrorCa:Crl:PublishDirectory"] = _publish,
            ["MirrorCa:Crl:PollInterval"] = "00:00:00.200",
        });
        await _app.StartAsync();
        _http = _app.Urls.Single(u => u.StartsWith("http://", StringComparison.Ordinal)).TrimEnd('/');
        _admin = _app.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal)).TrimEnd('/');
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _bed.Dispose();
    }

    private (int Status, string Body) Curl(string? client, string method, string path, string? json = null)
    {
        var bodyFile = Path.Combine(_bed.DataDirectory, "curl-" + Guid.NewGuid().ToString("N")[..8]);
        var args = new List<string> { "-s", "-o", bodyFile, "-w", "%{http_code}", "--cacert", _bed.Pki.PathOf("tls-ca.crt"), "-X", method };
        if (client is not null)
        {
            args.AddRange(["--cert", _bed.Pki.PathOf(client + ".crt"), "--key", _bed.Pki.PathOf(client + ".key")]);
        }

        if (json is not null)
        {
            args.AddRange(["-H", "Content-Type: application/json", "--data", json]);
        }

        args.Add(path.StartsWith("http", StringComparison.Ordinal) ? path : _admin + path);
        var r = Tool.Run("curl", args);
        var body = File.Exists(bodyFile) ? File.ReadAllText(bodyFile) : string.Empty;
        return (int.Parse(r.StdOut.Trim(), System.Globalization.CultureInfo.InvariantCulture), body);
    }

    [Test]
    public void Auditor_reads_but_cannot_revoke_revoker_can_and_is_audited()
    {
        var dev = _bed.Issue();
        var status = Curl("admin-auditor", "GET", "/admin/status");
        Assert.That(status.Status, Is.EqualTo(200), status.Body);
        Assert.That(status.Body, Does.Contain("\"factoryId\":\"F1\""));

        var lookup = Curl("admin-auditor", "GET", "/admin/certificates/" + dev.SerialHex);
        Assert.That(lookup.Status, Is.EqualTo(200), lookup.Body);
        Assert.That(lookup.Body, Does.Contain("\"state\":\"Good\""));

        string revokeJson = JsonSerializer.Serialize(new { serial = dev.SerialHex, reason = "certificateHold", factory = "F1" });
        var denied = Curl("admin-auditor", "POST", "/admin/revoke", revokeJson);
        Assert.That(denied.Status, Is.EqualTo(403));
        Assert.That(denied.Body, Does.Contain("admin-auditor has role Auditor").And.Contain("needs Revoker"));
        Assert.That(_bed.Registry.GetStatus(_bed.IssuerKeyHash, dev.Serial).State, Is.EqualTo(RegistryCertificateState.Good), "a refused call changes nothing");

        var ok = Curl("admin-revoker", "POST", "/admin/revoke", revokeJson);
        Assert.That(ok.Status, Is.EqualTo(200), ok.Body);
        Assert.That(ok.Body, Does.Contain("\"outcome\":\"Revoked\"").And.Contain("certificateHold"));
        Assert.That(_bed.Registry.GetStatus(_bed.IssuerKeyHash, dev.Serial).State, Is.EqualTo(RegistryCertificateState.Revoked));

        var release = Curl("admin-revoker", "POST", "/admin/release-hold", JsonSerializer.Serialize(new { serial = dev.SerialHex }));
        Assert.That(release.Status, Is.EqualTo(200), release.Body);
        var again = Curl("admin-revoker", "POST", "/admin/release-hold", JsonSerializer.Serialize(new { serial = dev.SerialHex }));
        Assert.That(again.Status, Is.EqualTo(409));
        Assert.That(again.Body, Does.Contain("is not revoked"));

        var audit = Curl("admin-auditor", "GET", "/admin/audit");
        Assert.That(audit.Status, Is.EqualTo(200), audit.Body);
        Assert.That(audit.Body, Does.Contain("\"chainOk\":true").And.Contain("admin:admin-revoker").And.Contain("release-hold"));
    }

    [Test]
    public void No_certificate_is_401_an_unlisted_client_is_403_and_plain_http_has_no_admin_api()
    {
        var dev = _bed.Issue();
        var none = Curl(null, "GET", "/admin/status");
        Assert.That(none.Status, Is.EqualTo(401));
        Assert.That(none.Body, Does.Contain("requires mutual TLS"));

        var station = Curl("station-01", "POST", "/admin/revoke", JsonSerializer.Serialize(new { serial = dev.SerialHex, reason = "keyCompromise" }));
        Assert.That(station.Status, Is.EqualTo(403));
        Assert.That(station.Body, Does.Contain("CN=station-01 is not allowed"));

        var bad = Curl("admin-revoker", "POST", "/admin/revoke", JsonSerializer.Serialize(new { serial = dev.SerialHex, reason = "lostIt" }));
        Assert.That(bad.Status, Is.EqualTo(400));
        Assert.That(bad.Body, Does.Contain("unknown revocation reason"));

        var plain = Curl(null, "GET", _http + "/admin/status");
        Assert.That(plain.Status, Is.EqualTo(404));
        Assert.That(_bed.Registry.GetStatus(_bed.IssuerKeyHash, dev.Serial).State, Is.EqualTo(RegistryCertificateState.Good));
    }

    [Test]
    public async Task Delta_crl_is_served_with_caching_headers_and_both_crls_are_published()
    {
        var dev = _bed.Issue();
        using var http = new HttpClient();
        var full = await http.GetAsync(_http + "/crl/F1.crl");
        Assert.That((int)full.StatusCode, Is.EqualTo(200));
        _bed.Registry.Revoke("F1", dev.Serial, CrlReason.KeyCompromise, null, "test");
        var delta = await http.GetAsync(_http + "/crl/F1-delta.crl");
        Assert.That((int)delta.StatusCode, Is.EqualTo(200));
        Assert.That(delta.Content.Headers.ContentType!.MediaType, Is.EqualTo("application/pkix-crl"));
        Assert.That(delta.Headers.ETag, Is.Not.Null);
        Assert.That(delta.Content.Headers.LastModified, Is.Not.Null);
        Assert.That(delta.Headers.CacheControl!.MaxAge, Is.GreaterThan(TimeSpan.Zero).And.LessThanOrEqualTo(TimeSpan.FromDays(1)));
        var der = await delta.Content.ReadAsByteArrayAsync();
        var pem = Path.Combine(_bed.DataDirectory, "served-delta.pem");
        await File.WriteAllTextAsync(pem, System.Security.Cryptography.PemEncoding.WriteString("X509 CRL", der));
        var text = Tool.OpenSsl("crl", "-in", pem, "-noout", "-text").EnsureSuccess("openssl crl").StdOut;
        Assert.That(text, Does.Contain("Delta CRL Indicator").And.Contain(dev.SerialHex));

        var notModified = new HttpRequestMessage(HttpMethod.Get, _http + "/crl/F1-delta.crl");
        notModified.Headers.IfNoneMatch.Add(delta.Headers.ETag!);
        Assert.That((int)(await http.SendAsync(notModified)).StatusCode, Is.EqualTo(304));

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!(File.Exists(Path.Combine(_publish, "F1.crl")) && File.Exists(Path.Combine(_publish, "F1-delta.crl"))) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        Assert.That(File.Exists(Path.Combine(_publish, "F1.crl")), "full CRL written to Crl:PublishDirectory");
        Assert.That(File.Exists(Path.Combine(_publish, "F1-delta.crl")), "delta CRL written to Crl:PublishDirectory");
        // The refresher (polling every 200 ms) may be mid-way through an atomic write (temp file, then rename) right now;
        // what must hold is that no temporary file is left behind once it settles.
        var settle = DateTime.UtcNow.AddSeconds(10);
        while (Directory.GetFiles(_publish, "*.tmp").Length > 0 && DateTime.UtcNow < settle)
        {
            await Task.Delay(50);
        }

        Assert.That(Directory.GetFiles(_publish, "*.tmp"), Is.Empty, "no temporary files left behind");
    }
}
