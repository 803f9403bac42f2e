using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;
using OfflinePki.FactoryCa;
using OfflinePki.Keys;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.WholeSystem;

/// <summary>
/// Metrics and health of both daemons in a whole-system run: a real Prometheus (Debian package) scrapes the factory's
/// loopback metrics listener and the mirror's admin listener (mTLS, role Auditor); promtool lints each scrape; the health
/// probes answer ready, then not ready while a key is unavailable.
/// </summary>
[TestFixture]
[NonParallelizable]
public class MonitoringTests
{
    private TestPki _pki = null!;
    private BothDaemons _daemons = null!;
    private string _admin = null!;
    private HttpClient _station = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _pki = TestPki.Create("F1");
        _admin = "https://127.0.0.1:" + FreePort().ToString(CultureInfo.InvariantCulture);
        _daemons = await BothDaemons.StartAsync(_pki, _admin,
            services => services.PostConfigure<FactoryMetricsOptions>(o => o.Listen = "http://127.0.0.1:0"));
        _station = _pki.MtlsClient("station-01");

        // Traffic for every series: issuance (one accepted, one refused), a sync, an OCSP request.
        for (int i = 0; i < 3; i++)
        {
            await EnrollAsync($"MON-{i:D3}", expectOk: true);
        }

        await EnrollAsync("bad name with spaces", expectOk: false);
        Assert.That(await SyncNowCommand.RunAsync(_pki.PathOf("factoryca.json"), CancellationToken.None), Is.EqualTo(0));
        Tool.OpenSsl("ocsp", "-issuer", _pki.PathOf("issuing-ca-F1.crt"), "-serial", "0x01", "-url", _daemons.MirrorHttp + "/ocsp", "-noverify")
            .EnsureSuccess("openssl ocsp");
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _station.Dispose();
        await _daemons.DisposeAsync();
    }

    [Test]
    public void Promtool_accepts_both_scrapes()
    {
        foreach (var (name, text) in new[] { ("factory", ScrapeFactory()), ("mirror", ScrapeMirror()) })
        {
            File.WriteAllText(_pki.PathOf($"scrape-{name}.txt"), text);
            var r = Tool.Run("promtool", ["check", "metrics"], System.Text.Encoding.UTF8.GetBytes(text));
            Assert.That(r.ExitCode, Is.EqualTo(0), $"promtool check metrics ({name}): {r.StdOut}{r.StdErr}");
        }
    }

    [Test]
    public void Metrics_are_not_served_on_the_station_lan_or_without_an_admin_certificate()
    {
        using var est = _station.GetAsync(_daemons.FactoryHttps + "/metrics").GetAwaiter().GetResult();
        Assert.That(est.StatusCode, Is.EqualTo(HttpStatusCode.NotFound), "the EST listener must not serve /metrics");
        var noCert = Tool.Run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", _pki.PathOf("tls-ca.crt"), _admin + "/metrics"]);
        Assert.That(noCert.StdOut, Is.EqualTo("401"));
        using var http = new HttpClient();
        using var plain = http.GetAsync(_daemons.MirrorHttp + "/metrics").GetAwaiter().GetResult();
        Assert.That(plain.StatusCode, Is.EqualTo(HttpStatusCode.NotFound), "the mirror's public HTTP listener must not serve /metrics");
    }

    [Test]
    public async Task Prometheus_scrapes_both_daemons_and_the_series_are_sane()
    {
        string dir = _pki.PathOf("prometheus");
        Directory.CreateDirectory(dir);
        int port = FreePort();
        var factory = new Uri(_daemons.FactoryMetricsHttp!);
        var admin = new Uri(_admin);
        File.WriteAllText(Path.Combine(dir, "prometheus.yml"), $"""
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: factoryca
                static_configs: [{"{"} targets: ['{factory.Authority}'] {"}"}]
              - job_name: mirrorca
                scheme: https
                tls_config:
                  ca_file: {_pki.PathOf("tls-ca.crt")}
                  cert_file: {_pki.PathOf("admin-auditor.crt")}
                  key_file: {_pki.PathOf("admin-auditor.key")}
                  server_name: localhost
                static_configs: [{"{"} targets: ['{admin.Authority}'] {"}"}]
            """);
        var psi = new System.Diagnostics.ProcessStartInfo("prometheus")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "--config.file=" + Path.Combine(dir, "prometheus.yml"), "--storage.tsdb.path=" + Path.Combine(dir, "data"),
                     $"--web.listen-address=127.0.0.1:{port}" })
        {
            psi.ArgumentList.Add(a);
        }

        using var prometheus = System.Diagnostics.Process.Start(psi)!;
        var stderr = new System.Text.StringBuilder();
        prometheus.ErrorDataReceived += (_, e) => { lock (stderr) { stderr.AppendLine(e.Data); } };
        prometheus.OutputDataReceived += (_, e) => { };
        prometheus.BeginErrorReadLine();
        prometheus.BeginOutputReadLine();
        try
        {
            using var api = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            var ups = await WaitForAsync(api, "up == 1", 2, stderr);
            Assert.That(ups.Select(s => s.Labels["job"]), Is.EquivalentTo(new[] { "factoryca", "mirrorca" }));

            var issued = await WaitForAsync(api, "offlinepki_issuance_requests{job=\"factoryca\",outcome=\"issued\",station=\"station-01\"}", 1, stderr);
            Assert.That(issued.Sum(s => s.Value), Is.EqualTo(3));
            var rejected = await WaitForAsync(api, "offlinepki_issuance_requests{job=\"factoryca\",outcome!=\"issued\"}", 1, stderr);
            Assert.That(rejected.Sum(s => s.Value), Is.GreaterThanOrEqualTo(1));
            var latency = await WaitForAsync(api, "offlinepki_issuance_duration_count{job=\"factoryca\",outcome=\"issued\"}", 1, stderr);
            Assert.That(latency.Sum(s => s.Value), Is.EqualTo(3));

            var fsync = await WaitForAsync(api, "offlinepki_journal_fsync_duration_count{job=\"factoryca\"}", 1, stderr);
            Assert.That(fsync[0].Value, Is.GreaterThanOrEqualTo(1));
            var head = await WaitForAsync(api, "offlinepki_journal_head_seq{job=\"factoryca\"}", 1, stderr);
            Assert.That(head[0].Value, Is.GreaterThanOrEqualTo(4), "genesis + 3 issued (+ refusal, checkpoint)");
            await WaitForAsync(api, "offlinepki_journal_unconfirmed_entries{job=\"factoryca\"} >= 0", 1, stderr);
            await WaitForAsync(api, "offlinepki_journal_unconfirmed_age{job=\"factoryca\"} >= 0", 1, stderr);
            var budget = await WaitForAsync(api, "offlinepki_sync_divergence_budget_used{job=\"factoryca\",factory=\"F1\"}", 1, stderr);
            Assert.That(budget[0].Value, Is.InRange(0, 1));
            var lastSync = await WaitForAsync(api, "time() - offlinepki_sync_last_success{job=\"factoryca\",factory=\"F1\"}", 1, stderr);
            Assert.That(lastSync[0].Value, Is.InRange(-5, 600), "seconds since the last successful sync");
            await WaitForAsync(api, "offlinepki_sync_entries_behind{job=\"factoryca\",factory=\"F1\"} >= 0", 1, stderr);
            await WaitForAsync(api, "offlinepki_sync_pushes{job=\"mirrorca\",factory=\"F1\",outcome=\"accepted\"} >= 1", 1, stderr);

            var ocsp = await WaitForAsync(api, "offlinepki_ocsp_requests{job=\"mirrorca\",status=\"successful\"}", 1, stderr);
            Assert.That(ocsp.Sum(s => s.Value), Is.GreaterThanOrEqualTo(1));
            await WaitForAsync(api, "offlinepki_ocsp_duration_count{job=\"mirrorca\"} >= 1", 1, stderr);

            var crlNumber = await WaitForAsync(api, "offlinepki_crl_number{job=\"mirrorca\",factory=\"F1\"}", 1, stderr);
            Assert.That(crlNumber[0].Value, Is.GreaterThanOrEqualTo(1));
            var crlLeft = await WaitForAsync(api, "offlinepki_crl_next_update_remaining{job=\"mirrorca\",factory=\"F1\"}", 1, stderr);
            Assert.That(crlLeft[0].Value, Is.GreaterThan(0));
            await WaitForAsync(api, "offlinepki_crl_age{job=\"mirrorca\",factory=\"F1\"} >= 0", 1, stderr);

            var expiry = await WaitForAsync(api, "offlinepki_certificate_expiry", 2, stderr);
            var roles = expiry.Select(s => s.Labels["job"] + "/" + s.Labels["role"]).ToHashSet();
            Assert.That(roles, Is.SupersetOf(new[] { "factoryca/issuing_ca", "factoryca/journal_signer", "factoryca/tls_server", "factoryca/tls_client",
                "mirrorca/issuing_ca", "mirrorca/ocsp_responder", "mirrorca/tls_server", "mirrorca/receipt" }));
            Assert.That(expiry.All(s => s.Value > 86400), Is.True, "dev certificates are valid for more than a day");

            var keys = await WaitForAsync(api, "offlinepki_key_available{key!~\"Test:.*\"}", 2, stderr);
            Assert.That(keys.All(s => s.Value == 1), Is.True, string.Join(", ", keys.Select(k => k.Labels["key"] + "=" + k.Value)));
        }
        finally
        {
            prometheus.Kill();
            await prometheus.WaitForExitAsync();
        }
    }

    [Test]
    public async Task Health_probes_answer_ready_then_not_ready_while_a_key_is_unavailable()
    {
        using var http = new HttpClient();
        Assert.That(await StatusAsync(_station, _daemons.FactoryHttps + "/health/live"), Is.EqualTo(200));
        Assert.That(await StatusAsync(_station, _daemons.FactoryHttps + "/health/ready"), Is.EqualTo(200));
        Assert.That(await StatusAsync(http, _daemons.MirrorHttp + "/health/live"), Is.EqualTo(200));
        Assert.That(await StatusAsync(http, _daemons.MirrorHttp + "/health/ready"), Is.EqualTo(200));
        Assert.That(await StatusAsync(http, _daemons.MirrorHttp + "/health"), Is.EqualTo(200), "the existing probe keeps working");

        // A PKCS#11 key whose module file is gone: both daemons fail readiness, liveness stays up.
        const string configKey = "Test:GoneKey";
        var gone = new SigningKeyOptions { Pkcs11Uri = "pkcs11:token=gone;object=gone", Module = _pki.PathOf("no-such-pkcs11-module.so") };
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var key = new AsymmetricSigningKey(ecdsa);
        var boards = new[] { _daemons.Factory.Services.GetRequiredService<KeyHealthBoard>(), _daemons.Mirror.Services.GetRequiredService<KeyHealthBoard>() };
        foreach (var board in boards)
        {
            board.Track(configKey, key, gone);
        }

        try
        {
            Assert.That(await StatusAsync(_station, _daemons.FactoryHttps + "/health/ready"), Is.EqualTo(503));
            Assert.That(await StatusAsync(_station, _daemons.FactoryHttps + "/health/live"), Is.EqualTo(200));
            Assert.That(await StatusAsync(http, _daemons.MirrorHttp + "/health/ready"), Is.EqualTo(503));
            Assert.That(await StatusAsync(http, _daemons.MirrorHttp + "/health/live"), Is.EqualTo(200));
            Assert.That(ScrapeFactory(), Does.Contain("key=\"Test:GoneKey\"} 0"));
        }
        finally
        {
            foreach (var board in boards)
            {
                board.Track(configKey, key, new SigningKeyOptions { File = _pki.PathOf("root-ca.key") }); // a file key: available
            }
        }

        Assert.That(await StatusAsync(http, _daemons.MirrorHttp + "/health/ready"), Is.EqualTo(200));
    }

    private static async Task<int> StatusAsync(HttpClient client, string url)
    {
        using var r = await client.GetAsync(url);
        return (int)r.StatusCode;
    }

    private string ScrapeFactory()
    {
        using var http = new HttpClient();
        return http.GetStringAsync(_daemons.FactoryMetricsHttp + "/metrics").GetAwaiter().GetResult();
    }

    private string ScrapeMirror() =>
        Tool.Run("curl", ["-sf", "--cacert", _pki.PathOf("tls-ca.crt"), "--cert", _pki.PathOf("admin-auditor.crt"), "--key", _pki.PathOf("admin-auditor.key"),
            _admin + "/metrics"]).EnsureSuccess("curl mirror /metrics").StdOut;

    private async Task EnrollAsync(string deviceId, bool expectOk)
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest($"CN={deviceId}, SERIALNUMBER={deviceId}", ec, HashAlgorithmName.SHA256).CreateSigningRequest();
        using var content = new StringContent(Convert.ToBase64String(csr));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/pkcs10");
        using var response = await _station.PostAsync(_daemons.FactoryHttps + "/.well-known/est/simpleenroll", content);
        Assert.That(response.IsSuccessStatusCode, Is.EqualTo(expectOk), await response.Content.ReadAsStringAsync());
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private sealed record Sample(Dictionary<string, string> Labels, double Value);

    // Polls the Prometheus HTTP API (GET /api/v1/query) until the query returns at least `min` series (30 s at most).
    private static async Task<List<Sample>> WaitForAsync(HttpClient api, string query, int min, System.Text.StringBuilder log)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        List<Sample> last = [];
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var doc = JsonDocument.Parse(await api.GetStringAsync("/api/v1/query?query=" + Uri.EscapeDataString(query)));
                last = doc.RootElement.GetProperty("data").GetProperty("result").EnumerateArray().Select(r => new Sample(
                    r.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!),
                    double.Parse(r.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture))).ToList();
                if (last.Count >= min)
                {
                    return last;
                }
            }
            catch (HttpRequestException)
            {
                // Prometheus is still starting.
            }

            await Task.Delay(500);
        }

        string tail;
        lock (log)
        {
            tail = log.ToString();
        }

        Assert.Fail($"Prometheus query '{query}' returned {last.Count} series, expected at least {min}; prometheus log tail: {tail[Math.Max(0, tail.Length - 1500)..]}");
        return last;
    }
}
