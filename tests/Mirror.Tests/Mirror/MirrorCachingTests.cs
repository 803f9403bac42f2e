using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using OfflinePki.Asn1;
using OfflinePki.Crl;
using OfflinePki.Keys;
using OfflinePki.Ocsp;
using OfflinePki.Revocation;

namespace OfflinePki.Tests.Mirror;

/// <summary>CRL refresh and OCSP response caching under a controlled clock.</summary>
public class MirrorCachingTests
{
    [Test]
    public void Crl_is_reused_until_refresh_after_then_rebuilt_with_a_new_number()
    {
        using var bed = new MirrorTestBed();
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds()));
        var publisher = new CrlPublisher(CrlIssuer.FromCertificate(bed.IssuingCa), SoftwareKeyLoader.Load(bed.Pki.PathOf("issuing-ca-F1.key")),
            bed.Registry, time, TimeSpan.FromDays(7), TimeSpan.FromHours(1));
        var first = publisher.GetCurrent();
        Assert.That(first.NextUpdate - first.ThisUpdate, Is.EqualTo(TimeSpan.FromDays(7)));
        time.Advance(TimeSpan.FromMinutes(59));
        Assert.That(publisher.GetCurrent(), Is.SameAs(first));
        time.Advance(TimeSpan.FromMinutes(2));
        var second = publisher.GetCurrent();
        Assert.That(second.CrlNumber, Is.EqualTo(first.CrlNumber + 1));
        Assert.That(second.ThisUpdate, Is.EqualTo(time.GetUtcNow()));
    }

    [Test]
    public void Ocsp_answers_are_cached_until_the_registry_changes_or_the_cache_time_passes()
    {
        using var bed = new MirrorTestBed();
        var dev = bed.Issue();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var responder = new OcspResponder(
            [new OcspIssuer("F1", bed.IssuingCa, bed.Pki.Cert("ocsp-F1"), SoftwareKeyLoader.Load(bed.Pki.PathOf("ocsp-F1.key")))],
            bed.Registry, time, new OcspResponderSettings(TimeSpan.FromHours(1), NeverIssuedPolicy.Revoked, TimeSpan.FromMinutes(1)));
        var request = File.ReadAllBytes(MakeRequest(bed, dev));

        var a = responder.Respond(request);
        var b = responder.Respond(request);
        Assert.That(b, Is.SameAs(a), "nonce-less single answer reused");
        time.Advance(TimeSpan.FromMinutes(2));
        var c = responder.Respond(request);
        Assert.That(c, Is.Not.SameAs(a));
        bed.Registry.Revoke("F1", dev.Serial, CrlReason.KeyCompromise, null, "t");
        var d = responder.Respond(request);
        Assert.That(d, Is.Not.SameAs(c), "a revocation invalidates the cached good answer");
        var path = Path.Combine(bed.DataDirectory, "cached-resp.der");
        File.WriteAllBytes(path, d.Der);
        var text = Support.Tool.OpenSsl("ocsp", "-respin", path, "-resp_text", "-noverify");
        Assert.That(text.StdOut, Does.Contain("Cert Status: revoked"));
    }

    private static string MakeRequest(MirrorTestBed bed, MirrorTestBed.Device dev)
    {
        var path = Path.Combine(bed.DataDirectory, SerialNumber.ToHex(dev.Serial) + ".req");
        Support.Tool.OpenSsl("ocsp", "-issuer", bed.Pki.PathOf("issuing-ca-F1.crt"), "-cert", dev.PemPath, "-no_nonce", "-reqout", path).EnsureSuccess("openssl ocsp -reqout");
        return path;
    }
}
