using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;
using OfflinePki.FactoryCa;
using OfflinePki.Journal;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Factory;

/// <summary>
/// Issue 16 findings 1 and 2 on the factory: the EST listener never downloads a client certificate's AIA URL while
/// validating it (the TLS layer and the station check both build chains offline), and each API answers only on its
/// own listener (EST on the TLS listener, control on the Unix socket).
/// </summary>
[NonParallelizable]
public class TlsListenerHardeningTests
{
    private readonly FakeJournalAppender _journal = new();
    private WebApplication _app = null!;
    private string _base = null!;
    private string _data = null!;
    private static TestPki Pki => TestPki.Default;

    [OneTimeSetUp]
    public async Task Start()
    {
        _data = Path.Combine(Peers.Scratch, "tls-hardening-" + Guid.NewGuid().ToString("N")[..6]);
        var root = JsonNode.Parse(File.ReadAllText(Pki.PathOf("factoryca.json")))!;
        root["FactoryCa"]!["DataDirectory"] = _data;
        string config = Pki.PathOf($"factoryca-tls-hardening-{Guid.NewGuid().ToString("N")[..6]}.json");
        File.WriteAllText(config, root.ToJsonString());
        _app = FactoryCaApp.Build(config, services => services.AddSingleton<IJournalAppender>(_journal), o => o.Est.Listen = "https://127.0.0.1:0");
        await _app.StartAsync();
        _base = _app.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal)).TrimEnd('/');
    }

    [OneTimeTearDown]
    public async Task Stop() => await _app.DisposeAsync();

    [Test]
    public void A_client_certificate_with_an_AIA_URL_is_refused_at_once_and_the_URL_is_never_fetched()
    {
        using var trap = new AiaTrap();
        var cert = trap.ClientCertificate("station-aia");
        string csr = Peers.NewPath(".b64");
        File.WriteAllBytes(csr, Peers.Base64Body(Peers.P256Csr("AIA-0001")));
        int before = _journal.Count;
        // The first request pays the listener's and the chain builder's warm-up on a loaded machine; the second one is
        // timed. A fetch would hang on the trap either way, and the trap counts both.
        _ = AiaTrap.Curl(_base + "/.well-known/est/simpleenroll", cert, Pki.PathOf("tls-ca.crt"),
            "-H", "Content-Type: application/pkcs10", "--data-binary", "@" + csr);
        var reply = AiaTrap.Curl(_base + "/.well-known/est/simpleenroll", cert, Pki.PathOf("tls-ca.crt"),
            "-H", "Content-Type: application/pkcs10", "--data-binary", "@" + csr);
        TestContext.Out.WriteLine($"EST refusal of an AIA-bearing client certificate: HTTP {reply.Status} in {reply.Elapsed.TotalMilliseconds:F0} ms (curl process included)");
        Assert.That(reply.Status, Is.EqualTo(403), reply.Body);
        Assert.That(reply.Body, Does.Contain("does not chain to the RA CA"));
        Assert.That(trap.Connections, Is.Zero, "the EST listener fetched the certificate's AIA caIssuers URL");
        Assert.That(reply.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2)));
        Assert.That(_journal.Count, Is.EqualTo(before));
    }

    [Test]
    public void EST_is_not_served_on_the_control_socket_and_control_is_not_served_on_the_EST_listener()
    {
        string socket = ControlEndpoints.SocketPath(_data);
        var overSocket = Tool.Run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", socket, "http://localhost/.well-known/est/cacerts"]);
        Assert.That(overSocket.StdOut.Trim(), Is.EqualTo("404"), "EST over the control socket");
        var statusOverSocket = Tool.Run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", socket, "http://localhost/control/status"]);
        Assert.That(statusOverSocket.StdOut.Trim(), Is.Not.EqualTo("404"), "control over its socket (control)");
        var controlOverTls = Tool.Run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", Pki.PathOf("tls-ca.crt"),
            "--cert", Pki.PathOf("station-01.crt"), "--key", Pki.PathOf("station-01.key"), _base + "/control/status"]);
        Assert.That(controlOverTls.StdOut.Trim(), Is.EqualTo("404"), "control over the EST listener");
        var est = Tool.Run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", Pki.PathOf("tls-ca.crt"), _base + "/.well-known/est/cacerts"]);
        Assert.That(est.StdOut.Trim(), Is.EqualTo("200"), "EST over its listener (control)");
    }
}
