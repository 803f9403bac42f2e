using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;
using OfflinePki.FactoryCa;
using OfflinePki.MirrorCa;
using OfflinePki.Orders;
using OfflinePki.Registry;
using OfflinePki.Sync;
using OfflinePki.Tests.Factory;
using OfflinePki.Tests.Mirror;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Orders;

/// <summary>
/// Both daemons on loopback from their generated configs: the OEM's order is added at the mirror, reaches the factory in
/// the sync response, is enforced on EST, and comes back in the mirror's per-order and batch reports.
/// </summary>
[NonParallelizable]
public class OrderWholeSystemTests
{
    [Test]
    public async Task An_order_added_at_the_mirror_is_delivered_by_sync_enforced_on_EST_and_reported()
    {
        var pki = TestPki.Create("F1");
        await using var daemons = await BothDaemons.StartAsync(pki);
        var mirror = daemons.Mirror;
        var factory = daemons.Factory;
        string est = daemons.FactoryHttps + "/.well-known/est/simpleenroll";
        using var station = pki.MtlsClient("station-01");
        try
        {
            string orderFile = Peers.NewPath(".p7");
            File.WriteAllBytes(orderFile, OrderFiles.Sign(pki, OrderFiles.Json("PO-E2E", 2, "F1")));
            var add = MirrorCli.Run("order", "add", "--config", pki.PathOf("mirrorca.json"), orderFile);
            Assert.That(add.Exit, Is.Zero, add.Err);

            string factoryConfig = pki.PathOf("factoryca.json");
            Assert.That(await SyncNowCommand.RunAsync(factoryConfig, CancellationToken.None), Is.Zero);
            var book = factory.Services.GetRequiredService<OrderBook>();
            Assert.That(book.StatusOf("PO-E2E")?.Order.Quantity, Is.EqualTo(2), "the order arrived in the sync response");

            async Task<HttpStatusCode> Enroll(string device, string? mac)
            {
                using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                var csr = new CertificateRequest($"CN={device}, SERIALNUMBER={device}", key, HashAlgorithmName.SHA256).CreateSigningRequest();
                using var request = new HttpRequestMessage(HttpMethod.Post, est) { Content = new StringContent(Convert.ToBase64String(csr)) };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/pkcs10");
                request.Headers.Add(EstEndpoints.OrderIdHeader, "PO-E2E");
                request.Headers.Add("X-Operator-Id", "alice");
                if (mac is not null)
                {
                    request.Headers.Add(EstEndpoints.DeviceMacHeader, mac);
                }

                using var r = await station.SendAsync(request);
                return r.StatusCode;
            }

            Assert.That(await Enroll("ORD-00001", "00:1a:2b:3c:4d:5e"), Is.EqualTo(HttpStatusCode.OK));
            Assert.That(await Enroll("ORD-00002", null), Is.EqualTo(HttpStatusCode.OK));
            Assert.That(await Enroll("ORD-00003", null), Is.EqualTo(HttpStatusCode.Conflict));

            Assert.That(await SyncNowCommand.RunAsync(factoryConfig, CancellationToken.None), Is.Zero);
            var registry = mirror.Services.GetRequiredService<MirrorRegistry>();
            var line = registry.ReportOrders().Orders.Single(o => o.OrderId == "PO-E2E");
            Assert.That((line.Authorized, line.Issued, line.Factories.Single()), Is.EqualTo(((long?)2, 2L, "F1")));
            Assert.That(registry.OrdersFor("F1"), Is.Empty, "the factory accepted it; the mirror stops sending it");

            var json = MirrorCli.Run("report", "order", "PO-E2E", "--format", "json", "--config", pki.PathOf("mirrorca.json"));
            Assert.That(json.Exit, Is.Zero, json.Err);
            var certs = JsonDocument.Parse(json.Out).RootElement.GetProperty("certificates").EnumerateArray().ToList();
            Assert.That(certs.Select(c => c.GetProperty("deviceId").GetString()), Is.EqualTo(new[] { "ORD-00001", "ORD-00002" }));
            Assert.That(certs[0].GetProperty("mac").GetString(), Is.EqualTo("00:1a:2b:3c:4d:5e"));
            Assert.That(certs[0].GetProperty("operator").GetString(), Is.EqualTo("alice"));
            Assert.That(certs[1].GetProperty("mac").ValueKind, Is.EqualTo(JsonValueKind.Null));
        }
        finally
        {
            await factory.StopAsync();
            await mirror.StopAsync();
        }
    }
}
