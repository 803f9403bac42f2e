using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OfflinePki.Asn1;
using OfflinePki.FactoryCa;
using OfflinePki.Hosting.Grpc;
using OfflinePki.Hosting.Sync;
using OfflinePki.Issuance;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Keys;
using OfflinePki.Registry;
using OfflinePki.Sync;
using OfflinePki.Sync.Grpc;

namespace OfflinePki.Bench;

/// <summary>
/// Sync throughput (issue 3): N journaled certificates (issued with the dev PKI's CA key straight into a JournalWriter,
/// no EST), then one full sync to an empty mirror over real gRPC/mTLS into the SQLite registry, every check on (hash
/// chain, CA signature of every certificate, checkpoint signatures, receipt). Both sides run in this process; the peak
/// resident set during the sync (VmHWM after resetting it through /proc/self/clear_refs) covers both. The peer is the
/// crypto limit of those checks measured in the same run with <c>openssl speed -multi 2</c>.
/// </summary>
/// <remarks>Usage: <c>sync [--entries 1000000] [--dir DIR] [--writers 64] [--push 20000]</c> (--push: Sync:PushMaxEntries).</remarks>
public static partial class SyncBench
{
    /// <summary>Runs the benchmark and prints a table; returns the exit code.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        long entries = Arg(args, "--entries", 1_000_000);
        int writers = (int)Arg(args, "--writers", 64);
        int pushMaxEntries = (int)Arg(args, "--push", new SyncOptions().PushMaxEntries);
        string dir = ArgS(args, "--dir") ?? Path.Combine(Path.GetTempPath(), "offlinepki-syncbench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        Console.WriteLine($"sync bench: {entries} certificates, {writers} writers, in {dir}");

        var pkiDir = Path.Combine(dir, "pki");
        Run("bash", Path.Combine(RepoRoot(), "ops", "dev-pki.sh"), pkiDir, "--factory", "F1");
        string P(string n) => Path.Combine(pkiDir, n);

        // 1. Generate the journal.
        var configuration = new ConfigurationBuilder().AddJsonFile(P("factoryca.json")).Build();
        var fo = new FactoryCaOptions();
        configuration.GetSection(FactoryCaOptions.SectionName).Bind(fo);
        fo.ResolvePaths(pkiDir);
        var root = X509CertificateLoader.LoadCertificateFromFile(P("root-ca.crt"));
        var caCert = X509CertificateLoader.LoadCertificateFromFile(P("issuing-ca-F1.crt"));
        var authority = new IssuingAuthority(caCert, SoftwareKeyLoader.Load(P("issuing-ca-F1.key")), [root]);
        var issuer = new CertificateIssuer(authority, fo.Profile.ToProfile(), new RandomSerialNumberSource(), new NoSerials(), TimeProvider.System);
        using var signerKey = SoftwareKeyLoader.Load(P("journal-signer-F1.key"));
        var signerCert = X509CertificateLoader.LoadCertificateFromFile(P("journal-signer-F1.crt"));
        var journalOptions = new JournalWriterOptions { Directory = Path.Combine(dir, "journal"), CheckpointEveryEntries = 1000, MaxEntryBytes = 65536 };
        await using var writer = await JournalWriter.OpenOrCreateAsync(journalOptions, signerKey, signerCert,
            new GenesisParameters("F1", [caCert.RawData], new byte[32]), TimeProvider.System, NullLogger.Instance);
        using var deviceKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var spki = deviceKey.ExportSubjectPublicKeyInfo();
        var gen = Stopwatch.StartNew();
        long next = 0;
        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            long i;
            while ((i = Interlocked.Increment(ref next)) <= entries)
            {
                var issued = issuer.Issue(new IssuanceRequest($"BENCH-{i:D8}", spki));
                await writer.AppendAsync(EntryType.CertificateIssued, new CertificateIssued
                {
                    Certificate = ByteString.CopyFrom(issued.Der),
                    DeviceId = $"BENCH-{i:D8}",
                    StationId = "station-01",
                    Profile = "idevid",
                }).ConfigureAwait(false);
            }
        })));
        await writer.CheckpointAsync();
        gen.Stop();
        long journalBytes = new DirectoryInfo(journalOptions.Directory).EnumerateFiles().Sum(f => f.Length);
        Console.WriteLine($"generated {writer.Head.Seq} entries ({journalBytes / 1e6:F1} MB) in {gen.Elapsed.TotalSeconds:F1} s");

        // 2. The mirror: Kestrel mTLS gRPC, SyncApplier over an empty SQLite registry, receipts on.
        using var registry = new MirrorRegistry(Path.Combine(dir, "mirror", "registry.sqlite"), TimeProvider.System);
        var applier = new SyncApplier(registry, root)
        {
            ReceiptSigner = new MirrorReceiptSigner(X509CertificateLoader.LoadCertificateFromFile(P("mirror-receipt.crt")), SoftwareKeyLoader.Load(P("mirror-receipt.key")), TimeProvider.System),
        };
        var callers = new CallerIdentityPolicy("offlinepki.sync.v1.JournalSync", X509CertificateLoader.LoadCertificateFromFile(P("tls-ca.crt")),
            new Dictionary<string, string> { ["factory-F1-sync"] = "F1" });
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var serverCert = X509Certificate2.CreateFromPemFile(P("mirror-sync-server.crt"), P("mirror-sync-server.key"));
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseGrpcMutualTls(serverCert)));
        await using var app = builder.Build();
        app.MapJournalSync(applier, callers, new GrpcServerOptions { MaxReceiveMessageBytes = 4 << 20 });
        await app.StartAsync();
        var port = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;

        // 3. The factory's sync client, with receipts.
        var store = new MirrorReceiptStore(Path.Combine(dir, MirrorReceiptStore.FileName));
        using var grpc = new GrpcClient(new Uri($"https://localhost:{port}/"), X509Certificate2.CreateFromPemFile(P("factory-F1-sync-client.crt"), P("factory-F1-sync-client.key")),
            X509CertificateLoader.LoadCertificateFromFile(P("tls-ca.crt")));
        var client = new JournalSyncClient(grpc, writer, writer, new SyncOptions { PushTimeout = TimeSpan.FromHours(2), PushMaxEntries = pushMaxEntries })
        {
            Receipts = new MirrorReceiptBook(new MirrorReceiptVerifier(root), store, writer),
        };

        GC.Collect();
        long rssBefore = ProcStatus("VmRSS");
        ResetPeak();
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var result = await client.SyncOnceAsync();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0;
        long peak = ProcStatus("VmHWM");
        await app.StopAsync();
        if (store.ConfirmedSeq != writer.Head.Seq || result.AppliedSeq != writer.Head.Seq)
        {
            Console.Error.WriteLine($"sync incomplete: applied {result.AppliedSeq}, receipt {store.ConfirmedSeq}, head {writer.Head.Seq}");
            return 1;
        }

        // 4. The peer: openssl's ECDSA P-256 verify and SHA-256 rates on the same machine, now.
        var (verifyPerSec, sha256BytesPerSec) = OpensslLimits();
        double seconds = result.Duration.TotalSeconds;
        double entriesPerSec = result.EntriesApplied / seconds;
        // One CA-signature verify per certificate, one per checkpoint; SHA-256 over every entry (chain hash) and the
        // signed TBS of each certificate (about the journal size, counted twice).
        long verifies = entries + (long)(writer.Head.Seq - (ulong)entries);
        double limitSeconds = verifies / verifyPerSec + 2.0 * journalBytes / sha256BytesPerSec;
        double ratio = limitSeconds / seconds;

        Console.WriteLine();
        Console.WriteLine("| measure | value |");
        Console.WriteLine("|---|---|");
        Console.WriteLine(Row("entries synced", result.EntriesApplied.ToString(CultureInfo.InvariantCulture)));
        Console.WriteLine(Row("journal size", $"{journalBytes / 1e6:F1} MB"));
        Console.WriteLine(Row("full sync wall time", $"{seconds:F2} s (process CPU {cpu.TotalSeconds:F1} s)"));
        Console.WriteLine(Row("entries/s", $"{entriesPerSec:F0}"));
        Console.WriteLine(Row("MB/s", $"{journalBytes / 1e6 / seconds:F1}"));
        Console.WriteLine(Row("RSS before sync (both sides, one process)", $"{rssBefore / 1024.0:F0} MiB"));
        Console.WriteLine(Row("peak RSS during sync (VmHWM, both sides)", $"{peak / 1024.0:F0} MiB (+{(peak - rssBefore) / 1024.0:F0} MiB)"));
        Console.WriteLine(Row("peer: openssl speed -multi 2 ecdsap256 verify/s", $"{verifyPerSec:F0}"));
        Console.WriteLine(Row("peer: openssl speed -multi 2 sha256 (16 KiB blocks)", $"{sha256BytesPerSec / 1e6:F0} MB/s"));
        Console.WriteLine(Row("crypto limit for these checks", $"{limitSeconds:F2} s ({verifies} verifies + SHA-256 of 2 x journal)"));
        Console.WriteLine(Row("ratio limit / measured (target >= 0.75)", $"{ratio:F2}"));
        Console.WriteLine(Row("projected for 1,000,000 entries", $"{seconds / result.EntriesApplied * 1_000_000:F0} s (target <= 90 s)"));
        return 0;
    }

    private static string Row(string a, string b) => $"| {a} | {b} |";

    private sealed class NoSerials : IIssuedSerials
    {
        public bool Contains(byte[] serial) => false;
    }

    private static (double VerifyPerSec, double Sha256BytesPerSec) OpensslLimits()
    {
        var ec = Run("openssl", "speed", "-multi", "2", "-seconds", "3", "ecdsap256");
        var m = EcdsaLine().Match(ec);
        double verify = m.Success ? double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture) : double.NaN;
        var sha = Run("openssl", "speed", "-multi", "2", "-seconds", "3", "-bytes", "16384", "sha256");
        var s = ShaLine().Match(sha);
        double shaRate = s.Success ? double.Parse(s.Groups[1].Value, CultureInfo.InvariantCulture) * 1000 : double.NaN;
        return (verify, shaRate);
    }

    [GeneratedRegex(@"256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)")]
    private static partial Regex EcdsaLine();

    [GeneratedRegex(@"^sha256\s+([\d.]+)k", RegexOptions.Multiline)]
    private static partial Regex ShaLine();

    private static void ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (IOException)
        {
            Console.WriteLine("(cannot reset VmHWM; the peak includes generation)");
        }
        catch (UnauthorizedAccessException)
        {
            Console.WriteLine("(cannot reset VmHWM; the peak includes generation)");
        }
    }

    /// <summary>A /proc/self/status value in KiB (VmRSS, VmHWM).</summary>
    private static long ProcStatus(string key)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(key + ":", StringComparison.Ordinal))
            {
                return long.Parse(line[(key.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }

    private static string Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} exited {p.ExitCode}: {stderr.Result}");
        }

        return stdout.Result;
    }

    private static long Arg(string[] args, string name, long fallback) =>
        ArgS(args, name) is { } v ? long.Parse(v, CultureInfo.InvariantCulture) : fallback;

    private static string? ArgS(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static string RepoRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            var d = new DirectoryInfo(start);
            while (d is not null && !File.Exists(Path.Combine(d.FullName, "OfflinePki.sln")))
            {
                d = d.Parent;
            }

            if (d is not null)
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException("cannot find the repository root (OfflinePki.sln)");
    }
}
