using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using NUnit.Framework;
using OfflinePki.FactoryCa;
using OfflinePki.Journal;
using OfflinePki.Keys;
using OfflinePki.MirrorCa;
using OfflinePki.Sync;
using OfflinePki.Tests.Factory;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Hsm;

/// <summary>
/// TLS keys in SoftHSM2: the factory's EST server key (EST over curl, token removed and back without a restart),
/// the mirror's sync and admin server keys (also removed and back) and the factory's sync client key (a real sync over
/// mTLS), config
/// binding of the string and section forms, and startup errors that name the key.
/// </summary>
[NonParallelizable]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class TlsHsmTests
{
    private const string PinVariable = "OFFLINEPKI_TEST_TLS_PIN";
    private TestPki _pki = null!;
    private string _token = null!;
    private string _pinFile = null!;
    private TimeSpan _savedRetry;
    private TimeSpan _savedProbe;

    [OneTimeSetUp]
    public void Tokens()
    {
        _savedRetry = Pkcs11SigningKey.RetryInterval;
        _savedProbe = TlsCertificateSource.ProbeInterval;
        Pkcs11SigningKey.RetryInterval = TimeSpan.Zero;
        TlsCertificateSource.ProbeInterval = TimeSpan.Zero;
        _pki = TestPki.Create("F1", Path.Combine(Path.GetTempPath(), "offlinepki-tests", "tlshsm-" + Guid.NewGuid().ToString("N")[..8]));
        _token = SoftHsm.TakeToken();
        SoftHsm.ImportKeyPair(_token, SoftHsm.Pin, _pki.PathOf("est-server.key"), "est-tls", "11");
        SoftHsm.ImportKeyPair(_token, SoftHsm.Pin, _pki.PathOf("mirror-sync-server.key"), "sync-server", "12");
        SoftHsm.ImportKeyPair(_token, SoftHsm.Pin, _pki.PathOf("factory-F1-sync-client.key"), "sync-client", "13");
        _pinFile = SoftHsm.PinFile(SoftHsm.Pin);
        Environment.SetEnvironmentVariable(PinVariable, SoftHsm.Pin);
    }

    [OneTimeTearDown]
    public void Restore()
    {
        Pkcs11SigningKey.RetryInterval = _savedRetry;
        TlsCertificateSource.ProbeInterval = _savedProbe;
        Environment.SetEnvironmentVariable(PinVariable, null);
    }

    private TlsKeyOptions TokenKey(string obj, bool pinFromEnvironment = false) => new()
    {
        Pkcs11Uri = $"pkcs11:token={_token};object={obj};type=private",
        Module = SoftHsm.TlsModule,
        PinFile = pinFromEnvironment ? null : _pinFile,
        PinEnvironmentVariable = pinFromEnvironment ? PinVariable : null,
    };

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>FactoryCa with the EST TLS server key "est-tls" in the token, listening on <paramref name="port"/>, started.</summary>
    private async Task<WebApplication> StartEstWithTokenKeyAsync(FakeJournalAppender journal, int port)
    {
        var app = FactoryCaApp.Build(_pki.PathOf("factoryca.json"), s => s.AddSingleton<IJournalAppender>(journal), o =>
        {
            o.Est.Listen = $"https://127.0.0.1:{port}";
            o.Est.ServerKey = TokenKey("est-tls");
        });
        await app.StartAsync();
        return app;
    }

    private Tool.Result Curl(int port, string path, params string[] extra) =>
        Tool.Run("curl", ["-sS", "--max-time", "15", "-o", "-", "-w", "\nHTTP %{http_code}", "--resolve", $"localhost:{port}:127.0.0.1",
            "--cacert", _pki.PathOf("tls-ca.crt"), "--cert", _pki.PathOf("station-02.crt"), "--key", _pki.PathOf("station-02.key"),
            .. extra, $"https://localhost:{port}{path}"], timeout: TimeSpan.FromSeconds(30));

    [Test]
    public async Task EST_over_curl_with_the_server_key_in_the_token()
    {
        var journal = new FakeJournalAppender();
        int port = FreePort();
        await using var app = await StartEstWithTokenKeyAsync(journal, port);
        try
        {
            var cacerts = Curl(port, "/.well-known/est/cacerts");
            Assert.That(cacerts.StdOut, Does.EndWith("HTTP 200"), cacerts.StdErr);

            string csr = Path.Combine(_pki.Directory, "tlshsm-csr.b64");
            File.WriteAllBytes(csr, Peers.Base64Body(Peers.P256Csr("DEV-TLS001")));
            var enroll = Curl(port, "/.well-known/est/simpleenroll", "-H", "Content-Type: application/pkcs10", "--data-binary", "@" + csr);
            Assert.That(enroll.StdOut, Does.EndWith("HTTP 200"), enroll.StdErr + enroll.StdOut);
            Assert.That(journal.Count, Is.EqualTo(1));

            // The served certificate is est-server's, with the handshake signed in the token.
            var s = Tool.Run("openssl", ["s_client", "-connect", $"127.0.0.1:{port}", "-CAfile", _pki.PathOf("tls-ca.crt"), "-verify_return_error", "-brief"],
                stdin: [], timeout: TimeSpan.FromSeconds(20));
            Assert.That(s.StdErr, Does.Contain("Verification: OK").And.Contain("CN = localhost"));

        }
        finally
        {
            await app.StopAsync();
        }
    }

    [Test]
    public async Task Without_the_token_the_EST_listener_refuses_TLS_and_issues_nothing()
    {
        var journal = new FakeJournalAppender();
        int port = FreePort();
        await using var app = await StartEstWithTokenKeyAsync(journal, port);
        var restore = SoftHsm.RemoveToken(_token);
        try
        {
            var gone = Curl(port, "/.well-known/est/cacerts");
            Assert.That(gone.StdOut, Does.EndWith("HTTP 000"), "no TLS without the token (fail closed)");
            Assert.That(gone.StdErr, Does.Contain("alert internal error"));
            Assert.That(journal.Count, Is.Zero);
        }
        finally
        {
            restore();
            EngineControl.Rescan();
            await app.StopAsync();
        }
    }

    private static async Task<System.Text.Json.JsonElement> ControlStatus(Microsoft.AspNetCore.Builder.WebApplication app)
    {
        string dataDirectory = app.Services.GetRequiredService<IOptions<FactoryCaOptions>>().Value.DataDirectory;
        using var control = ControlEndpoints.CreateClient(dataDirectory);
        string json = await control.GetStringAsync(new Uri("control/status", UriKind.Relative));
        Assert.That(json, Does.Not.Contain(SoftHsm.Pin));
        return System.Text.Json.JsonDocument.Parse(json).RootElement.Clone();
    }

    [Test]
    public async Task The_EST_server_key_recovers_without_a_restart_when_the_token_returns()
    {
        var journal = new FakeJournalAppender();
        int port = FreePort();
        await using var app = await StartEstWithTokenKeyAsync(journal, port);
        string csr = Path.Combine(_pki.Directory, "tlshsm-recover.b64");
        try
        {
            File.WriteAllBytes(csr, Peers.Base64Body(Peers.P256Csr("DEV-TLSR01")));
            var first = Curl(port, "/.well-known/est/simpleenroll", "-H", "Content-Type: application/pkcs10", "--data-binary", "@" + csr);
            Assert.That(first.StdOut, Does.EndWith("HTTP 200"), first.StdErr + first.StdOut);
            Assert.That(journal.Count, Is.EqualTo(1));

            var restore = SoftHsm.RemoveToken(_token);
            try
            {
                for (int i = 0; i < 2; i++)
                {
                    var gone = Curl(port, "/.well-known/est/simpleenroll", "-H", "Content-Type: application/pkcs10", "--data-binary", "@" + csr);
                    Assert.That(gone.StdOut, Does.EndWith("HTTP 000"), "no TLS without the token (fail closed)");
                }

                Assert.That(journal.Count, Is.EqualTo(1), "nothing issued while the token is gone");
                var status = await ControlStatus(app);
                Assert.That(status.GetProperty("ready").GetBoolean(), Is.False);
                var key = status.GetProperty("keys").EnumerateArray().Single(k => k.GetProperty("configKey").GetString() == "FactoryCa:Est:ServerKey");
                Assert.That(key.GetProperty("available").GetBoolean(), Is.False);
                Assert.That(key.GetProperty("reason").GetString(), Does.StartWith($"FactoryCa:Est:ServerKey: PKCS#11 key 'pkcs11:token={_token};object=est-tls;type=private'"));
            }
            finally
            {
                restore();
            }

            File.WriteAllBytes(csr, Peers.Base64Body(Peers.P256Csr("DEV-TLSR02")));
            var back = Curl(port, "/.well-known/est/simpleenroll", "-H", "Content-Type: application/pkcs10", "--data-binary", "@" + csr);
            Assert.That(back.StdOut, Does.EndWith("HTTP 200"), "the same process serves TLS again: " + back.StdErr + back.StdOut);
            Assert.That(journal.Count, Is.EqualTo(2));
            Assert.That((await ControlStatus(app)).GetProperty("ready").GetBoolean(), Is.True);
        }
        finally
        {
            await app.StopAsync();
        }
    }

    [Test]
    public async Task Sync_over_mTLS_with_the_mirror_server_key_and_the_factory_client_key_in_the_token()
    {
        int adminPort = FreePort();
        // The mirror reads its TLS keys from JSON-shaped configuration (the section form replaces the path string).
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(_pki.PathOf("mirrorca.json")))!;
        config["MirrorCa"]!["Sync"]!["ServerKey"] = new System.Text.Json.Nodes.JsonObject
        {
            ["Pkcs11Uri"] = $"pkcs11:token={_token};object=sync-server;type=private", ["Module"] = SoftHsm.TlsModule, ["PinFile"] = _pinFile,
        };
        config["MirrorCa"]!["Admin"]!["ServerKey"] = new System.Text.Json.Nodes.JsonObject
        {
            ["Pkcs11Uri"] = $"pkcs11:token={_token};object=sync-server;type=private", ["Module"] = SoftHsm.TlsModule, ["PinEnvironmentVariable"] = PinVariable,
        };
        string configPath = _pki.PathOf("mirrorca-hsm.json");
        File.WriteAllText(configPath, config.ToJsonString());
        var mirror = MirrorCaApp.Build(configPath, new Dictionary<string, string?>
        {
            ["MirrorCa:Http:Listen"] = "http://127.0.0.1:0",
            ["MirrorCa:Sync:Listen"] = "https://127.0.0.1:0",
            ["MirrorCa:Admin:Listen"] = $"https://127.0.0.1:{adminPort}",
        });
        await using (mirror)
        {
            await mirror.StartAsync();
            Assert.That(mirror.Services.GetRequiredService<IOptions<MirrorCaOptions>>().Value.Sync.ServerKey.IsPkcs11, Is.True);
            string mirrorSync = mirror.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal) && !u.EndsWith(":" + adminPort, StringComparison.Ordinal));
            var factory = FactoryCaApp.Build(_pki.PathOf("factoryca.json"),
                services => services.PostConfigure<SyncOptions>(o =>
                {
                    o.MirrorUrl = mirrorSync.Replace("127.0.0.1", "localhost", StringComparison.Ordinal);
                    o.Enabled = false;
                    o.ClientKeyPath = string.Empty;
                    o.ClientKey = TokenKey("sync-client", pinFromEnvironment: true);
                }),
                o => o.Est.Listen = "https://127.0.0.1:0");
            await using (factory)
            {
                await factory.StartAsync();
                var result = await factory.Services.GetRequiredService<JournalSyncClient>().SyncOnceAsync();
                Assert.That(result.AppliedSeq, Is.GreaterThan(0UL));
                Assert.That(result.EntriesApplied, Is.GreaterThan(0));
                await factory.StopAsync();
            }

            // The admin listener serves TLS with the same token key (401: no client certificate, but the handshake worked).
            var admin = Tool.Run("curl", ["-sS", "--max-time", "15", "-o", "/dev/null", "-w", "%{http_code}", "--resolve", $"localhost:{adminPort}:127.0.0.1",
                "--cacert", _pki.PathOf("tls-ca.crt"), $"https://localhost:{adminPort}/admin/status"], timeout: TimeSpan.FromSeconds(30));
            Assert.That(admin.StdOut, Is.Not.EqualTo("000"), admin.StdErr);

            // Both mirror listeners fail closed while the token is away and serve TLS again when it is back, same process.
            var syncPort = new Uri(mirrorSync).Port;
            Tool.Result Handshake(int port) => Tool.Run("curl", ["-sS", "--max-time", "15", "-o", "/dev/null", "-w", "%{http_code}", "--resolve", $"localhost:{port}:127.0.0.1",
                "--cacert", _pki.PathOf("tls-ca.crt"), $"https://localhost:{port}/"], timeout: TimeSpan.FromSeconds(30));
            var restore = SoftHsm.RemoveToken(_token);
            try
            {
                Assert.That(Handshake(adminPort).StdOut, Is.EqualTo("000"), "admin: no TLS without the token");
                Assert.That(Handshake(syncPort).StdOut, Is.EqualTo("000"), "sync: no TLS without the token");
            }
            finally
            {
                restore();
            }

            var adminBack = Handshake(adminPort);
            Assert.That(adminBack.StdOut, Is.Not.EqualTo("000"), "admin TLS back without a restart: " + adminBack.StdErr);
            var syncBack = Handshake(syncPort);
            Assert.That(syncBack.StdOut, Is.Not.EqualTo("000"), "sync TLS back without a restart: " + syncBack.StdErr);
            await mirror.StopAsync();
        }
    }

    [Test]
    public void A_TLS_key_binds_from_a_path_string_or_from_a_key_section()
    {
        var config = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes("""
            { "A": { "ServerKey": "tls/est-server.key" },
              "B": { "ServerKey": { "Pkcs11Uri": "pkcs11:token=t;object=o", "Module": "/m.so", "PinFile": "pin" } } }
            """))).Build();
        var a = config.GetSection("A").Get<EstOptions>()!;
        var b = config.GetSection("B").Get<EstOptions>()!;
        Assert.That((a.ServerKey.File, a.ServerKey.IsPkcs11), Is.EqualTo(("tls/est-server.key", false)));
        Assert.That((b.ServerKey.Pkcs11Uri, b.ServerKey.Module, b.ServerKey.PinFile, b.ServerKey.File), Is.EqualTo(("pkcs11:token=t;object=o", "/m.so", "pin", "")));
    }

    [Test]
    public void A_TLS_key_without_a_module_fails_validation_naming_the_key()
    {
        var ex = Assert.Throws<OptionsValidationException>(() => FactoryCaApp.Build(_pki.PathOf("factoryca.json"), null, o =>
            o.Est.ServerKey = new TlsKeyOptions { Pkcs11Uri = "pkcs11:token=x;object=y", PinFile = _pinFile }))!;
        Assert.That(ex.Message, Does.Contain("FactoryCa:Est:ServerKey:Module: required"));
    }

    [Test]
    public async Task A_missing_token_object_stops_startup_naming_the_key_and_not_the_PIN()
    {
        var journal = new FakeJournalAppender();
        Exception ex = (await Assert.CatchAsync(async () =>
        {
            var app = FactoryCaApp.Build(_pki.PathOf("factoryca.json"), s => s.AddSingleton<IJournalAppender>(journal), o =>
            {
                o.Est.Listen = "https://127.0.0.1:0";
                o.Est.ServerKey = TokenKey("no-such-object");
            });
            await using (app)
            {
                await app.StartAsync();
            }
        }))!;
        Assert.That(ex.ToString(), Does.Contain("FactoryCa:Est:ServerKey: PKCS#11 key").And.Contain("no-such-object").And.Not.Contain(SoftHsm.Pin));
        Assert.That(journal.Count, Is.Zero, "nothing journaled");
    }

    [Test]
    public void Sync_client_key_path_and_section_are_exclusive()
    {
        var v = new SyncOptionsValidator().Validate(null, new SyncOptions
        {
            MirrorUrl = "https://localhost:9443/",
            ClientCertificatePath = _pki.PathOf("factory-F1-sync-client.crt"),
            ClientKeyPath = _pki.PathOf("factory-F1-sync-client.key"),
            ClientKey = TokenKey("sync-client"),
            ServerTrustAnchorPath = _pki.PathOf("tls-ca.crt"),
        });
        Assert.That(v.FailureMessage, Does.Contain("set exactly one of Sync:ClientKeyPath or Sync:ClientKey"));
        var noModule = new SyncOptionsValidator().Validate(null, new SyncOptions
        {
            MirrorUrl = "https://localhost:9443/",
            ClientCertificatePath = _pki.PathOf("factory-F1-sync-client.crt"),
            ClientKey = new TlsKeyOptions { Pkcs11Uri = "pkcs11:token=x;object=y", PinFile = _pinFile },
            ServerTrustAnchorPath = _pki.PathOf("tls-ca.crt"),
        });
        Assert.That(noModule.FailureMessage, Does.Contain("Sync:ClientKey:Module: required").And.Not.Contain("ClientKeyPath"));
    }
}
