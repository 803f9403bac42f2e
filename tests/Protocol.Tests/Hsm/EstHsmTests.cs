using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;
using OfflinePki.FactoryCa;
using OfflinePki.Journal;
using OfflinePki.Keys;
using OfflinePki.Keys.Pkcs11;
using OfflinePki.Tests.Factory;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Hsm;

/// <summary>
/// The factory host with FactoryCa:IssuingCa:Key in SoftHSM2 (loaded by the host's own key wiring): EST issues,
/// a removed token or a changed PIN is 503 with a reason and nothing journaled, and service resumes without a restart.
/// </summary>
[NonParallelizable]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class EstHsmTests
{
    private readonly FakeJournalAppender _journal = new();
    private WebApplication _app = null!;
    private HttpClient _http = null!;
    private string _pinFile = null!;
    private TimeSpan _savedRetry;

    [OneTimeSetUp]
    public async Task Start()
    {
        _savedRetry = Pkcs11Key.RetryInterval;
        Pkcs11Key.RetryInterval = TimeSpan.Zero;
        var pki = TestPki.Default;
        _pinFile = SoftHsm.PinFile(SoftHsm.Pin);
        _app = FactoryCaApp.Build(pki.PathOf("factoryca.json"), services => services.AddSingleton<IJournalAppender>(_journal), o =>
        {
            o.Est.Listen = "https://127.0.0.1:0";
            o.IssuingCa.Key = new KeyOptions
            {
                Pkcs11Uri = $"pkcs11:token={SoftHsm.FactoryToken};object=issuing-ca;type=private",
                Module = SoftHsm.Module,
                PinFile = _pinFile,
            };
        });
        await _app.StartAsync();
        var handler = new HttpClientHandler
        {
            ClientCertificateOptions = ClientCertificateOption.Manual,
            ServerCertificateCustomValidationCallback = (_, _, _, _) => true,
        };
        handler.ClientCertificates.Add(pki.CertWithKey("station-02"));
        _http = new HttpClient(handler) { BaseAddress = new Uri(_app.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal))) };
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _http.Dispose();
        await _app.DisposeAsync();
        Pkcs11Key.RetryInterval = _savedRetry;
    }

    private async Task<HttpResponseMessage> Enroll(string deviceId)
    {
        var content = new ByteArrayContent(Peers.Base64Body(Peers.P256Csr(deviceId)));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/pkcs10");
        return await _http.PostAsync("/.well-known/est/simpleenroll", content);
    }

    [Test]
    public async Task Issuance_through_the_token_then_503_while_it_is_gone_then_recovery()
    {
        using (var ok = await Enroll("DEV-H001"))
        {
            Assert.That((int)ok.StatusCode, Is.EqualTo(200), await ok.Content.ReadAsStringAsync());
        }

        int before = _journal.Count;
        var restore = SoftHsm.RemoveToken(SoftHsm.FactoryToken);
        try
        {
            for (int i = 0; i < 2; i++)
            {
                using var reply = await Enroll("DEV-H00" + (2 + i));
                Assert.That((int)reply.StatusCode, Is.EqualTo(503));
                string body = await reply.Content.ReadAsStringAsync();
                Assert.That(body, Does.Contain("issuing CA key unavailable").And.Contain("FactoryCa:IssuingCa:Key").And.Not.Contain(SoftHsm.Pin));
            }

            Assert.That(_journal.Count, Is.EqualTo(before), "nothing journaled while the token is gone");
            var status = await Status();
            Assert.That(status.GetProperty("ready").GetBoolean(), Is.False);
            Assert.That(KeyStatus(status, "FactoryCa:IssuingCa:Key").GetProperty("reason").GetString(),
                Does.Contain("C_Initialize returned CKR_GENERAL_ERROR").And.Contain("token removed?"));
            var key = (Pkcs11Key)_app.Services.GetRequiredService<OfflinePki.Issuance.IssuingAuthority>().SigningKey;
            Assert.That(key.IsAvailable, Is.False);
            Assert.That(key.UnavailableReason, Does.StartWith("FactoryCa:IssuingCa:Key: PKCS#11 key 'pkcs11:token=factory-ca;object=issuing-ca;type=private'"));
        }
        finally
        {
            restore();
        }

        using var back = await Enroll("DEV-H004");
        Assert.That((int)back.StatusCode, Is.EqualTo(200), "resumes without a restart");
        Assert.That(_journal.Count, Is.EqualTo(before + 1));
        Assert.That(((Pkcs11Key)_app.Services.GetRequiredService<OfflinePki.Issuance.IssuingAuthority>().SigningKey).IsAvailable, Is.True);
        var recovered = await Status();
        Assert.That(recovered.GetProperty("ready").GetBoolean(), Is.True);
        Assert.That(KeyStatus(recovered, "FactoryCa:IssuingCa:Key").GetProperty("backend").GetString(), Is.EqualTo("pkcs11"));
    }

    /// <summary>GET /control/status on the daemon's control socket, as <c>factoryca status</c> does.</summary>
    private async Task<System.Text.Json.JsonElement> Status()
    {
        string dataDirectory = _app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<FactoryCaOptions>>().Value.DataDirectory;
        using var control = ControlEndpoints.CreateClient(dataDirectory);
        string json = await control.GetStringAsync(new Uri("control/status", UriKind.Relative));
        Assert.That(json, Does.Not.Contain(SoftHsm.Pin).And.Not.Contain("rotated-pin-9"), "no PIN in the status output");
        return System.Text.Json.JsonDocument.Parse(json).RootElement.Clone();
    }

    private static System.Text.Json.JsonElement KeyStatus(System.Text.Json.JsonElement status, string configKey) =>
        status.GetProperty("keys").EnumerateArray().Single(k => k.GetProperty("configKey").GetString() == configKey);

    [Test]
    public async Task A_locked_token_is_503_and_unready_without_a_login_until_it_is_unlocked()
    {
        using (var ok = await Enroll("DEV-H020"))
        {
            Assert.That((int)ok.StatusCode, Is.EqualTo(200));
        }

        int before = _journal.Count;
        // The token is locked (as after too many wrong PINs elsewhere) and re-inserted: sessions and logins are gone.
        SoftHsm.SetUserPinLocked(SoftHsm.FactoryToken, true);
        try
        {
            var restore = SoftHsm.RemoveToken(SoftHsm.FactoryToken);
            using (var gone = await Enroll("DEV-H021"))
            {
                Assert.That((int)gone.StatusCode, Is.EqualTo(503));
            }

            restore();
            for (int i = 0; i < 2; i++)
            {
                using var locked = await Enroll("DEV-H02" + (2 + i));
                Assert.That((int)locked.StatusCode, Is.EqualTo(503));
                Assert.That(await locked.Content.ReadAsStringAsync(), Does.Contain("FactoryCa:IssuingCa:Key")
                    .And.Contain("user PIN locked (CKF_USER_PIN_LOCKED); no login attempted").And.Not.Contain(SoftHsm.Pin));
            }

            var status = await Status();
            Assert.That(status.GetProperty("ready").GetBoolean(), Is.False);
            var key = KeyStatus(status, "FactoryCa:IssuingCa:Key");
            Assert.That(key.GetProperty("available").GetBoolean(), Is.False);
            Assert.That(key.GetProperty("reason").GetString(), Does.Contain("token 'factory-ca' reports its user PIN locked"));
            Assert.That(_journal.Count, Is.EqualTo(before), "nothing journaled while the token is locked");
        }
        finally
        {
            SoftHsm.SetUserPinLocked(SoftHsm.FactoryToken, false); // the security officer unlocks it
        }

        using var back = await Enroll("DEV-H025");
        Assert.That((int)back.StatusCode, Is.EqualTo(200), "resumes without a restart once unlocked");
        Assert.That(_journal.Count, Is.EqualTo(before + 1));
        Assert.That((await Status()).GetProperty("ready").GetBoolean(), Is.True);
    }

    [Test]
    public async Task A_changed_PIN_is_503_until_the_PIN_file_follows()
    {
        SoftHsm.ChangePin(SoftHsm.FactoryToken, SoftHsm.Pin, "rotated-pin-9");
        try
        {
            int before = _journal.Count;
            var restore = SoftHsm.RemoveToken(SoftHsm.FactoryToken); // the token is re-inserted: sessions and logins are gone
            using (var gone = await Enroll("DEV-H010"))
            {
                Assert.That((int)gone.StatusCode, Is.EqualTo(503));
            }

            restore();
            using (var refused = await Enroll("DEV-H011"))
            {
                Assert.That((int)refused.StatusCode, Is.EqualTo(503));
                Assert.That(await refused.Content.ReadAsStringAsync(), Does.Contain("PIN refused").And.Not.Contain("rotated-pin-9"));
            }

            // The refused PIN is not presented again (retries must not use up the token's lockout counter).
            using (var held = await Enroll("DEV-H013"))
            {
                Assert.That((int)held.StatusCode, Is.EqualTo(503));
                Assert.That(await held.Content.ReadAsStringAsync(), Does.Contain("the same PIN is not tried again").And.Not.Contain("rotated-pin-9"));
            }

            Assert.That(KeyStatus(await Status(), "FactoryCa:IssuingCa:Key").GetProperty("reason").GetString(), Does.Contain("PIN refused"));

            Assert.That(_journal.Count, Is.EqualTo(before));
            File.WriteAllText(_pinFile, "rotated-pin-9\n");
            using var ok = await Enroll("DEV-H012");
            Assert.That((int)ok.StatusCode, Is.EqualTo(200));
            Assert.That(_journal.Count, Is.EqualTo(before + 1));
        }
        finally
        {
            SoftHsm.ChangePin(SoftHsm.FactoryToken, "rotated-pin-9", SoftHsm.Pin);
            File.WriteAllText(_pinFile, SoftHsm.Pin + "\n");
        }
    }
}
