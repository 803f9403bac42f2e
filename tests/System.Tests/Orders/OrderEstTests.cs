using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;
using OfflinePki.FactoryCa;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Orders;
using OfflinePki.Tests.Factory;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Orders;

/// <summary>
/// Orders through the real FactoryCa daemon: imported over the control socket (the <c>import-order</c> verb), enforced on
/// EST simpleenroll over mTLS from 8 stations at once, and counted again from the journal after a restart.
/// </summary>
[NonParallelizable]
public class OrderEstTests
{
    private const int HammerStations = 8;
    private TestPki _pki = null!;
    private readonly List<(string Cn, string Crt, string Key)> _stations = [];

    [OneTimeSetUp]
    public void MakePki()
    {
        _pki = TestPki.Create("F1");
        for (int i = 0; i <= HammerStations; i++)
        {
            var (crt, key) = Peers.ClientCert($"line-st-{i}", _pki.PathOf("tls-ca.crt"), _pki.PathOf("tls-ca.key"));
            _stations.Add(($"line-st-{i}", crt, key));
        }
    }

    /// <summary>A config with its own data directory, sync off, the 8 line stations, and line-st-8 limited to another order.</summary>
    private string Config(bool ordersRequired = false)
    {
        string id = Guid.NewGuid().ToString("N")[..8];
        var config = JsonNode.Parse(File.ReadAllText(_pki.PathOf("factoryca.json")))!;
        var f = config["FactoryCa"]!;
        f["DataDirectory"] = "data/orders-" + id;
        f["Sync"]!["Enabled"] = false;
        f["Orders"] = new JsonObject { ["Required"] = ordersRequired };
        var stations = f["Stations"]!.AsArray();
        foreach (var (cn, _, _) in _stations)
        {
            stations.Add(new JsonObject { ["Id"] = cn, ["CertificateSubjectCn"] = cn, ["Orders"] = cn == "line-st-8" ? new JsonArray("PO-ELSEWHERE") : new JsonArray() });
        }

        string path = _pki.PathOf($"factoryca-orders-{id}.json");
        File.WriteAllText(path, config.ToJsonString());
        return path;
    }

    private static async Task<WebApplication> StartAsync(string config)
    {
        var app = FactoryCaApp.Build(config, configure: o => o.Est.Listen = "https://127.0.0.1:0");
        await app.StartAsync();
        return app;
    }

    private HttpClient Station(int i)
    {
        var handler = new SocketsHttpHandler();
        handler.SslOptions.ClientCertificates = [X509Certificate2.CreateFromPemFile(_stations[i].Crt, _stations[i].Key)];
        var tlsCa = _pki.Cert("tls-ca");
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) =>
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(tlsCa);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return cert is X509Certificate2 c && chain.Build(c);
        };
        return new HttpClient(handler);
    }

    private static Task<(HttpStatusCode Status, string Body)> EnrollAsync(HttpClient station, WebApplication app, string deviceId, string? orderId,
        string? kind = null) =>
        EnrollCoreAsync(station, app.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal)).TrimEnd('/') + "/.well-known/est/simpleenroll",
            deviceId, orderId, kind);

    private static async Task<(HttpStatusCode Status, string Body)> EnrollCoreAsync(HttpClient station, string url, string deviceId, string? orderId, string? kind)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest($"CN={deviceId}, SERIALNUMBER={deviceId}", key, HashAlgorithmName.SHA256).CreateSigningRequest();
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(Convert.ToBase64String(csr)) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/pkcs10");
        if (orderId is not null)
        {
            request.Headers.Add(EstEndpoints.OrderIdHeader, orderId);
        }

        if (kind is not null)
        {
            request.Headers.Add(EstEndpoints.IssuanceKindHeader, kind);
        }

        request.Headers.Add("X-Operator-Id", "op-1");
        using var response = await station.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private string OrderFile(JsonObject json)
    {
        string path = Peers.NewPath(".p7");
        File.WriteAllBytes(path, OrderFiles.Sign(_pki, json));
        return path;
    }

    private static string JournalPath(string config)
    {
        var data = JsonNode.Parse(File.ReadAllText(config))!["FactoryCa"]!["DataDirectory"]!.GetValue<string>();
        return Path.Combine(Path.GetDirectoryName(config)!, data, "journal", "journal.log");
    }

    private static List<CertificateIssued> Issued(string config) => JournalFileReader.Open(JournalPath(config)).ReadFrom(1)
        .Where(e => e.Type == EntryType.CertificateIssued).Select(e => CertificateIssued.Parser.ParseFrom(e.Payload)).ToList();

    [Test]
    public async Task Eight_stations_hammering_the_last_units_get_exactly_the_quantity_and_a_restart_keeps_the_count()
    {
        const int quantity = 12, before = 4, perStation = 5;
        string config = Config();
        string order = OrderFile(OrderFiles.Json("PO-HAMMER", quantity, "F1"));
        var app = await StartAsync(config);
        var clients = Enumerable.Range(0, HammerStations + 1).Select(Station).ToList();
        try
        {
            // Imported as a file through the running daemon (the CLI verb over the control socket).
            Assert.That(await ImportOrderCommand.RunAsync(config, order, CancellationToken.None), Is.Zero);
            Assert.That(app.Services.GetRequiredService<OrderBook>().StatusOf("PO-HAMMER")!.Order.Quantity, Is.EqualTo(quantity));

            for (int i = 1; i <= before; i++)
            {
                var r = await EnrollAsync(clients[0], app, $"ORD-{i:D5}", "PO-HAMMER");
                Assert.That(r.Status, Is.EqualTo(HttpStatusCode.OK), r.Body);
            }

            // The last 8 units, 40 requests from 8 stations at once.
            var tasks = new List<Task<(HttpStatusCode Status, string Body)>>();
            for (int s = 0; s < HammerStations; s++)
            {
                for (int k = 0; k < perStation; k++)
                {
                    tasks.Add(EnrollAsync(clients[s], app, $"ORD-{100 + s * perStation + k:D5}", "PO-HAMMER"));
                }
            }

            var results = await Task.WhenAll(tasks);
            Assert.That(results.Count(r => r.Status == HttpStatusCode.OK), Is.EqualTo(quantity - before));
            var refused = results.Where(r => r.Status != HttpStatusCode.OK).ToList();
            Assert.That(refused, Has.Count.EqualTo(HammerStations * perStation - (quantity - before)));
            Assert.That(refused.All(r => r.Status == HttpStatusCode.Conflict && r.Body.Contains("order PO-HAMMER is used up", StringComparison.Ordinal)), Is.True,
                string.Join("\n", refused.Select(r => $"{(int)r.Status} {r.Body}").Distinct()));

            // A rework re-issue does not consume a unit, so it is allowed on a used-up order.
            var rework = await EnrollAsync(clients[0], app, "ORD-00001", "PO-HAMMER", "rework");
            Assert.That(rework.Status, Is.EqualTo(HttpStatusCode.OK), rework.Body);

            // `FactoryCa orders` lists the book through the control socket.
            Assert.That(await OrdersCommand.RunAsync(config, CancellationToken.None), Is.Zero);
            string data = Path.GetDirectoryName(Path.GetDirectoryName(JournalPath(config)))!;
            using var control = ControlEndpoints.CreateClient(data);
            var listed = JsonDocument.Parse(await control.GetStringAsync(new Uri("control/orders", UriKind.Relative))).RootElement.EnumerateArray().Single();
            Assert.That((listed.GetProperty("orderId").GetString(), listed.GetProperty("issued").GetInt64(), listed.GetProperty("remaining").GetInt64()),
                Is.EqualTo(("PO-HAMMER", (long)quantity, 0L)));
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        var issued = Issued(config).Where(c => c.BatchId == "PO-HAMMER").ToList();
        Assert.That(issued.Count(c => c.Kind == IssuanceKind.Initial), Is.EqualTo(quantity), "the journal records exactly the quantity against the order");
        Assert.That(issued.Count(c => c.Kind == IssuanceKind.Rework), Is.EqualTo(1));
        Assert.That(issued.All(c => c.OperatorId == "op-1"), Is.True);

        // Restart: the book is rebuilt from the journal; nothing more can be issued.
        app = await StartAsync(config);
        try
        {
            var status = app.Services.GetRequiredService<OrderBook>().StatusOf("PO-HAMMER")!;
            Assert.That((status.Issued, status.InFlight), Is.EqualTo(((long)quantity, 0L)));
            var more = await EnrollAsync(clients[1], app, "ORD-00500", "PO-HAMMER");
            Assert.That(more.Status, Is.EqualTo(HttpStatusCode.Conflict), more.Body);

            // Re-importing the same order is a no-op; the journal does not grow.
            ulong head = app.Services.GetRequiredService<IJournalReader>().Head.Seq;
            Assert.That(await ImportOrderCommand.RunAsync(config, order, CancellationToken.None), Is.Zero);
            Assert.That(app.Services.GetRequiredService<IJournalReader>().Head.Seq, Is.EqualTo(head));
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
            foreach (var c in clients)
            {
                c.Dispose();
            }
        }
    }

    [Test]
    public async Task Bad_orders_are_refused_over_the_control_socket_and_EST_refusals_name_the_rule()
    {
        string config = Config(ordersRequired: true);
        var app = await StartAsync(config);
        using var station = Station(0);
        using var limited = Station(HammerStations);
        try
        {
            string data = Path.GetDirectoryName(Path.GetDirectoryName(JournalPath(config)))!;
            using var control = ControlEndpoints.CreateClient(data);
            var reader = app.Services.GetRequiredService<IJournalReader>();

            async Task Refused(byte[] file, string message)
            {
                ulong head = reader.Head.Seq;
                using var content = new ByteArrayContent(file);
                using var r = await control.PostAsync(new Uri("control/order", UriKind.Relative), content);
                string body = await r.Content.ReadAsStringAsync();
                Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest), body);
                Assert.That(body, Does.Contain(message));
                Assert.That(reader.Head.Seq, Is.EqualTo(head), "a refused order journals nothing");
            }

            var signed = OrderFiles.Sign(_pki, OrderFiles.Json("PO-GOOD", 3));
            var tampered = (byte[])signed.Clone();
            int at = System.Text.Encoding.Latin1.GetString(tampered).IndexOf("GW-100", StringComparison.Ordinal);
            tampered[at + 5] = (byte)'9';
            await Refused(tampered, "does not verify");
            await Refused(OrderFiles.Sign(_pki, OrderFiles.Json("PO-EKU"), "journal-signer-F1"), "order-signing extended key usage");
            var ended = OrderFiles.Json("PO-ENDED");
            ended["notBefore"] = "2024-01-01T00:00:00Z";
            ended["notAfter"] = "2025-01-01T00:00:00Z";
            await Refused(OrderFiles.Sign(_pki, ended), "PO-ENDED ended at");
            await Refused(OrderFiles.SignText(_pki, "{\"orderId\": \"PO-BAD\", \"quantity\": \"many\"}"), "field 'sku': required");
            await Refused(OrderFiles.Sign(_pki, OrderFiles.Json("PO-F2", factoryId: "F2")), "for factory F2, this is factory F1");
            await Refused("not an order"u8.ToArray(), "not a DER CMS SignedData");
            Assert.That(app.Services.GetRequiredService<OrderBook>().Snapshot(), Is.Empty);

            using (var content = new ByteArrayContent(signed))
            using (var ok = await control.PostAsync(new Uri("control/order", UriKind.Relative), content))
            {
                var json = JsonDocument.Parse(await ok.Content.ReadAsStringAsync()).RootElement;
                Assert.That(json.GetProperty("accepted").GetBoolean(), Is.True);
                Assert.That(json.GetProperty("quantity").GetInt64(), Is.EqualTo(3));
            }

            async Task EstRefused(HttpClient client, string device, string? order, HttpStatusCode status, string message)
            {
                ulong head = reader.Head.Seq;
                var r = await EnrollAsync(client, app, device, order);
                Assert.That(r.Status, Is.EqualTo(status), r.Body);
                Assert.That(r.Body, Does.Contain(message));
                Assert.That(reader.Head.Seq, Is.EqualTo(head), "a refused enrollment journals nothing");
            }

            await EstRefused(station, "ORD-00001", null, HttpStatusCode.BadRequest, "FactoryCa:Orders:Required");
            await EstRefused(station, "ORD-00001", "PO-NOPE", HttpStatusCode.BadRequest, "no accepted production order 'PO-NOPE'");
            await EstRefused(station, "XYZ-00001", "PO-GOOD", HttpStatusCode.BadRequest, "device ID XYZ-00001 is outside order PO-GOOD");
            await EstRefused(limited, "ORD-00001", "PO-GOOD", HttpStatusCode.Forbidden, "not authorised for order PO-GOOD");
            var good = await EnrollAsync(station, app, "ORD-00001", "PO-GOOD");
            Assert.That(good.Status, Is.EqualTo(HttpStatusCode.OK), good.Body);
            Assert.That(app.Services.GetRequiredService<OrderBook>().StatusOf("PO-GOOD")!.Issued, Is.EqualTo(1));
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [Test]
    public async Task SIGKILLs_while_8_stations_drain_an_order_never_push_issuance_past_the_quantity()
    {
        const int quantity = 60, kills = 3;
        string config = Config();
        int port;
        using (var l = new TcpListener(IPAddress.Loopback, 0))
        {
            l.Start();
            port = ((IPEndPoint)l.LocalEndpoint).Port;
            l.Stop();
        }

        var node = JsonNode.Parse(File.ReadAllText(config))!;
        node["FactoryCa"]!["Est"]!["Listen"] = $"https://127.0.0.1:{port}";
        node["FactoryCa"]!["Journal"]!["CheckpointEveryEntries"] = 5;
        File.WriteAllText(config, node.ToJsonString());
        string url = $"https://127.0.0.1:{port}/.well-known/est";
        string data = Path.GetDirectoryName(Path.GetDirectoryName(JournalPath(config)))!;
        var clients = Enumerable.Range(0, HammerStations).Select(Station).ToList();
        var received = new System.Collections.Concurrent.ConcurrentBag<string>();
        int next = 0, exhausted = 0;
        var random = new Random(6);
        var atKill = new List<int>();
        try
        {
            for (int round = 0; round <= kills; round++)
            {
                exhausted = 0; // counted per round: the last round must end with every station refused
                using var process = FactoryProcess.Start(config);
                try
                {
                    await FactoryProcess.WaitReadyAsync(clients[0], url, process);
                    if (round == 0)
                    {
                        using var control = ControlEndpoints.CreateClient(data);
                        using var content = new ByteArrayContent(OrderFiles.Sign(_pki, OrderFiles.Json("PO-KILL", quantity, "F1")));
                        using var r = await control.PostAsync(new Uri("control/order", UriKind.Relative), content);
                        Assert.That(r.IsSuccessStatusCode, Is.True, await r.Content.ReadAsStringAsync());
                    }

                    using var stop = new CancellationTokenSource();
                    var loops = clients.Select(c => Task.Run(async () =>
                    {
                        while (!stop.IsCancellationRequested)
                        {
                            try
                            {
                                var (status, body) = await EnrollAsync(c, url, $"ORD-{Interlocked.Increment(ref next):D5}", "PO-KILL");
                                if (status == HttpStatusCode.OK)
                                {
                                    received.Add(body);
                                }
                                else if (status == HttpStatusCode.Conflict)
                                {
                                    Interlocked.Increment(ref exhausted);
                                    return;
                                }
                                else
                                {
                                    Assert.Fail($"unexpected {(int)status}: {body}");
                                }
                            }
                            catch (HttpRequestException)
                            {
                                return; // the daemon was killed under us
                            }
                        }
                    })).ToList();
                    if (round < kills)
                    {
                        // Kill mid-drain, with requests in flight: once a share of the order has been received.
                        int threshold = (round + 1) * quantity / (kills + 2) - random.Next(0, 5);
                        while (received.Count < threshold && loops.Any(l => !l.IsCompleted))
                        {
                            await Task.Delay(2);
                        }

                        atKill.Add(received.Count);
                        process.Kill(entireProcessTree: true); // SIGKILL
                        await process.WaitForExitAsync();
                        stop.Cancel();
                    }

                    await Task.WhenAll(loops);
                }
                finally
                {
                    if (!process.HasExited)
                    {
                        process.Kill(entireProcessTree: true);
                        await process.WaitForExitAsync();
                    }
                }
            }
        }
        finally
        {
            foreach (var c in clients)
            {
                c.Dispose();
            }
        }

        var issued = Issued(config).Where(c => c.BatchId == "PO-KILL").ToList();
        TestContext.Out.WriteLine($"{kills} SIGKILLs (at {string.Join(", ", atKill)} received), {next} requests, {received.Count} certificates received, {issued.Count} journaled for PO-KILL, {exhausted} stations saw 409 in the last round");
        Assert.That(issued, Has.Count.EqualTo(quantity), "after the kills and restarts the order was drained to exactly its quantity");
        Assert.That(received, Has.Count.LessThanOrEqualTo(quantity));
        Assert.That(exhausted, Is.EqualTo(HammerStations), "in the last round every station ends on a 409");
        Assert.That(atKill, Has.Count.EqualTo(kills).And.All.InRange(1, quantity - 1), "every kill hit the order mid-drain");
        var journaled = issued.Select(c => Convert.ToBase64String(c.Certificate.Span)).ToHashSet();
        Assert.That(received.Select(b => Convert.ToBase64String(CertsOnlyLeaf(Convert.FromBase64String(b)))).All(journaled.Contains), Is.True,
            "every certificate a station received is in the journal");
    }

    private static Task<(HttpStatusCode Status, string Body)> EnrollAsync(HttpClient station, string estBase, string deviceId, string orderId) =>
        EnrollCoreAsync(station, estBase + "/simpleenroll", deviceId, orderId, null);

    /// <summary>The first certificate of an RFC 7030 §4.1.3 certs-only CMS SignedData (RFC 5652 §5.1).</summary>
    private static byte[] CertsOnlyLeaf(byte[] cms)
    {
        var signed = new System.Security.Cryptography.Pkcs.SignedCms();
        signed.Decode(cms);
        return signed.Certificates[0].RawData;
    }
}
