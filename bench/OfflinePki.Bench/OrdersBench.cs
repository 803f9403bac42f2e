using System.CommandLine;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OfflinePki.FactoryCa;
using OfflinePki.Orders;
using OfflinePki.Sync;

namespace OfflinePki.Bench;

/// <summary>
/// Cost of the production-order policy (issue 6 "Speed": policy ≤ 10 % of throughput). Real EST simpleenroll over mTLS
/// into the durable journal, S concurrent stations, in alternating rounds on the same daemon: requests without an order
/// (the order policy returns at once) against requests naming an order (order lookup, window, profile, station,
/// device-ID range, atomic reservation, commit). The peer is the same issuance path in the same run.
///
///   dotnet run -c Release --project bench/OfflinePki.Bench -- orders [--certs 4000] [--stations 8] [--rounds 4]
/// </summary>
public static class OrdersBench
{
    /// <summary>The <c>orders [--certs 4000] [--stations 8] [--rounds 4]</c> verb.</summary>
    public static Command Command()
    {
        var certs = BenchCli.Int("--certs", 4000, "Enrollments per measurement");
        var stations = BenchCli.Int("--stations", 8, "Concurrent stations");
        var rounds = BenchCli.Int("--rounds", 4, "Rounds (the median is reported)");
        return BenchCli.Verb("orders", "Enrollment under a production order vs without one", [certs, stations, rounds],
            p => RunAsync(p.GetValue(certs), p.GetValue(stations), p.GetValue(rounds)));
    }

    /// <summary>Runs the benchmark; returns 0.</summary>
    public static async Task<int> RunAsync(int certs, int stations, int rounds)
    {
        string pki = BenchSupport.CreatePki();
        Console.WriteLine($"orders benchmark: {certs} certificates per round and mode, {rounds} rounds, {stations} concurrent stations, PKI in {pki}");

        await using var app = FactoryCaApp.Build(Path.Combine(pki, "factoryca.json"),
            services =>
            {
                services.AddLogging(l => l.SetMinimumLevel(LogLevel.Warning));
                services.PostConfigure<SyncOptions>(o => o.Enabled = false);
            },
            o => o.Est.Listen = "https://127.0.0.1:0");
        await app.StartAsync();
        string url = app.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal)).TrimEnd('/') + "/.well-known/est/simpleenroll";

        int total = certs * rounds * 2 + 2 * stations * 10;
        string order = Path.Combine(pki, "po-bench.json"), signed = Path.Combine(pki, "po-bench.p7");
        File.WriteAllText(order, $$"""
            { "orderId": "PO-BENCH", "sku": "BENCH", "profile": "idevid", "quantity": {{total}},
              "deviceIds": { "from": "BENCH-00000000", "to": "BENCH-99999999" },
              "notBefore": "2020-01-01T00:00:00Z", "notAfter": "2099-01-01T00:00:00Z" }
            """);
        BenchSupport.Run("bash", [Path.Combine(BenchSupport.RepoRoot, "ops", "sign-order.sh"), order, signed, "--signer", Path.Combine(pki, "order-signer")]);
        await app.Services.GetRequiredService<OrderBook>().AcceptAsync(File.ReadAllBytes(signed), "file", CancellationToken.None);

        Console.Write("making CSRs ... ");
        var csrs = new string[total];
        Parallel.For(0, csrs.Length, i =>
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            string id = $"BENCH-{i:D8}";
            csrs[i] = Convert.ToBase64String(new CertificateRequest($"CN={id}, SERIALNUMBER={id}", key, HashAlgorithmName.SHA256).CreateSigningRequest());
        });
        Console.WriteLine("done");

        var tlsCa = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(pki, "tls-ca.crt"));
        var clients = Enumerable.Range(0, stations).Select(i => BenchSupport.StationClient(pki, i % 2 == 0 ? "station-01" : "station-02", tlsCa)).ToArray();
        int offset = 0;
        ReadOnlyMemory<string> Take(int n)
        {
            var m = csrs.AsMemory(offset, n);
            offset += n;
            return m;
        }

        await Drive(clients, url, Take(stations * 10), null);
        await Drive(clients, url, Take(stations * 10), "PO-BENCH");
        double off = 0, on = 0;
        for (int r = 0; r < rounds; r++)
        {
            // Alternate which mode goes first, so drift on a shared machine hits both alike.
            foreach (var withOrder in r % 2 == 0 ? new[] { false, true } : [true, false])
            {
                var sw = Stopwatch.StartNew();
                await Drive(clients, url, Take(certs), withOrder ? "PO-BENCH" : null);
                if (withOrder)
                {
                    on += sw.Elapsed.TotalSeconds;
                }
                else
                {
                    off += sw.Elapsed.TotalSeconds;
                }
            }
        }

        var status = app.Services.GetRequiredService<OrderBook>().StatusOf("PO-BENCH")!;
        await app.StopAsync();
        double rateOff = certs * rounds / off, rateOn = certs * rounds / on;
        Console.WriteLine();
        Console.WriteLine("| measure | value |");
        Console.WriteLine("|---|---|");
        Console.WriteLine($"| peer: EST issuance without an order, {stations} stations, durable journal | {rateOff:F0} certificates/s |");
        Console.WriteLine($"| EST issuance under an order (checks + atomic reservation) | {rateOn:F0} certificates/s |");
        Console.WriteLine($"| ratio with order / without | {rateOn / rateOff:P1} |");
        Console.WriteLine($"| order units consumed (checks the policy ran) | {status.Issued} of {status.Order.Quantity} |");
        Console.WriteLine($"| target (issue 6): policy costs at most 10 % | {(rateOn >= 0.9 * rateOff ? "met" : "NOT met")} |");
        foreach (var c in clients)
        {
            c.Dispose();
        }

        return 0;
    }

    private static async Task Drive(HttpClient[] clients, string url, ReadOnlyMemory<string> csrs, string? orderId)
    {
        int next = -1;
        await Task.WhenAll(clients.Select(client => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < csrs.Length)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(csrs.Span[i]) };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/pkcs10");
                if (orderId is not null)
                {
                    request.Headers.Add(EstEndpoints.OrderIdHeader, orderId);
                }

                using var response = await client.SendAsync(request).ConfigureAwait(false);
                _ = await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
                if (!response.IsSuccessStatusCode)
                {
                    throw new InvalidOperationException($"enrollment failed: {(int)response.StatusCode}");
                }
            }
        })));
    }
}
