using System.Diagnostics;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
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
///   dotnet run -c Release --project bench/OfflinePki.Bench -- issuance [--certs 20000] [--stations 8]
/// </summary>
public static class IssuanceBench
{
    /// <summary>Runs the benchmark; returns 0.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        int certs = BenchSupport.IntOption(args, "certs", 20000);
        int stations = BenchSupport.IntOption(args, "stations", 8);
        string pki = BenchSupport.CreatePki();
        Console.WriteLine($"issuance benchmark: {certs} certificates, {stations} concurrent stations, PKI in {pki}");

        await using var app = FactoryCaApp.Build(Path.Combine(pki, "factoryca.json"),
            services =>
            {
                services.AddLogging(l => l.SetMinimumLevel(LogLevel.Warning));
                services.PostConfigure<SyncOptions>(o => o.Enabled = false);
            },
            o => o.Est.Listen = "https://127.0.0.1:0");
        await app.StartAsync();
        string url = app.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal)).TrimEnd('/') + "/.well-known/est/simpleenroll";

        Console.Write("making CSRs ... ");
        int warmup = Math.Min(1000, certs / 10);
        var csrs = new string[certs + warmup];
        Parallel.For(0, csrs.Length, i =>
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            string id = $"BENCH-{i:D8}";
            csrs[i] = Convert.ToBase64String(new CertificateRequest($"CN={id}, SERIALNUMBER={id}", key, HashAlgorithmName.SHA256).CreateSigningRequest());
        });
        Console.WriteLine("done");

        var tlsCa = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(pki, "tls-ca.crt"));
        var clients = Enumerable.Range(0, stations).Select(i => StationClient(pki, i % 2 == 0 ? "station-01" : "station-02", tlsCa)).ToArray();

        await Drive(clients, url, csrs.AsMemory(0, warmup));
        var journal = app.Services.GetRequiredService<JournalWriter>();
        long fsyncsBefore = journal.Fsyncs;
        var sw = Stopwatch.StartNew();
        var latencies = await Drive(clients, url, csrs.AsMemory(warmup));
        sw.Stop();
        long fsyncs = journal.Fsyncs - fsyncsBefore;
        await app.StopAsync();

        Array.Sort(latencies);
        double rate = certs / sw.Elapsed.TotalSeconds;
        var (sign, verify) = BenchSupport.OpenSslEcdsaP256();
        double limit = 1 / (1 / sign + 1 / verify);
        double scripted = OpenSslPerCertificateRate(pki, 40);

        Console.WriteLine();
        Console.WriteLine($"| measure | value |");
        Console.WriteLine($"|---|---|");
        Console.WriteLine($"| OfflinePki EST issuance, {stations} stations, durable journal | {rate:F0} certificates/s |");
        Console.WriteLine($"| latency p50 / p99 | {BenchSupport.Percentile(latencies, 0.50):F1} ms / {BenchSupport.Percentile(latencies, 0.99):F1} ms |");
        Console.WriteLine($"| journal fsyncs during the run | {fsyncs} ({(double)certs / Math.Max(1, fsyncs):F1} certificates per fsync) |");
        Console.WriteLine($"| peer: openssl speed -multi 2 ecdsap256 | sign {sign:F0}/s, verify {verify:F0}/s |");
        Console.WriteLine($"| crypto limit 1/(1/sign+1/verify) | {limit:F0} certificates/s |");
        Console.WriteLine($"| ratio OfflinePki / crypto limit | {rate / limit:P0} |");
        Console.WriteLine($"| peer: openssl x509 -req once per certificate | {scripted:F0} certificates/s |");
        Console.WriteLine($"| ratio OfflinePki / openssl x509 -req script | {rate / scripted:F0}x |");
        Console.WriteLine($"| target (issue 2) | >= 1000 certificates/s: {(rate >= 1000 ? "met" : "NOT met")} |");
        foreach (var c in clients)
        {
            c.Dispose();
        }

        return 0;
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

    private static HttpClient StationClient(string pki, string station, X509Certificate2 tlsCa)
    {
        var handler = new SocketsHttpHandler { MaxConnectionsPerServer = 1, PooledConnectionLifetime = Timeout.InfiniteTimeSpan };
        handler.SslOptions.ClientCertificates = [X509Certificate2.CreateFromPemFile(Path.Combine(pki, station + ".crt"), Path.Combine(pki, station + ".key"))];
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
