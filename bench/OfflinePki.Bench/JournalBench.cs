using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Keys;

namespace OfflinePki.Bench;

/// <summary>
/// <c>journal</c>: durable journal appends/s with group commit at 1, 8 and 64 concurrent writers, against the raw
/// fsync rate of the same disk measured in the same run (a loop of a 200-byte write + fsync).
/// Target (issue 3): at 64 writers, appends/s ≥ 20 × the raw fsync rate.
/// Options: <c>--seconds 5</c> (per measurement), <c>--writers 1,8,64</c>, <c>--dir PATH</c> (on the disk to measure;
/// default a temp dir), <c>--payload 600</c> (bytes of the certificate-sized payload).
/// </summary>
public static class JournalBench
{
    /// <summary>The <c>journal [--seconds 5] [--writers 1,8,64] [--payload 600] [--dir PATH]</c> verb.</summary>
    public static Command Command()
    {
        var seconds = BenchCli.Positive("--seconds", 5, "Seconds per measurement");
        var writers = BenchCli.IntList("--writers", [1, 8, 64], "Concurrent writers per measurement");
        var payload = BenchCli.Int("--payload", 600, "Bytes of the certificate-sized payload");
        var dir = BenchCli.Text("--dir", "Directory on the disk to measure (default: a temp directory)");
        return BenchCli.Verb("journal", "Durable journal appends/s at 1, 8, 64 writers vs raw write+fsync", [seconds, writers, payload, dir],
            p => RunAsync(p.GetValue(seconds), p.GetValue(writers)!, p.GetValue(payload), p.GetValue(dir)));
    }

    /// <summary>Runs the benchmark; returns 0, or 1 when the 64-writer target is missed.</summary>
    public static async Task<int> RunAsync(double seconds, int[] writers, int payloadBytes, string? dir)
    {
        ArgumentNullException.ThrowIfNull(writers);
        string root = Path.Combine(dir ?? Path.Combine(Path.GetTempPath(), "offlinepki-bench"), "journal-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
        var duration = TimeSpan.FromSeconds(seconds);
        try
        {
            Console.WriteLine($"journal bench: {root}, {seconds:F1} s per measurement, {payloadBytes}-byte payloads, {Environment.ProcessorCount} cores");
            double fsyncRate = RawFsyncRate(Path.Combine(root, "raw.bin"), duration);
            var rows = new List<(int Writers, long Appends, double Rate, long Fsyncs, TimeSpan FsyncTime)>();
            foreach (int w in writers)
            {
                var (appends, rate, fsyncs, fsyncTime) = await AppendRate(Path.Combine(root, "w" + w.ToString(CultureInfo.InvariantCulture)), w, payloadBytes, duration).ConfigureAwait(false);
                rows.Add((w, appends, rate, fsyncs, fsyncTime));
            }

            Console.WriteLine();
            Console.WriteLine($"{"measurement",-34} {"ops",10} {"ops/s",12} {"× raw fsync",12} {"fsyncs/s",10} {"per fsync",10} {"µs/fsync",9}");
            Console.WriteLine(new string('-', 103));
            Console.WriteLine($"{"raw write(200 B)+fsync loop (peer)",-34} {"",10} {fsyncRate,12:F0} {1.0,12:F2} {"",10} {"",10} {1e6 / fsyncRate,9:F0}");
            foreach (var r in rows)
            {
                Console.WriteLine($"{$"journal appends, {r.Writers} writers",-34} {r.Appends,10} {r.Rate,12:F0} {r.Rate / fsyncRate,12:F2} {r.Fsyncs * r.Rate / r.Appends,10:F0} {(double)r.Appends / r.Fsyncs,10:F1} {r.FsyncTime.TotalMicroseconds / r.Fsyncs,9:F0}");
            }

            var top = rows.FirstOrDefault(r => r.Writers == 64);
            if (top.Writers == 64)
            {
                double ratio = top.Rate / fsyncRate;
                Console.WriteLine($"target at 64 writers: ≥ 20.00 × raw fsync; measured {ratio:F2} × → {(ratio >= 20 ? "MET" : "MISSED")}");
                return ratio >= 20 ? 0 : 1;
            }

            return 0;
        }
        finally
        {
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static double RawFsyncRate(string path, TimeSpan duration)
    {
        var record = new byte[200];
        RandomNumberGenerator.Fill(record);
        using SafeFileHandle h = File.OpenHandle(path, FileMode.Create, FileAccess.Write, FileShare.Read);
        long offset = 0, n = 0;
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < duration)
        {
            RandomAccess.Write(h, record, offset);
            offset += record.Length;
            RandomAccess.FlushToDisk(h);
            n++;
        }

        return n / sw.Elapsed.TotalSeconds;
    }

    private static async Task<(long Appends, double Rate, long Fsyncs, TimeSpan FsyncTime)> AppendRate(string dir, int writers, int payloadBytes, TimeSpan duration)
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest("CN=bench journal signer", ec, HashAlgorithmName.SHA256);
        var now = DateTimeOffset.UtcNow;
        using var cert = req.CreateSelfSigned(now.AddDays(-1), now.AddDays(1));
        using var key = new AsymmetricSigningKey(ec);
        var options = new JournalWriterOptions { Directory = dir, CheckpointEveryEntries = 1000, CheckpointInterval = TimeSpan.FromMinutes(5) };
        await using var writer = await JournalWriter.OpenOrCreateAsync(options, key, cert,
            new GenesisParameters("BENCH", [cert.RawData], new byte[32]), TimeProvider.System, NullLogger.Instance).ConfigureAwait(false);
        var payload = new CertificateIssued
        {
            Certificate = ByteString.CopyFrom(RandomNumberGenerator.GetBytes(payloadBytes)),
            DeviceId = "BENCH-DEVICE",
            StationId = "station-bench",
            BatchId = "B",
            CsrSha256 = ByteString.CopyFrom(new byte[32]),
            Profile = "idevid",
        };
        long count = 0;
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, writers).Select(_ => Task.Run(async () =>
        {
            while (sw.Elapsed < duration)
            {
                await writer.AppendAsync(EntryType.CertificateIssued, payload).ConfigureAwait(false);
                Interlocked.Increment(ref count);
            }
        })).ToArray();
        await Task.WhenAll(tasks).ConfigureAwait(false);
        sw.Stop();
        Console.WriteLine($"  {writers} writers: {(Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMicroseconds / count:F1} µs of process CPU per append");
        return (count, count / sw.Elapsed.TotalSeconds, writer.Fsyncs, writer.FsyncTime);
    }
}
