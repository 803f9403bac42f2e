using System.CommandLine;
using System.Diagnostics;
using System.Security.Cryptography;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OfflinePki.Enrollment;
using OfflinePki.FactoryCa;
using OfflinePki.Issuance;
using OfflinePki.Journal.V1;
using OfflinePki.Policy;
using OfflinePki.Sync;

namespace OfflinePki.Bench;

/// <summary>
/// The device rules' cost (issue 6, "Speed": policy ≤ 10 % of throughput): DevicePolicy Admit + Annotate + Commit
/// plus the check-digit rule per enrollment, with D devices already known, on 2 threads; against the issuance step it
/// guards (prepare, lint, sign with the issuing CA key) measured in the same run on 2 threads. Also the memory per device.
///
/// Startup: the policy rebuilt from a journal of R certificates, against FactoryIndex.Rebuild over the same journal.
///
///   dotnet run -c Release --project bench/OfflinePki.Bench -- devicepolicy [--devices 1000000] [--ops 200000] [--issues 4000] [--replay 100000]
/// </summary>
public static class DevicePolicyBench
{
    /// <summary>The <c>devicepolicy [--devices 1000000] [--ops 200000] [--issues 4000] [--replay 100000]</c> verb.</summary>
    public static Command Command()
    {
        var devices = BenchCli.Int("--devices", 1_000_000, "Devices in the policy state");
        var ops = BenchCli.Int("--ops", 200_000, "Policy checks measured");
        var issues = BenchCli.Int("--issues", 4000, "Issue steps measured for comparison");
        var replay = BenchCli.Int("--replay", 100_000, "Journal entries replayed for the rebuild");
        return BenchCli.Verb("devicepolicy", "Device rules per enrollment vs the issue step; rebuild vs index rebuild", [devices, ops, issues, replay],
            p => RunAsync(p.GetValue(devices), p.GetValue(ops), p.GetValue(issues), p.GetValue(replay)));
    }

    /// <summary>Runs the benchmark; returns 0.</summary>
    public static async Task<int> RunAsync(int devices, int ops, int issues, int replay)
    {
        string pki = BenchSupport.CreatePki();
        await using var app = FactoryCaApp.Build(Path.Combine(pki, "factoryca.json"),
            s => { s.AddLogging(l => l.SetMinimumLevel(LogLevel.Warning)); s.PostConfigure<SyncOptions>(o => o.Enabled = false); },
            o => o.Est.Listen = "https://127.0.0.1:0");
        var issuer = app.Services.GetRequiredService<ICertificateIssuer>();
        using var deviceKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        byte[] spki = deviceKey.ExportSubjectPublicKeyInfo();
        byte[] der = issuer.Issue(new IssuanceRequest("BENCH", spki)).Der;
        var station = new StationIdentity("station-01", "station-01", "00");
        var checkDigits = new DeviceIdCheckDigitPolicy(new Dictionary<string, DeviceIdCheckDigit> { ["idevid"] = DeviceIdCheckDigit.Iso7064Mod37_36 });
        var policy = new DevicePolicy(new DevicePolicyOptions());
        var now = DateTimeOffset.UtcNow;

        string Id(int i) => DeviceIdFormat.Append(DeviceIdCheckDigit.Iso7064Mod37_36, "D" + i.ToString("D9", System.Globalization.CultureInfo.InvariantCulture));
        void Enroll(int i)
        {
            var hash = new byte[32];
            BitConverter.TryWriteBytes(hash, i);
            BitConverter.TryWriteBytes(hash.AsSpan(8), ~i);
            var context = new EnrollmentContext(new EnrollmentRequest(station, ReadOnlyMemory<byte>.Empty), Id(i), "idevid", spki, hash, now);
            checkDigits.Admit(context);
            using var admission = policy.Admit(context);
            var payload = new CertificateIssued { Certificate = ByteString.CopyFrom(der), DeviceId = context.DeviceId };
            admission.Annotate(payload);
            admission.Commit(payload, 1);
        }

        Console.Write($"loading {devices} devices ... ");
        long before = GC.GetTotalMemory(forceFullCollection: true);
        for (int i = 0; i < devices; i++)
        {
            Enroll(i);
        }

        long bytesPerDevice = (GC.GetTotalMemory(forceFullCollection: true) - before) / Math.Max(1, devices);
        Console.WriteLine("done");

        double policyRate = Rate(ops, i => Enroll(devices + i));
        double issueRate = Rate(issues, i => issuer.Issue(new IssuanceRequest("BENCH", spki)));
        double share = issueRate / policyRate; // policy time per enrollment over issue time per enrollment

        // Startup: rebuild from a journal of `replay` certificates, against the factory index rebuilt from the same journal.
        Console.Write($"journaling {replay} certificates ... ");
        var journal = app.Services.GetRequiredService<OfflinePki.Journal.JournalWriter>();
        int nextEntry = -1;
        await Task.WhenAll(Enumerable.Range(0, 64).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref nextEntry)) < replay)
            {
                var hash = new byte[32];
                BitConverter.TryWriteBytes(hash, i);
                await journal.AppendAsync(EntryType.CertificateIssued, new CertificateIssued
                {
                    Certificate = ByteString.CopyFrom(der), DeviceId = Id(i), PublicKeySha256 = ByteString.CopyFrom(hash), Profile = "idevid",
                });
            }
        })));
        Console.WriteLine("done");
        var sw = Stopwatch.StartNew();
        var rebuilt = DevicePolicy.Rebuild(journal, new DevicePolicyOptions());
        double replayRate = replay / sw.Elapsed.TotalSeconds;
        string indexPath = Path.Combine(pki, "bench-index.db");
        sw.Restart();
        using (OfflinePki.Journal.Index.FactoryIndex.Rebuild(indexPath, journal))
        {
        }

        double indexRate = replay / sw.Elapsed.TotalSeconds;

        Console.WriteLine();
        Console.WriteLine("| measure | value |");
        Console.WriteLine("|---|---|");
        Console.WriteLine($"| check digit + DevicePolicy admit/annotate/commit, {devices} devices known, 2 threads | {policyRate:F0} enrollments/s ({1e6 / policyRate:F2} µs each) |");
        Console.WriteLine($"| peer in the same run: issue (prepare, lint, sign), 2 threads | {issueRate:F0} certificates/s |");
        Console.WriteLine($"| policy cost / issue cost | {share:P2} (budget 10 %, and issuance also verifies the CSR and fsyncs) |");
        Console.WriteLine($"| memory per known device | about {bytesPerDevice} bytes |");
        Console.WriteLine($"| startup rebuild of DevicePolicy from the journal ({rebuilt.DeviceCount} devices) | {replayRate:F0} entries/s |");
        Console.WriteLine($"| peer in the same run: FactoryIndex.Rebuild from the same journal | {indexRate:F0} entries/s |");
        Console.WriteLine($"| ratio DevicePolicy rebuild / index rebuild | {replayRate / indexRate:F2}x |");
        return 0;
    }

    private static double Rate(int n, Action<int> work)
    {
        int next = -1;
        var sw = Stopwatch.StartNew();
        var threads = Enumerable.Range(0, 2).Select(_ => new Thread(() =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < n)
            {
                work(i);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        return n / sw.Elapsed.TotalSeconds;
    }
}
