using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;
using OfflinePki.FactoryCa;
using OfflinePki.Journal.Index;
using OfflinePki.Sync;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.WholeSystem;

/// <summary>The FactoryCa operator verbs against a real daemon: status, rebuild-index, verify.</summary>
public class FactoryCliTests
{
    [Test]
    public async Task Rebuild_index_refuses_while_the_daemon_runs_and_rebuilds_identically_after_it_stops()
    {
        var pki = TestPki.Create("F1");
        string config = pki.PathOf("factoryca.json");
        var app = FactoryCaApp.Build(config, s => s.PostConfigure<SyncOptions>(o => o.Enabled = false), o => o.Est.Listen = "https://127.0.0.1:0");
        await app.StartAsync();
        try
        {
            var station = pki.CertWithKey("station-01");
            using var handler = new SocketsHttpHandler();
            handler.SslOptions.ClientCertificates = [station];
            handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true; // the test only drives the daemon
            using var http = new HttpClient(handler);
            string url = app.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal)).TrimEnd('/') + "/.well-known/est/simpleenroll";
            for (int i = 0; i < 3; i++)
            {
                using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                using var body = new StringContent(Convert.ToBase64String(
                    new CertificateRequest($"CN=x, SERIALNUMBER=IDX-{i:D4}", key, HashAlgorithmName.SHA256).CreateSigningRequest()));
                body.Headers.ContentType = new MediaTypeHeaderValue("application/pkcs10");
                using var r = await http.PostAsync(url, body);
                Assert.That(r.IsSuccessStatusCode, Is.True, await r.Content.ReadAsStringAsync());
            }

            Assert.That(await StatusCommand.RunAsync(config, CancellationToken.None), Is.EqualTo(0));
            Assert.That(await RebuildIndexCommand.RunAsync(config, CancellationToken.None), Is.EqualTo(1), "must refuse while the daemon owns the index");
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        string data = Path.Combine(pki.Directory, "data", "factory-F1");
        IReadOnlyList<IndexedCertificate> before;
        using (var index = FactoryIndex.Open(Path.Combine(data, "index.db")))
        {
            index.CatchUp(OfflinePki.Journal.JournalFileReader.Open(Path.Combine(data, "journal", "journal.log")));
            before = index.All();
        }

        File.Delete(Path.Combine(data, "index.db"));
        Assert.That(await RebuildIndexCommand.RunAsync(config, CancellationToken.None), Is.EqualTo(0));
        using (var rebuilt = FactoryIndex.Open(Path.Combine(data, "index.db")))
        {
            Assert.That(rebuilt.CountIssued(), Is.EqualTo(3));
            Assert.That(rebuilt.All(), Is.EqualTo(before));
        }

        // With the daemon stopped, status says so clearly and fails.
        Assert.That(await StatusCommand.RunAsync(config, CancellationToken.None), Is.EqualTo(1));
    }
}
