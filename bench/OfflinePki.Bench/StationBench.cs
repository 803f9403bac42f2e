using System.CommandLine;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OfflinePki.DeviceSimulator;
using OfflinePki.FactoryCa;
using OfflinePki.Keys;
using OfflinePki.Station;
using OfflinePki.Sync;

namespace OfflinePki.Bench;

/// <summary>
/// Line rate of the station tool (issue 6): units per second through the whole station flow (device info, CSR,
/// EST cacerts + simpleenroll over a fresh mTLS connection, certificate checks, write + read-back, challenge-response,
/// finalize) against simulated devices on loopback TCP, with S stations at once; against the peer measured in the
/// same run: a bare EST simpleenroll of a pre-made CSR over a fresh mTLS connection per unit (what a station that
/// checks nothing would cost). Device keys are software P-256 keys here (the secure element's signing time is not
/// the station's; SoftHSM2 signs at ~17 000/s, see docs/hsm.md).
///
///   dotnet run -c Release --project bench/OfflinePki.Bench -- station [--units 500] [--stations 4]
/// </summary>
public static class StationBench
{
    /// <summary>The <c>station [--units 500] [--stations 4]</c> verb.</summary>
    public static Command Command()
    {
        var units = BenchCli.Int("--units", 500, "Device units per measurement");
        var stations = BenchCli.Int("--stations", 4, "Concurrent stations");
        return BenchCli.Verb("station", "Station tool full flow vs bare EST simpleenroll per unit", [units, stations],
            p => RunAsync(p.GetValue(units), p.GetValue(stations)));
    }

    /// <summary>Runs the benchmark; returns 0.</summary>
    public static async Task<int> RunAsync(int units, int stations)
    {
        string pki = BenchSupport.CreatePki();
        Console.WriteLine($"station benchmark: {units} units per side, {stations} stations at once, PKI in {pki}");

        await using var app = FactoryCaApp.Build(Path.Combine(pki, "factoryca.json"),
            services =>
            {
                services.AddLogging(l => l.SetMinimumLevel(LogLevel.Warning));
                services.PostConfigure<SyncOptions>(o => o.Enabled = false);
            },
            o => o.Est.Listen = "https://127.0.0.1:0");
        await app.StartAsync();
        var est = new Uri(app.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal)));
        var clientCert = X509Certificate2.CreateFromPemFile(Path.Combine(pki, "station-01.crt"), Path.Combine(pki, "station-01.key"));
        var anchors = new X509Certificate2Collection(X509CertificateLoader.LoadCertificateFromFile(Path.Combine(pki, "tls-ca.crt")));
        string run = Guid.NewGuid().ToString("N")[..6].ToUpperInvariant();

        // Warm-up (JIT, TLS), then the two sides.
        await Stations(stations, Math.Min(20, units), i => StationUnit(est, clientCert, anchors, $"W{run}-{i:D6}"));
        var (stationRate, stationLatency) = await Stations(stations, units, i => StationUnit(est, clientCert, anchors, $"S{run}-{i:D6}"));

        var csrs = Enumerable.Range(0, units).Select(i =>
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            string id = $"E{run}-{i:D6}";
            return Convert.ToBase64String(new CertificateRequest($"CN={id}, SERIALNUMBER={id}", key, HashAlgorithmName.SHA256).CreateSigningRequest());
        }).ToArray();
        var (bareRate, bareLatency) = await Stations(stations, units, i => BareEnroll(est, clientCert, anchors, csrs[i]));
        await app.StopAsync();

        Console.WriteLine();
        Console.WriteLine("| measure | value |");
        Console.WriteLine("|---|---|");
        Console.WriteLine($"| station tool, full flow, {stations} stations | {stationRate:F1} units/s (p50 {stationLatency:F1} ms per unit) |");
        Console.WriteLine($"| peer: bare EST simpleenroll, fresh mTLS per unit, {stations} stations | {bareRate:F1} units/s (p50 {bareLatency:F1} ms) |");
        Console.WriteLine($"| ratio station / bare EST | {stationRate / bareRate:P0} |");
        Console.WriteLine($"| station units per hour at this rate | {stationRate * 3600:F0} |");
        return 0;
    }

    private static async Task<(double Rate, double P50)> Stations(int stations, int units, Func<int, Task> unit)
    {
        var latencies = new double[units];
        int next = -1;
        var sw = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, stations).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < units)
            {
                long start = Stopwatch.GetTimestamp();
                await unit(i).ConfigureAwait(false);
                latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
        })));
        sw.Stop();
        Array.Sort(latencies);
        return (units / sw.Elapsed.TotalSeconds, BenchSupport.Percentile(latencies, 0.5));
    }

    private static async Task StationUnit(Uri est, X509Certificate2 clientCert, X509Certificate2Collection anchors, string deviceId)
    {
        using var key = new AsymmetricSigningKey(ECDsa.Create(ECCurve.NamedCurves.nistP256));
        var device = new SimulatedDevice(deviceId, "02:00:5e:00:00:01", "bench", key, null, DeviceFault.None);
        using var cts = new CancellationTokenSource();
        var bound = new TaskCompletionSource<IPEndPoint>(TaskCreationOptions.RunContinuationsAsynchronously);
        var server = new DeviceServer(device, TextWriter.Null).RunAsync(new IPEndPoint(IPAddress.Loopback, 0), ep => bound.SetResult(ep), cts.Token);
        var endpoint = await bound.Task.ConfigureAwait(false);
        var outcome = await new StationRunner(TextWriter.Null).RunAsync(new StationRunOptions
        {
            Device = $"tcp:127.0.0.1:{endpoint.Port}",
            Label = deviceId,
            Est = est,
            ClientCertificate = clientCert,
            TlsTrustAnchors = anchors,
            Operator = "bench",
        }, CancellationToken.None).ConfigureAwait(false);
        await cts.CancelAsync().ConfigureAwait(false);
        await server.ConfigureAwait(false);
        if (!outcome.Passed)
        {
            throw new InvalidOperationException($"station failed at {outcome.Step}: {outcome.Reason}");
        }
    }

    private static async Task BareEnroll(Uri est, X509Certificate2 clientCert, X509Certificate2Collection anchors, string csr)
    {
        var handler = new SocketsHttpHandler();
        handler.SslOptions.ClientCertificates = [clientCert];
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) =>
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(anchors);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return cert is X509Certificate2 c && chain.Build(c);
        };
        using var http = new HttpClient(handler);
        using var content = new StringContent(csr);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/pkcs10");
        using var response = await http.PostAsync(new Uri(est, "/.well-known/est/simpleenroll"), content).ConfigureAwait(false);
        _ = await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"enrollment failed: {(int)response.StatusCode}");
        }
    }
}
