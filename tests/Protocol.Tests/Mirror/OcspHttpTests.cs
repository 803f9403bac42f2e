using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using OfflinePki.Asn1;
using OfflinePki.MirrorCa;
using OfflinePki.Ocsp;
using OfflinePki.Revocation;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Mirror;

/// <summary>The mirror's OCSP over HTTP: RFC 5019 §6 caching headers, responder renewal, and .NET's X509Chain as an online relying party.</summary>
[NonParallelizable]
public class OcspHttpTests
{
    private static async Task<(WebApplication App, string Url)> Start(MirrorTestBed bed, TimeProvider? time = null)
    {
        var app = MirrorCaApp.Build(bed.ConfigPath, new Dictionary<string, string?> { ["MirrorCa:Http:Listen"] = "http://127.0.0.1:0", ["MirrorCa:Sync:Listen"] = "" },
            time is null ? null : b => b.Services.Replace(ServiceDescriptor.Singleton(time)));
        await app.StartAsync();
        return (app, app.Urls.Single().TrimEnd('/'));
    }

    private static async Task Stop(WebApplication app)
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }

    [Test]
    public async Task Get_carries_rfc5019_caching_headers_and_revalidates_with_etag()
    {
        using var bed = new MirrorTestBed();
        var dev = bed.Issue();
        var (app, url) = await Start(bed);
        try
        {
            var req = Path.Combine(bed.DataDirectory, "h.req");
            Tool.OpenSsl("ocsp", "-issuer", bed.Pki.PathOf("issuing-ca-F1.crt"), "-cert", dev.PemPath, "-no_nonce", "-reqout", req).EnsureSuccess("openssl ocsp -reqout");
            var getUrl = url + "/ocsp/" + Uri.EscapeDataString(Convert.ToBase64String(File.ReadAllBytes(req)));
            using var http = new HttpClient();
            using var first = await http.GetAsync(getUrl);
            var body = await first.Content.ReadAsByteArrayAsync();
            Assert.That(first.Content.Headers.ContentType!.MediaType, Is.EqualTo("application/ocsp-response"));
            var cc = first.Headers.CacheControl!;
            Assert.That(cc.Public && cc.NoTransform && cc.MustRevalidate && cc.MaxAge > TimeSpan.Zero, Is.True, cc.ToString());
            Assert.That(first.Headers.ETag!.Tag, Is.EqualTo("\"" + Convert.ToHexStringLower(SHA1.HashData(body)) + "\""), "ETag = SHA-1 of the response (RFC 5019 §6.2)");

            var resp = Path.Combine(bed.DataDirectory, "h.der");
            File.WriteAllBytes(resp, body);
            var text = Tool.OpenSsl("ocsp", "-respin", resp, "-resp_text", "-noverify").StdOut;
            var thisUpdate = DateTimeOffset.ParseExact(Field(text, "This Update: "), "MMM d HH:mm:ss yyyy 'GMT'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AllowInnerWhite);
            var nextUpdate = DateTimeOffset.ParseExact(Field(text, "Next Update: "), "MMM d HH:mm:ss yyyy 'GMT'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AllowInnerWhite);
            Assert.That(first.Content.Headers.LastModified, Is.EqualTo(thisUpdate), "Last-Modified = thisUpdate");
            Assert.That(first.Content.Headers.Expires, Is.EqualTo(nextUpdate), "Expires = nextUpdate");
            var bc = BouncyOracle.OcspResponse(body, bed.IssuingCa, bed.Pki.Cert("ocsp-F1"));
            Assert.That(bc.For(dev.Serial).Status, Is.EqualTo(OracleCertStatus.Good));
            Assert.That(bc.For(dev.Serial).ThisUpdate, Is.EqualTo(thisUpdate), "BouncyCastle reads the same thisUpdate as openssl");
            Assert.That(bc.For(dev.Serial).NextUpdate, Is.EqualTo(nextUpdate), "BouncyCastle reads the same nextUpdate as openssl");
            Assert.That(bc.Nonce, Is.Null, "RFC 5019 §4: no nonce in a GET answer");
            Assert.That(cc.MaxAge!.Value, Is.LessThanOrEqualTo(nextUpdate - DateTimeOffset.UtcNow + TimeSpan.FromSeconds(5)));

            using var again = new HttpRequestMessage(HttpMethod.Get, getUrl);
            again.Headers.IfNoneMatch.Add(first.Headers.ETag);
            using var second = await http.SendAsync(again);
            Assert.That((int)second.StatusCode, Is.EqualTo(304));

            // A nonce-bearing POST is never cacheable.
            var post = Tool.Run("curl", ["-sS", "-D", "-", "-o", "/dev/null", "-H", "Content-Type: application/ocsp-request", "--data-binary", "@" + req, url + "/ocsp"]);
            Assert.That(post.StdOut, Does.Contain("no-store"));
        }
        finally
        {
            await Stop(app);
        }
    }

    private static string Field(string text, string name)
    {
        var line = text.Split('\n').First(l => l.Contains(name, StringComparison.Ordinal));
        return string.Join(' ', line[(line.IndexOf(name, StringComparison.Ordinal) + name.Length)..].Split(' ', StringSplitOptions.RemoveEmptyEntries));
    }

    [Test]
    public async Task The_responder_certificate_is_renewed_before_it_expires()
    {
        using var bed = new MirrorTestBed();
        var dev = bed.Issue();
        using var configured = bed.Pki.Cert("ocsp-F1");
        var configuredNotAfter = new DateTimeOffset(configured.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        var time = new FakeTimeProvider(configuredNotAfter - TimeSpan.FromDays(6)); // inside the default 7-day ResponderRenewBefore
        var (app, url) = await Start(bed, time);
        try
        {
            var stored = OcspResponderRenewer.StoredPath(Path.Combine(bed.DataDirectory), "F1");
            Assert.That(File.Exists(stored), Is.True, "renewed at start and stored in the data directory");
            using var renewed = X509CertificateLoader.LoadCertificateFromFile(stored);
            Assert.That(renewed.SerialNumber, Is.Not.EqualTo(configured.SerialNumber));
            Assert.That(renewed.NotBefore.ToUniversalTime(), Is.EqualTo(DerTime.Truncate(time.GetUtcNow()).UtcDateTime));
            Assert.That(renewed.NotAfter.ToUniversalTime(), Is.EqualTo((DerTime.Truncate(time.GetUtcNow()) + TimeSpan.FromDays(30)).UtcDateTime));
            Assert.That(renewed.PublicKey.ExportSubjectPublicKeyInfo(), Is.EqualTo(configured.PublicKey.ExportSubjectPublicKeyInfo()), "same responder key");
            Assert.That(renewed.Extensions[Oids.OcspNoCheck], Is.Not.Null, "id-pkix-ocsp-nocheck");
            Assert.That(renewed.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages[0]!.Value, Is.EqualTo(Oids.OcspSigningEku));

            // Answers are signed under the new certificate; openssl verifies them up to the root at the injected time.
            var r = Tool.OpenSsl("ocsp", "-issuer", bed.Pki.PathOf("issuing-ca-F1.crt"), "-cert", dev.PemPath, "-url", url + "/ocsp", "-CAfile", bed.Pki.PathOf("root-ca.crt"),
                "-no_nonce", "-resp_text", "-attime", (time.GetUtcNow().ToUnixTimeSeconds() + 60).ToString(CultureInfo.InvariantCulture));
            Assert.That(r.StdErr, Does.Contain("Response verify OK"), r.StdOut + r.StdErr);
            Assert.That(r.StdOut.Replace(":", "", StringComparison.Ordinal), Does.Contain(renewed.SerialNumber.ToLowerInvariant().TrimStart('0')).IgnoreCase);
            var respFile = Path.Combine(bed.DataDirectory, "renewed.der");
            Tool.OpenSsl("ocsp", "-issuer", bed.Pki.PathOf("issuing-ca-F1.crt"), "-cert", dev.PemPath, "-url", url + "/ocsp", "-no_nonce", "-noverify", "-respout", respFile)
                .EnsureSuccess("openssl ocsp -respout");
            var bc = BouncyOracle.OcspResponse(File.ReadAllBytes(respFile), bed.IssuingCa, renewed);
            Assert.That(bc.For(dev.Serial).Status, Is.EqualTo(OracleCertStatus.Good));
            Assert.That(BouncyOracle.SerialHex(bc.Responder!), Is.EqualTo(renewed.SerialNumber), "BouncyCastle: signed under the renewed certificate");

            // A restart adopts the stored certificate instead of issuing another one.
            await Stop(app);
            (app, _) = await Start(bed, time);
            using var still = X509CertificateLoader.LoadCertificateFromFile(stored);
            Assert.That(still.SerialNumber, Is.EqualTo(renewed.SerialNumber));
            Assert.That(app.Services.GetRequiredService<OcspResponder>().Issuers.Single().ResponderNotAfter.UtcDateTime, Is.EqualTo(renewed.NotAfter.ToUniversalTime()));
        }
        finally
        {
            await Stop(app);
        }
    }

    [Test]
    public async Task Dotnet_x509chain_online_revocation_uses_the_mirror_ocsp_url()
    {
        using var bed = new MirrorTestBed();
        var (app, url) = await Start(bed);
        try
        {
            var good = bed.Issue(ocspUrl: url + "/ocsp");
            var revoked = bed.Issue(ocspUrl: url + "/ocsp");
            bed.Registry.Revoke("F1", revoked.Serial, CrlReason.KeyCompromise, null, "test");

            using var goodChain = Chain(bed);
            using var goodCert = X509CertificateLoader.LoadCertificate(good.Der);
            bool ok = goodChain.Build(goodCert);
            Assert.That(ok, Is.True, string.Join("; ", goodChain.ChainStatus.Select(s => s.Status + ": " + s.StatusInformation)));

            using var badChain = Chain(bed);
            using var badCert = X509CertificateLoader.LoadCertificate(revoked.Der);
            Assert.That(badChain.Build(badCert), Is.False);
            Assert.That(badChain.ChainElements[0].ChainElementStatus.Select(s => s.Status), Does.Contain(X509ChainStatusFlags.Revoked),
                string.Join("; ", badChain.ChainStatus.Select(s => s.Status + ": " + s.StatusInformation)));
        }
        finally
        {
            await Stop(app);
        }
    }

    [TestCase("MirrorCa:Ocsp:RefreshBefore", "2.00:00:00", "MirrorCa:Ocsp:RefreshBefore")]
    [TestCase("MirrorCa:Ocsp:MaxCachedResponses", "0", "MirrorCa:Ocsp:MaxCachedResponses")]
    [TestCase("MirrorCa:Ocsp:PollInterval", "00:00:00", "MirrorCa:Ocsp:PollInterval")]
    [TestCase("MirrorCa:Ocsp:ResponderRenewBefore", "60.00:00:00", "MirrorCa:Ocsp:ResponderRenewBefore")]
    public async Task Bad_ocsp_options_fail_at_start_naming_the_key(string key, string value, string expected)
    {
        using var bed = new MirrorTestBed();
        var ex = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(async () =>
        {
            var app = MirrorCaApp.Build(bed.ConfigPath, new Dictionary<string, string?>
            {
                ["MirrorCa:Http:Listen"] = "http://127.0.0.1:0", ["MirrorCa:Sync:Listen"] = "", [key] = value,
            });
            await using (app)
            {
                await app.StartAsync();
            }
        });
        Assert.That(ex!.Message, Does.Contain(expected));
        Assert.That(File.Exists(OcspResponderRenewer.StoredPath(bed.DataDirectory, "F1")), Is.False, "nothing issued");
    }

    private static X509Chain Chain(MirrorTestBed bed)
    {
        var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(bed.Pki.Root);
        chain.ChainPolicy.ExtraStore.Add(bed.Pki.Cert("issuing-ca-F1"));
        chain.ChainPolicy.RevocationMode = X509RevocationMode.Online;
        chain.ChainPolicy.RevocationFlag = X509RevocationFlag.EndCertificateOnly;
        chain.ChainPolicy.UrlRetrievalTimeout = TimeSpan.FromSeconds(10);
        return chain;
    }
}
