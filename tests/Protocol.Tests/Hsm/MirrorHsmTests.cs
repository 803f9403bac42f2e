using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using NUnit.Framework;
using OfflinePki.Keys;
using OfflinePki.Keys.Pkcs11;
using OfflinePki.MirrorCa;
using OfflinePki.Revocation;
using OfflinePki.Tests.Mirror;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Hsm;

/// <summary>
/// The mirror with every key in one SoftHSM2 token (issuing CA clone for CRLs, OCSP responder, receipt key): with the
/// token gone GET /health is 503 naming each key, OCSP still serves pre-signed answers and says tryLater (RFC 6960
/// §2.3) where it would have to sign, a due CRL refresh is skipped and the previous CRL keeps being served, and when
/// the token is back everything resumes without a restart.
/// </summary>
[NonParallelizable]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class MirrorHsmTests
{
    private static readonly byte[] TryLater = [0x30, 0x03, 0x0A, 0x01, 0x03];

    [Test]
    public async Task With_the_token_gone_the_mirror_is_unready_serves_what_it_has_and_never_signs_then_recovers()
    {
        var savedRetry = Pkcs11Key.RetryInterval;
        Pkcs11Key.RetryInterval = TimeSpan.Zero;
        using var bed = new MirrorTestBed();
        var known = bed.Issue();
        var laterRevoked = bed.Issue();
        var neverIssued = bed.Issue(record: false);
        string token = SoftHsm.TakeToken();
        SoftHsm.ImportKeyPair(token, SoftHsm.Pin, bed.Pki.PathOf("issuing-ca-F1.key"), "issuing-ca", "31");
        SoftHsm.ImportKeyPair(token, SoftHsm.Pin, bed.Pki.PathOf("ocsp-F1.key"), "ocsp", "32");
        SoftHsm.ImportKeyPair(token, SoftHsm.Pin, bed.Pki.PathOf("mirror-receipt.key"), "receipt", "33");
        string pinFile = SoftHsm.PinFile(SoftHsm.Pin);
        var overrides = new Dictionary<string, string?> { ["MirrorCa:Http:Listen"] = "http://127.0.0.1:0", ["MirrorCa:Sync:Listen"] = "" };
        foreach (var (section, obj) in new[] { ("MirrorCa:Factories:0:IssuingCa:Key", "issuing-ca"), ("MirrorCa:Factories:0:OcspResponder:Key", "ocsp"), ("MirrorCa:ReceiptSigner:Key", "receipt") })
        {
            overrides[section + ":File"] = "";
            overrides[section + ":Pkcs11Uri"] = $"pkcs11:token={token};object={obj};type=private";
            overrides[section + ":Module"] = SoftHsm.Module;
            overrides[section + ":PinFile"] = pinFile;
        }

        WebApplication app = MirrorCaApp.Build(bed.ConfigPath, overrides);
        await app.StartAsync();
        try
        {
            string url = app.Urls.Single().TrimEnd('/');
            using var http = new HttpClient();
            var (healthy, _) = await Health(http, url);
            Assert.That(healthy, Is.True);
            byte[] crlBefore = await http.GetByteArrayAsync(url + "/crl/F1.crl");
            byte[] knownBefore = await Ocsp(http, url, bed, known, "known-before");
            Assert.That(Tool.OpenSsl("ocsp", "-respin", Save(bed, "known-before.der", knownBefore), "-resp_text", "-noverify").StdOut, Does.Contain("Cert Status: good"));

            var restore = SoftHsm.RemoveToken(token);
            try
            {
                var (ready, health) = await Health(http, url);
                Assert.That(ready, Is.False, "GET /health is 503 while the token is away");
                foreach (var key in new[] { "MirrorCa:Factories[0]:IssuingCa:Key", "MirrorCa:Factories[0]:OcspResponder:Key", "MirrorCa:ReceiptSigner:Key" })
                {
                    var entry = health.GetProperty("keys").EnumerateArray().Single(k => k.GetProperty("configKey").GetString() == key);
                    Assert.That(entry.GetProperty("available").GetBoolean(), Is.False, key);
                    Assert.That(entry.GetProperty("reason").GetString(), Does.StartWith(key + ": PKCS#11 key"), key);
                }

                // A pre-signed answer that is still valid is served as it was; an answer that needs a signature now is tryLater, never unsigned.
                Assert.That(await Ocsp(http, url, bed, known, "known-during"), Is.EqualTo(knownBefore));
                Assert.That(await Ocsp(http, url, bed, neverIssued, "never-during"), Is.EqualTo(TryLater));

                // A revocation makes the CRL due; the refresh is skipped and the previous CRL keeps being served.
                bed.Registry.Revoke(null, laterRevoked.Serial, CrlReason.KeyCompromise, null, "test");
                Assert.That(await http.GetByteArrayAsync(url + "/crl/F1.crl"), Is.EqualTo(crlBefore));
                (_, health) = await Health(http, url);
                Assert.That(health.GetProperty("crl")[0].GetProperty("refreshSkipped").GetString(), Does.StartWith("MirrorCa:Factories[0]:IssuingCa:Key: PKCS#11 key"));
                Assert.That(health.ToString(), Does.Not.Contain(SoftHsm.Pin));
            }
            finally
            {
                restore();
            }

            var (back, after) = await Health(http, url);
            Assert.That(back, Is.True, "resumes without a restart: " + after);
            byte[] crlAfter = await http.GetByteArrayAsync(url + "/crl/F1.crl");
            Assert.That(crlAfter, Is.Not.EqualTo(crlBefore));
            string crlText = Tool.OpenSsl("crl", "-inform", "DER", "-in", Save(bed, "after.crl", crlAfter), "-noout", "-text").StdOut;
            Assert.That(crlText, Does.Contain(laterRevoked.SerialHex.ToUpperInvariant()), "the revocation made while the token was away is published now");
            var never = await Ocsp(http, url, bed, neverIssued, "never-after");
            Assert.That(never, Is.Not.EqualTo(TryLater));
            var verify = Tool.OpenSsl("ocsp", "-respin", Save(bed, "never-after.der", never), "-CAfile", bed.Pki.PathOf("root-ca.crt"),
                "-issuer", bed.Pki.PathOf("issuing-ca-F1.crt"), "-cert", neverIssued.PemPath, "-resp_text");
            Assert.That(verify.StdErr + verify.StdOut, Does.Contain("Response verify OK").And.Contain("revoked"), "never issued is revoked (RFC 6960 §2.2), signed again");
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
            Pkcs11Key.RetryInterval = savedRetry;
        }
    }

    [Test]
    public void A_receipt_key_in_a_token_without_a_module_is_refused_naming_the_key()
    {
        using var bed = new MirrorTestBed();
        var ex = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => MirrorCaApp.Build(bed.ConfigPath, new Dictionary<string, string?>
        {
            ["MirrorCa:Http:Listen"] = "http://127.0.0.1:0",
            ["MirrorCa:Sync:Listen"] = "",
            ["MirrorCa:ReceiptSigner:Key:File"] = "",
            ["MirrorCa:ReceiptSigner:Key:Pkcs11Uri"] = "pkcs11:token=mirror;object=receipt;type=private",
            ["MirrorCa:ReceiptSigner:Key:PinFile"] = SoftHsm.PinFile(SoftHsm.Pin),
        }))!;
        Assert.That(ex.Message, Does.Contain("MirrorCa:ReceiptSigner:Key:Module: required").And.Not.Contain(SoftHsm.Pin));
    }

    private static async Task<(bool Ready, JsonElement Body)> Health(HttpClient http, string url)
    {
        using var r = await http.GetAsync(url + "/health");
        var body = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone();
        Assert.That((int)r.StatusCode, Is.EqualTo(body.GetProperty("ready").GetBoolean() ? 200 : 503));
        return (body.GetProperty("ready").GetBoolean(), body);
    }

    private static async Task<byte[]> Ocsp(HttpClient http, string url, MirrorTestBed bed, MirrorTestBed.Device device, string name)
    {
        string req = Path.Combine(bed.DataDirectory, name + ".req");
        Tool.OpenSsl("ocsp", "-issuer", bed.Pki.PathOf("issuing-ca-F1.crt"), "-cert", device.PemPath, "-no_nonce", "-reqout", req).EnsureSuccess("openssl ocsp -reqout");
        using var r = await http.GetAsync(url + "/ocsp/" + Uri.EscapeDataString(Convert.ToBase64String(File.ReadAllBytes(req))));
        return await r.Content.ReadAsByteArrayAsync();
    }

    private static string Save(MirrorTestBed bed, string name, byte[] data)
    {
        string p = Path.Combine(bed.DataDirectory, name);
        File.WriteAllBytes(p, data);
        return p;
    }
}
