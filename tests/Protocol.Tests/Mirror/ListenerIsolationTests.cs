using Microsoft.AspNetCore.Builder;
using NUnit.Framework;
using OfflinePki.MirrorCa;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Mirror;

/// <summary>
/// Issue 16 findings 1 and 2 on the mirror: each API answers only on its own listener (admin on MirrorCa:Admin:Listen,
/// CRL/CA/OCSP/health on MirrorCa:Http:Listen; the sync listener serves neither), each refusal a 404; and the admin
/// listener never downloads a client certificate's AIA URL.
/// </summary>
[NonParallelizable]
public class ListenerIsolationTests
{
    private MirrorTestBed _bed = null!;
    private WebApplication _app = null!;
    private string _http = null!;
    private string _admin = null!;
    private string _sync = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _bed = new MirrorTestBed();
        int admin = Ports.FreeLoopback(), sync = Ports.FreeLoopback();
        _app = MirrorCaApp.Build(_bed.ConfigPath, new Dictionary<string, string?>
        {
            ["MirrorCa:Http:Listen"] = "http://127.0.0.1:0",
            ["MirrorCa:Sync:Listen"] = $"https://127.0.0.1:{sync}",
            ["MirrorCa:Admin:Listen"] = $"https://127.0.0.1:{admin}",
        });
        await _app.StartAsync();
        _http = _app.Urls.Single(u => u.StartsWith("http://", StringComparison.Ordinal)).TrimEnd('/');
        _admin = $"https://127.0.0.1:{admin}";
        _sync = $"https://127.0.0.1:{sync}";
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _bed.Dispose();
    }

    private string Status(string url, string? client, bool http2 = false)
    {
        var args = new List<string> { "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20", "--cacert", _bed.Pki.PathOf("tls-ca.crt") };
        if (client is not null)
        {
            args.AddRange(["--cert", _bed.Pki.PathOf(client + ".crt"), "--key", _bed.Pki.PathOf(client + ".key")]);
        }

        if (http2)
        {
            args.Add("--http2");
        }

        args.Add(url);
        return Tool.Run("curl", args).StdOut.Trim();
    }

    [Test]
    public void The_admin_API_answers_only_on_the_admin_listener()
    {
        Assert.That(Status(_admin + "/admin/status", "admin-auditor"), Is.EqualTo("200"), "admin listener (control)");
        Assert.That(Status(_sync + "/admin/status", "admin-auditor", http2: true), Is.EqualTo("404"), "sync listener");
        Assert.That(Status(_http + "/admin/status", null), Is.EqualTo("404"), "http listener");
    }

    [TestCase("/health")]
    [TestCase("/crl/F1.crl")]
    [TestCase("/ca/F1.crt")]
    [TestCase("/ocsp/MAA=")]
    public void Public_routes_answer_only_on_the_http_listener(string path)
    {
        Assert.That(Status(_http + path, null), Is.Not.EqualTo("404"), "http listener (control)");
        Assert.That(Status(_admin + path, "admin-auditor"), Is.EqualTo("404"), "admin listener");
        Assert.That(Status(_sync + path, "admin-auditor", http2: true), Is.EqualTo("404"), "sync listener");
    }

    [Test]
    public void The_admin_listener_refuses_an_AIA_bearing_client_certificate_at_once_without_fetching_it()
    {
        using var trap = new AiaTrap();
        var cert = trap.ClientCertificate("admin-auditor");
        var reply = AiaTrap.Curl(_admin + "/admin/status", cert, _bed.Pki.PathOf("tls-ca.crt"));
        TestContext.Out.WriteLine($"admin refusal of an AIA-bearing client certificate: HTTP {reply.Status} in {reply.Elapsed.TotalMilliseconds:F0} ms (curl process included)");
        Assert.That(reply.Status, Is.EqualTo(403), reply.Body);
        Assert.That(trap.Connections, Is.Zero, "the admin listener fetched the certificate's AIA caIssuers URL");
        Assert.That(reply.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2)));
    }
}
