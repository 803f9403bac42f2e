using System.CommandLine;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using OfflinePki.FactoryCa;
using OfflinePki.Journal;
using OfflinePki.Sync;

namespace OfflinePki.Bench;

/// <summary>
/// End-to-end issuance (issue 2): EST simpleenroll over mTLS with keep-alive, S concurrent stations, the durable
/// journal (fsync per group commit) on, on this machine. Reports certificates/s and p50/p99 latency, against the
/// crypto limit from `openssl speed -multi 2 ecdsap256` measured in the same run (one CSR verify plus one
/// certificate sign per certificate: limit = 1 / (1/sign + 1/verify)), and against `openssl x509 -req` run once per
/// certificate, the way small CAs script it.
///
///   dotnet run -c Release --project bench/OfflinePki.Bench -- issuance [--certs 20000] [--stations 8] [--rounds 4]
///
/// Issue 6: the same run measures every registration-authority policy on against all of them off (two daemons,
/// alternating rounds); the policy may cost at most 10 % of throughput.
/// </summary>
public static class IssuanceBench
{
    /// <summary>The <c>issuance [--certs 20000] [--stations 8] [--rounds 4]</c> verb.</summary>
    public static Command Command()
    {
        var certs = BenchCli.Int("--certs", 20000, "Certificates per measurement");
        var stations = BenchCli.Int("--stations", 8, "Concurrent stations");
        var rounds = BenchCli.Int("--rounds", 4, "Rounds (the median is reported)");
        return BenchCli.Verb("issuance", "EST issuance, every policy on vs off (same run), vs openssl speed and openssl x509 -req", [certs, stations, rounds],
            p => RunAsync(p.GetValue(certs), p.GetValue(stations), p.GetValue(rounds)));
    }

    /// <summary>Runs the benchmark; returns 0.</summary>
    public static async Task<int> RunAsync(int certs, int stations, int rounds)
    {
        Console.WriteLine($"issuance benchmark: {certs} certificates per mode in {rounds} alternating rounds, {stations} concurrent stations");

        // Two daemons side by side, each with its own PKI and journal: "off" without any IEnrollmentPolicy, "on" with
        // every registration-authority rule on every request (station limits with a rate limit, ISO 7064 check digits,
        // one active IDevID and cloned-key checks, and a production order with its atomic quota). Rounds alternate so
        // that machine noise hits both modes alike.
        await using var off = await Daemon.StartAsync(policy: false, certs, stations);
        await using var on = await Daemon.StartAsync(policy: true, certs, stations);

        int perRound = Math.Max(1, certs / rounds);
        var offLatencies = new List<double>();
        var onLatencies = new List<double>();
        TimeSpan offTime = TimeSpan.Zero, onTime = TimeSpan.Zero;
        long fsyncs = 0;
        await off.DriveAsync(0, Math.Min(1000, certs / 10));
        await on.DriveAsync(0, Math.Min(1000, certs / 10));
        for (int r = 0; r < rounds; r++)
        {
            // Which mode goes first alternates too, so neither always runs on a machine the other has just warmed.
            for (int k = 0; k < 2; k++)
            {
                bool policyOn = (k == 0) == (r % 2 == 1);
                var daemon = policyOn ? on : off;
                long f0 = daemon.Journal.Fsyncs;
                var sw = Stopwatch.StartNew();
                var l = await daemon.DriveAsync(r + 1, perRound);
                if (policyOn)
                {
                    onLatencies.AddRange(l);
                    onTime += sw.Elapsed;
                }
                else
                {
                    offLatencies.AddRange(l);
                    offTime += sw.Elapsed;
                    fsyncs += daemon.Journal.Fsyncs - f0;
                }
            }
        }

        double rate = perRound * rounds / offTime.TotalSeconds;
        double rateOn = perRound * rounds / onTime.TotalSeconds;
        var lOff = offLatencies.ToArray();
        var lOn = onLatencies.ToArray();
        Array.Sort(lOff);
        Array.Sort(lOn);
        var (sign, verify) = BenchSupport.OpenSslEcdsaP256();
        double limit = 1 / (1 / sign + 1 / verify);
        double scripted = OpenSslPerCertificateRate(off.Pki, 40);
        double cost = 1 - (rateOn / rate);

        Console.WriteLine();
        Console.WriteLine($"| measure | value |");
        Console.WriteLine($"|---|---|");
        Console.WriteLine($"| OfflinePki EST issuance, {stations} stations, durable journal, policy off | {rate:F0} certificates/s |");
        Console.WriteLine($"| latency p50 / p99, policy off | {BenchSupport.Percentile(lOff, 0.50):F1} ms / {BenchSupport.Percentile(lOff, 0.99):F1} ms |");
        Console.WriteLine($"| journal fsyncs, policy off | {fsyncs} ({(double)perRound * rounds / Math.Max(1, fsyncs):F1} certificates per fsync) |");
        Console.WriteLine($"| same, every policy on (station limits, check digit, device rules, order quota) | {rateOn:F0} certificates/s |");
        Console.WriteLine($"| latency p50 / p99, policy on | {BenchSupport.Percentile(lOn, 0.50):F1} ms / {BenchSupport.Percentile(lOn, 0.99):F1} ms |");
        Console.WriteLine($"| policy cost (1 - on/off, same run) | {cost:P1}; target (issue 6) <= 10 %: {(cost <= 0.10 ? "met" : "NOT met")} |");
        Console.WriteLine($"| peer: openssl speed -multi 2 ecdsap256 | sign {sign:F0}/s, verify {verify:F0}/s |");
        Console.WriteLine($"| crypto limit 1/(1/sign+1/verify) | {limit:F0} certificates/s |");
        Console.WriteLine($"| ratio OfflinePki (policy on) / crypto limit | {rateOn / limit:P0} |");
        Console.WriteLine($"| peer: openssl x509 -req once per certificate | {scripted:F0} certificates/s |");
        Console.WriteLine($"| ratio OfflinePki (policy on) / openssl x509 -req script | {rateOn / scripted:F0}x |");
        Console.WriteLine($"| target (issue 2) | >= 1000 certificates/s: {(rateOn >= 1000 ? "met" : "NOT met")} |");
        return 0;
    }

    /// <summary>One in-process FactoryCa with its own PKI, its station clients and pre-made CSRs per round.</summary>
    private sealed class Daemon : IAsyncDisposable
    {
        private const string OrderId = "PO-BENCH";
        private readonly Microsoft.AspNetCore.Builder.WebApplication _app;
        private readonly HttpClient[] _clients;
        private readonly string _url;

        private Daemon(string pki, Microsoft.AspNetCore.Builder.WebApplication app, HttpClient[] clients, string url)
        {
            Pki = pki;
            _app = app;
            _clients = clients;
            _url = url;
        }

        public string Pki { get; }

        public JournalWriter Journal => _app.Services.GetRequiredService<JournalWriter>();

        public static async Task<Daemon> StartAsync(bool policy, int certs, int stations)
        {
            string pki = BenchSupport.CreatePki();
            var app = FactoryCaApp.Build(Path.Combine(pki, "factoryca.json"),
                services =>
                {
                    services.AddLogging(l => l.SetMinimumLevel(LogLevel.Warning));
                    services.PostConfigure<SyncOptions>(o => o.Enabled = false);
                    if (!policy)
                    {
                        services.RemoveAll<OfflinePki.Policy.IEnrollmentPolicy>();
                    }
                },
                o =>
                {
                    o.Est.Listen = "https://127.0.0.1:0";
                    if (policy)
                    {
                        o.Profile.DeviceIdCheckDigit = "iso7064-mod37-36";
                        foreach (var s in o.Stations)
                        {
                            s.RateLimitPerMinute = 60_000_000; // exercised on every request, never reached
                        }
                    }
                });
            await app.StartAsync();
            if (policy)
            {
                string order = Path.Combine(pki, "po-bench.json"), signed = Path.Combine(pki, "po-bench.p7");
                File.WriteAllText(order, $$"""
                    { "orderId": "{{OrderId}}", "sku": "BENCH", "profile": "idevid", "quantity": {{certs * 2 + 10000}},
                      "deviceIds": { "pattern": "BENCH[0-9]{10}[0-9A-Z]" },
                      "notBefore": "2020-01-01T00:00:00Z", "notAfter": "2099-01-01T00:00:00Z" }
                    """);
                BenchSupport.Run("bash", [Path.Combine(BenchSupport.RepoRoot, "ops", "sign-order.sh"), order, signed, "--signer", Path.Combine(pki, "order-signer")]);
                await app.Services.GetRequiredService<OfflinePki.Orders.OrderBook>().AcceptAsync(File.ReadAllBytes(signed), "file", CancellationToken.None);
            }

            string url = app.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal)).TrimEnd('/') + "/.well-known/est/simpleenroll";
            var tlsCa = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(pki, "tls-ca.crt"));
            var clients = Enumerable.Range(0, stations).Select(i =>
            {
                var c = BenchSupport.StationClient(pki, i % 2 == 0 ? "station-01" : "station-02", tlsCa);
                if (policy)
                {
                    c.DefaultRequestHeaders.Add("X-Order-Id", OrderId);
                }

                return c;
            }).ToArray();
            return new Daemon(pki, app, clients, url);
        }

        /// <summary>Enrolls <paramref name="count"/> fresh devices (round <paramref name="round"/>); returns their latencies in ms.</summary>
        public async Task<double[]> DriveAsync(int round, int count)
        {
            // Device IDs carry a valid ISO 7064 MOD 37,36 check character in both modes, so both do the same work
            // apart from the policies.
            var csrs = new string[count];
            Parallel.For(0, count, i =>
            {
                using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                string id = OfflinePki.Policy.DeviceIdFormat.Append(OfflinePki.Policy.DeviceIdCheckDigit.Iso7064Mod37_36,
                    $"BENCH{round:D2}{i:D8}");
                csrs[i] = Convert.ToBase64String(new CertificateRequest($"CN={id}, SERIALNUMBER={id}", key, HashAlgorithmName.SHA256).CreateSigningRequest());
            });
            return await Drive(_clients, _url, csrs).ConfigureAwait(false);
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var c in _clients)
            {
                c.Dispose();
            }

            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }

    private static async Task<double[]> Drive(HttpClient[] clients, string url, ReadOnlyMemory<string> csrs)
    {
        var latencies = new double[csrs.Length];
        int next = -1;
        await Task.WhenAll(clients.Select(client => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < csrs.Length)
            {
                long start = Stopwatch.GetTimestamp();
                using var content = new StringContent(csrs.Span[i]);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/pkcs10");
                using var response = await client.PostAsync(url, content).ConfigureAwait(false);
                _ = await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
                if (!response.IsSuccessStatusCode)
                {
                    throw new InvalidOperationException($"enrollment failed: {(int)response.StatusCode}");
                }

                latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
        })));
        return latencies;
    }

    /// <summary>`openssl x509 -req` per certificate, as small CAs script it: certificates/s over <paramref name="n"/> runs.</summary>
    private static double OpenSslPerCertificateRate(string pki, int n)
    {
        string dir = Path.Combine(pki, "openssl-peer");
        Directory.CreateDirectory(dir);
        BenchSupport.Run("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", Path.Combine(dir, "d.key"),
            "-subj", "/CN=d/serialNumber=D-1", "-out", Path.Combine(dir, "d.csr")]);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < n; i++)
        {
            BenchSupport.Run("openssl", ["x509", "-req", "-in", Path.Combine(dir, "d.csr"), "-CA", Path.Combine(pki, "issuing-ca-F1.crt"),
                "-CAkey", Path.Combine(pki, "issuing-ca-F1.key"), "-set_serial", (1000 + i).ToString(System.Globalization.CultureInfo.InvariantCulture),
                "-days", "365", "-out", Path.Combine(dir, $"d{i}.crt")]);
        }

        return n / sw.Elapsed.TotalSeconds;
    }
}
