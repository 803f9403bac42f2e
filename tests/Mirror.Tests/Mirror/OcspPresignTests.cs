using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using OfflinePki.Asn1;
using OfflinePki.Keys;
using OfflinePki.Ocsp;
using OfflinePki.Registry;
using OfflinePki.Revocation;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Mirror;

/// <summary>The pre-signed RFC 5019 index: lookups, revocations seen at once (also from another registry handle), bounds, refresh.</summary>
public class OcspPresignTests
{
    private static OcspResponder Presigned(MirrorTestBed bed, TimeProvider time, SqliteCertificateFeed feed, int maxCached = 1000)
    {
        var r = new OcspResponder(
            [new OcspIssuer("F1", bed.IssuingCa, bed.Pki.Cert("ocsp-F1"), SoftwareKeyLoader.Load(bed.Pki.PathOf("ocsp-F1.key")))],
            bed.Registry, time, new OcspResponderSettings(TimeSpan.FromHours(24), NeverIssuedPolicy.Revoked, TimeSpan.FromMinutes(1)));
        r.EnablePresigning(feed, new OcspPresignSettings(maxCached, TimeSpan.FromHours(12), TimeSpan.FromHours(1)));
        return r;
    }

    private static byte[] Request(MirrorTestBed bed, MirrorTestBed.Device dev, params string[] extra)
    {
        var path = Path.Combine(bed.DataDirectory, Guid.NewGuid().ToString("N") + ".req");
        Tool.OpenSsl(["ocsp", "-issuer", bed.Pki.PathOf("issuing-ca-F1.crt"), .. extra, "-cert", dev.PemPath, "-reqout", path]).EnsureSuccess("openssl ocsp -reqout");
        return File.ReadAllBytes(path);
    }

    private static string Verify(MirrorTestBed bed, byte[] response, byte[]? request = null)
    {
        var resp = Path.Combine(bed.DataDirectory, Guid.NewGuid().ToString("N") + ".der");
        File.WriteAllBytes(resp, response);
        string[] args = ["ocsp", "-respin", resp, "-resp_text", "-CAfile", bed.Pki.PathOf("root-ca.crt"), "-issuer", bed.Pki.PathOf("issuing-ca-F1.crt")];
        if (request is not null)
        {
            var req = resp + ".req";
            File.WriteAllBytes(req, request);
            args = [.. args, "-reqin", req];
        }

        var r = Tool.OpenSsl(args);
        var text = r.StdOut + r.StdErr;

        // BouncyCastle reads the same bytes and must agree with openssl.
        BouncyOracle.OcspAgreesWithOpenSsl(text, response, bed.IssuingCa, bed.Pki.Cert("ocsp-F1"));
        return text;
    }

    [Test]
    public void Every_known_certificate_is_presigned_and_a_query_is_a_lookup()
    {
        using var bed = new MirrorTestBed();
        var devices = Enumerable.Range(0, 5).Select(_ => bed.Issue()).ToList();
        bed.Registry.Revoke("F1", devices[4].Serial, CrlReason.KeyCompromise, null, "test");
        using var feed = new SqliteCertificateFeed(bed.Registry.DatabasePath);
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var responder = Presigned(bed, time, feed);

        Assert.That(responder.MaintainPresigned(), Is.EqualTo(5));
        Assert.That(responder.PresignStatistics, Is.EqualTo(new OcspIndexStatistics(5, 5, true)));
        Assert.That(responder.MaintainPresigned(), Is.Zero, "nothing due: no re-signing");

        var request = Request(bed, devices[0], "-no_nonce");
        var a = responder.Respond(request);
        time.Advance(TimeSpan.FromMinutes(30));
        var b = responder.Respond(request);
        Assert.That(b.Der, Is.EqualTo(a.Der), "a copy of the pre-signed answer (ECDSA signatures differ per signing: no signature per query), even after the LRU time");
        Assert.That(b.Der, Is.Not.SameAs(a.Der), "each query gets its own copy");
        var text = Verify(bed, a.Der, request);
        Assert.That(text, Does.Contain("Response verify OK"), text);
        Assert.That(text, Does.Contain(": good"));
        Assert.That(text, Does.Not.Contain("Response Extensions"), "RFC 5019 shape: no nonce, no extensions");

        var revokedDer = responder.Respond(Request(bed, devices[4], "-no_nonce")).Der;
        var revoked = Verify(bed, revokedDer);
        Assert.That(revoked, Does.Contain("Cert Status: revoked").And.Contain("keyCompromise"));
        Assert.That(BouncyOracle.OcspResponse(revokedDer, bed.IssuingCa).For(devices[4].Serial).Reason, Is.EqualTo((int)CrlReason.KeyCompromise));

        // A nonce is never served from the cache: it is echoed (RFC 8954).
        var withNonce = Request(bed, devices[0]);
        var n = responder.Respond(withNonce);
        Assert.That(n.HasNonce, Is.True);
        Assert.That(Verify(bed, n.Der, withNonce), Does.Contain("Response verify OK").And.Not.Contain("nonce verify error"));
    }

    [Test]
    public void A_revocation_from_another_registry_handle_is_answered_at_once_then_resigned()
    {
        using var bed = new MirrorTestBed();
        var dev = bed.Issue();
        var dev2 = bed.Issue();
        using var feed = new SqliteCertificateFeed(bed.Registry.DatabasePath);
        var responder = Presigned(bed, TimeProvider.System, feed);
        responder.MaintainPresigned();
        var request = Request(bed, dev, "-no_nonce");
        var good = responder.Respond(request);
        Assert.That(Verify(bed, good.Der), Does.Contain("Cert Status: good"));

        // Another process (the revoke CLI) writes the same file through its own handle; the next query sees it.
        using (var other = new MirrorRegistry(bed.Registry.DatabasePath, TimeProvider.System))
        {
            other.Revoke("F1", dev.Serial, CrlReason.CessationOfOperation, null, "cli:test");
        }

        var revoked = responder.Respond(request);
        Assert.That(Verify(bed, revoked.Der), Does.Contain("Cert Status: revoked").And.Contain("cessationOfOperation"));
        Assert.That(responder.Respond(request).Der, Is.EqualTo(revoked.Der), "the fresh signature went into the index");

        // Without any query, the background pass re-signs what a revocation changed.
        using (var other = new MirrorRegistry(bed.Registry.DatabasePath, TimeProvider.System))
        {
            other.Revoke("F1", dev2.Serial, CrlReason.Superseded, null, "cli:test");
        }

        Assert.That(responder.MaintainPresigned(), Is.EqualTo(1), "the revoked response is re-signed into the index");
        var request2 = Request(bed, dev2, "-no_nonce");
        var again = responder.Respond(request2);
        Assert.That(responder.Respond(request2).Der, Is.EqualTo(again.Der));
        Assert.That(Verify(bed, again.Der), Does.Contain("Cert Status: revoked").And.Contain("superseded"));

        // A certificate applied later by sync is picked up without a restart.
        var later = bed.Issue();
        Assert.That(Verify(bed, responder.Respond(Request(bed, later, "-no_nonce")).Der), Does.Contain("Cert Status: good"));
    }

    [Test]
    public void Never_issued_sha256_and_the_bound_on_presigned_responses()
    {
        using var bed = new MirrorTestBed();
        var devices = Enumerable.Range(0, 3).Select(_ => bed.Issue()).ToList();
        var stranger = bed.Issue(record: false);
        using var feed = new SqliteCertificateFeed(bed.Registry.DatabasePath);
        var responder = Presigned(bed, TimeProvider.System, feed, maxCached: 1);
        Assert.That(responder.MaintainPresigned(), Is.EqualTo(1));
        Assert.That(responder.PresignStatistics, Is.EqualTo(new OcspIndexStatistics(3, 1, true)));
        foreach (var dev in devices)
        {
            Assert.That(Verify(bed, responder.Respond(Request(bed, dev, "-no_nonce")).Der), Does.Contain("Cert Status: good"), "beyond the bound: signed on demand");
        }

        Assert.That(responder.PresignStatistics!.Presigned, Is.EqualTo(1), "the bound holds");

        var never = Request(bed, stranger, "-no_nonce");
        var answer = responder.Respond(never);
        var text = Verify(bed, answer.Der, never);
        Assert.That(text, Does.Contain("Response verify OK").And.Contain("Cert Status: revoked").And.Contain("certificateHold"), text);
        Assert.That(responder.Respond(never), Is.SameAs(answer), "never-issued answers come from the LRU");

        var sha256 = Request(bed, devices[1], "-no_nonce", "-sha256");
        var s = Verify(bed, responder.Respond(sha256).Der, sha256);
        Assert.That(s, Does.Contain("Response verify OK").And.Contain("Cert Status: good").And.Contain("Hash Algorithm: sha256"), s);
    }

    [Test]
    public void Responses_are_resigned_before_next_update()
    {
        using var bed = new MirrorTestBed();
        var dev = bed.Issue();
        using var feed = new SqliteCertificateFeed(bed.Registry.DatabasePath);
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var responder = Presigned(bed, time, feed);
        responder.MaintainPresigned();
        var request = Request(bed, dev, "-no_nonce");
        var first = responder.Respond(request);
        time.Advance(TimeSpan.FromHours(11));
        Assert.That(responder.MaintainPresigned(), Is.Zero);
        Assert.That(responder.Respond(request).Der, Is.EqualTo(first.Der));
        time.Advance(TimeSpan.FromHours(2));
        var onDemand = responder.Respond(request);
        Assert.That(onDemand.ProducedAt, Is.EqualTo(DerTime.Truncate(time.GetUtcNow())), "past RefreshBefore a query never gets the old response");
        Assert.That(responder.MaintainPresigned(), Is.Zero, "the query already stored its fresh signature");
        time.Advance(TimeSpan.FromHours(13));
        Assert.That(responder.MaintainPresigned(), Is.EqualTo(1));
        Assert.That(responder.Respond(request).NextUpdate, Is.EqualTo(DerTime.Truncate(time.GetUtcNow()) + TimeSpan.FromHours(24)));
    }

    [Test]
    public void Bad_presign_settings_are_refused()
    {
        using var bed = new MirrorTestBed();
        using var feed = new SqliteCertificateFeed(bed.Registry.DatabasePath);
        var r = new OcspResponder(
            [new OcspIssuer("F1", bed.IssuingCa, bed.Pki.Cert("ocsp-F1"), SoftwareKeyLoader.Load(bed.Pki.PathOf("ocsp-F1.key")))],
            bed.Registry, TimeProvider.System, new OcspResponderSettings(TimeSpan.FromHours(1), NeverIssuedPolicy.Revoked, TimeSpan.Zero));
        Assert.That(() => r.EnablePresigning(feed, new OcspPresignSettings(0, TimeSpan.FromMinutes(1), TimeSpan.FromSeconds(1))), Throws.ArgumentException.With.Message.Contains("MaxCachedResponses"));
        Assert.That(() => r.EnablePresigning(feed, new OcspPresignSettings(1, TimeSpan.FromHours(1), TimeSpan.FromSeconds(1))), Throws.ArgumentException.With.Message.Contains("RefreshBefore"));
        Assert.That(r.PresignStatistics, Is.Null, "nothing enabled");
    }
}
