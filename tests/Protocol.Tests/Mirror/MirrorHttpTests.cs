using Microsoft.AspNetCore.Builder;
using NUnit.Framework;
using OfflinePki.MirrorCa;
using OfflinePki.Revocation;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Mirror;

/// <summary>The MirrorCa host on loopback, against openssl and curl.</summary>
[NonParallelizable]
public class MirrorHttpTests
{
    private MirrorTestBed _bed = null!;
    private WebApplication _app = null!;
    private string _url = null!;
    private MirrorTestBed.Device _good = null!;
    private MirrorTestBed.Device _revoked = null!;
    private MirrorTestBed.Device _neverIssued = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _bed = new MirrorTestBed();
        _good = _bed.Issue();
        _revoked = _bed.Issue();
        _neverIssued = _bed.Issue(record: false);
        _bed.Registry.Revoke("F1", _revoked.Serial, CrlReason.KeyCompromise, null, "test");
        _app = MirrorCaApp.Build(_bed.ConfigPath, new Dictionary<string, string?> { ["MirrorCa:Http:Listen"] = "http://127.0.0.1:0", ["MirrorCa:Sync:Listen"] = "" });
        await _app.StartAsync();
        _url = _app.Urls.Single().TrimEnd('/');
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _bed.Dispose();
    }

    private string Pki(string name) => _bed.Pki.PathOf(name);

    private Tool.Result Ocsp(string certPem, params string[] extra) => Tool.OpenSsl(
        ["ocsp", "-issuer", Pki("issuing-ca-F1.crt"), "-cert", certPem, "-url", _url + "/ocsp", "-CAfile", Pki("root-ca.crt"), "-resp_text", .. extra]);

    [TestCase(false)]
    [TestCase(true)]
    public void Post_answers_good_revoked_and_never_issued_and_verifies(bool noNonce)
    {
        string[] extra = noNonce ? ["-no_nonce"] : [];
        var good = Ocsp(_good.PemPath, extra);
        Assert.That(good.StdErr, Does.Contain("Response verify OK"), good.StdOut + good.StdErr);
        Assert.That(good.StdOut, Does.Contain(_good.PemPath + ": good"));
        Assert.That(good.StdOut, Does.Contain("Responder Id: "), "ResponderID byKey");
        if (!noNonce)
        {
            Assert.That(good.StdOut, Does.Contain("OCSP Nonce"));
            Assert.That(good.StdErr + good.StdOut, Does.Not.Contain("nonce verify error").IgnoreCase);
        }

        var revoked = Ocsp(_revoked.PemPath, extra);
        Assert.That(revoked.StdErr, Does.Contain("Response verify OK"), revoked.StdOut + revoked.StdErr);
        Assert.That(revoked.StdOut, Does.Contain(_revoked.PemPath + ": revoked"));
        Assert.That(revoked.StdOut, Does.Contain("keyCompromise"));

        var never = Ocsp(_neverIssued.PemPath, extra);
        Assert.That(never.StdErr, Does.Contain("Response verify OK"), never.StdOut + never.StdErr);
        Assert.That(never.StdOut, Does.Contain(_neverIssued.PemPath + ": revoked"));
        Assert.That(never.StdOut, Does.Contain("certificateHold"));
        Assert.That(never.StdOut, Does.Contain("Jan  1 00:00:00 1970 GMT"));
        // OpenSSL 3.0 names 1.3.6.1.5.5.7.48.1.9 (id-pkix-ocsp-extended-revoke) by its old short name "valid".
        Assert.That(never.StdOut, Does.Match(@"Response Extensions:[\s\S]*\n\s+valid:"));

        // BouncyCastle reads the same three answers (openssl's own bytes, kept with -respout) and agrees.
        using var responder = _bed.Pki.Cert("ocsp-F1");
        BouncyOcspSingle Bc(MirrorTestBed.Device d, string name)
        {
            var path = Path.Combine(_bed.DataDirectory, $"post-{name}-{noNonce}.der");
            var r = Ocsp(d.PemPath, [.. extra, "-respout", path]);
            Assert.That(r.StdErr, Does.Contain("Response verify OK"), r.StdOut + r.StdErr);
            var bc = BouncyOracle.OcspResponse(File.ReadAllBytes(path), _bed.IssuingCa, responder);
            Assert.That(bc.Status, Is.EqualTo(Org.BouncyCastle.Ocsp.OcspRespStatus.Successful));
            Assert.That(bc.Nonce is not null, Is.EqualTo(!noNonce), "the nonce is echoed exactly when asked");
            Assert.That(bc.Responses, Has.Count.EqualTo(1));
            Assert.That(bc.HasExtendedRevoke, Is.EqualTo(d == _neverIssued), "extended revoke only on the never-issued answer");
            return bc.For(d.Serial);
        }

        Assert.That(Bc(_good, "good").Status, Is.EqualTo(OracleCertStatus.Good));
        var bcRevoked = Bc(_revoked, "revoked");
        Assert.That(bcRevoked.Status, Is.EqualTo(OracleCertStatus.Revoked));
        Assert.That(bcRevoked.Reason, Is.EqualTo((int)CrlReason.KeyCompromise));
        var bcNever = Bc(_neverIssued, "never");
        Assert.That(bcNever.Status, Is.EqualTo(OracleCertStatus.Revoked));
        Assert.That(bcNever.Reason, Is.EqualTo((int)CrlReason.CertificateHold));
        Assert.That(bcNever.RevocationTime, Is.EqualTo(DateTimeOffset.UnixEpoch), "RFC 6960 §2.2: revocationTime 1970-01-01 for never issued");
    }

    [Test]
    public void Get_request_per_rfc6960_appendix_a1()
    {
        var dir = _bed.DataDirectory;
        var req = Path.Combine(dir, "get-req.der");
        var resp = Path.Combine(dir, "get-resp.der");
        Tool.OpenSsl("ocsp", "-issuer", Pki("issuing-ca-F1.crt"), "-cert", _revoked.PemPath, "-no_nonce", "-reqout", req).EnsureSuccess("openssl ocsp -reqout");
        var encoded = Uri.EscapeDataString(Convert.ToBase64String(File.ReadAllBytes(req)));
        var curl = Tool.Run("curl", ["-sS", "-D", "-", "-o", resp, _url + "/ocsp/" + encoded]).EnsureSuccess("curl GET");
        Assert.That(curl.StdOut, Does.Contain("200").And.Contain("application/ocsp-response"));
        Assert.That(curl.StdOut, Does.Contain("max-age="));
        var parsed = Tool.OpenSsl("ocsp", "-respin", resp, "-issuer", Pki("issuing-ca-F1.crt"), "-cert", _revoked.PemPath, "-CAfile", Pki("root-ca.crt"), "-resp_text");
        Assert.That(parsed.StdErr, Does.Contain("Response verify OK"), parsed.StdOut + parsed.StdErr);
        Assert.That(parsed.StdOut, Does.Contain(": revoked"));
        using var responder = _bed.Pki.Cert("ocsp-F1");
        var bc = BouncyOracle.OcspResponse(File.ReadAllBytes(resp), _bed.IssuingCa, responder);
        Assert.That(bc.Nonce, Is.Null);
        Assert.That(bc.For(_revoked.Serial).Status, Is.EqualTo(OracleCertStatus.Revoked));
        Assert.That(bc.For(_revoked.Serial).Reason, Is.EqualTo((int)CrlReason.KeyCompromise));
    }

    [Test]
    public void Unknown_issuer_is_unauthorized()
    {
        var r = Tool.OpenSsl("ocsp", "-issuer", Pki("root-ca.crt"), "-cert", _good.PemPath, "-url", _url + "/ocsp", "-resp_text", "-no_nonce");
        Assert.That(r.StdOut + r.StdErr, Does.Contain("unauthorized (6)"));
    }

    [Test]
    public void Garbage_is_malformed_request_and_oversized_bodies_are_413()
    {
        var dir = _bed.DataDirectory;
        var garbage = Path.Combine(dir, "garbage.bin");
        File.WriteAllBytes(garbage, "this is not DER"u8.ToArray());
        var resp = Path.Combine(dir, "garbage-resp.der");
        Tool.Run("curl", ["-sS", "-o", resp, "-H", "Content-Type: application/ocsp-request", "--data-binary", "@" + garbage, _url + "/ocsp"]).EnsureSuccess("curl POST");
        var parsed = Tool.OpenSsl("ocsp", "-respin", resp, "-resp_text");
        Assert.That(parsed.StdOut + parsed.StdErr, Does.Contain("malformedrequest (1)"));
        Assert.That(BouncyOracle.OcspResponse(File.ReadAllBytes(resp), _bed.IssuingCa).Status, Is.EqualTo(Org.BouncyCastle.Ocsp.OcspRespStatus.MalformedRequest));

        var badGet = Path.Combine(dir, "garbage-get.der");
        Tool.Run("curl", ["-sS", "-o", badGet, _url + "/ocsp/%%%not-base64"]).EnsureSuccess("curl GET");
        Assert.That(Tool.OpenSsl("ocsp", "-respin", badGet, "-resp_text").StdOut, Does.Contain("malformedrequest (1)"));

        var big = Path.Combine(dir, "big.bin");
        File.WriteAllBytes(big, new byte[70_000]);
        var tooBig = Tool.Run("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/ocsp-request", "--data-binary", "@" + big, _url + "/ocsp"]);
        Assert.That(tooBig.StdOut, Is.EqualTo("413"));
    }

    [Test]
    public void Crl_and_ca_certificate_are_served_and_follow_revocations_made_elsewhere()
    {
        var dir = _bed.DataDirectory;
        var crlFile = Path.Combine(dir, "http.crl");
        var head = Tool.Run("curl", ["-sS", "-D", "-", "-o", crlFile, _url + "/crl/F1.crl"]).EnsureSuccess("curl crl");
        Assert.That(head.StdOut, Does.Contain("application/pkix-crl").And.Contain("ETag"));
        var text = Tool.OpenSsl("crl", "-inform", "DER", "-in", crlFile, "-noout", "-text", "-CAfile", Pki("issuing-ca-F1.crt")).EnsureSuccess("openssl crl");
        Assert.That(text.StdOut + text.StdErr, Does.Contain("verify OK").And.Contain(_revoked.SerialHex));
        var bc = BouncyOracle.Crl(File.ReadAllBytes(crlFile), _bed.IssuingCa);
        Assert.That(bc.Entry(_revoked.Serial)!.Reason, Is.EqualTo((int)CrlReason.KeyCompromise));

        // A revocation through another registry handle (as the CLI in another process does) shows up in CRL and OCSP.
        var late = _bed.Issue();
        Assert.That(Ocsp(late.PemPath, "-no_nonce").StdOut, Does.Contain(": good"));
        using (var cli = new Registry.MirrorRegistry(_bed.Registry.DatabasePath, TimeProvider.System))
        {
            cli.Revoke(null, late.Serial, CrlReason.AffiliationChanged, null, "other-process");
        }

        Tool.Run("curl", ["-sS", "-o", crlFile, _url + "/crl/F1.crl"]).EnsureSuccess("curl crl");
        text = Tool.OpenSsl("crl", "-inform", "DER", "-in", crlFile, "-noout", "-text").EnsureSuccess("openssl crl");
        Assert.That(text.StdOut, Does.Contain(late.SerialHex).And.Contain("Affiliation Changed"));
        var bcLate = BouncyOracle.Crl(File.ReadAllBytes(crlFile), _bed.IssuingCa);
        Assert.That(bcLate.CrlNumber, Is.GreaterThan(bc.CrlNumber));
        Assert.That(bcLate.Entry(late.Serial)!.Reason, Is.EqualTo((int)CrlReason.AffiliationChanged));
        Assert.That(Ocsp(late.PemPath, "-no_nonce").StdOut, Does.Contain(": revoked"));

        var caFile = Path.Combine(dir, "ca.der");
        var ca = Tool.Run("curl", ["-sS", "-D", "-", "-o", caFile, _url + "/ca/F1.crt"]).EnsureSuccess("curl ca");
        Assert.That(ca.StdOut, Does.Contain("application/pkix-cert"));
        Assert.That(File.ReadAllBytes(caFile), Is.EqualTo(_bed.IssuingCa.RawData));
        var missing = Tool.Run("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", _url + "/crl/F9.crl"]);
        Assert.That(missing.StdOut, Is.EqualTo("404"));
    }

    [Test]
    public void Crl_etag_revalidates_and_ocsp_post_needs_its_content_type()
    {
        var head = Tool.Run("curl", ["-sS", "-D", "-", "-o", "/dev/null", _url + "/crl/F1.crl"]).EnsureSuccess("curl crl");
        var etag = head.StdOut.Split('\n').Single(l => l.StartsWith("ETag:", StringComparison.OrdinalIgnoreCase))[5..].Trim();
        var again = Tool.Run("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "If-None-Match: " + etag, _url + "/crl/F1.crl"]);
        Assert.That(again.StdOut, Is.EqualTo("304"));
        var wrongType = Tool.Run("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: text/plain", "--data-binary", "x", _url + "/ocsp"]);
        Assert.That(wrongType.StdOut, Is.EqualTo("415"));
    }
}
