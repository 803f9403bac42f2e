using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using OfflinePki.Asn1;
using OfflinePki.Enrollment;
using OfflinePki.Issuance;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Keys;
using OfflinePki.Policy;

namespace OfflinePki.Bench;

/// <summary>
/// Per-profile enrollment cost and the station-limits policy overhead, in process (no HTTP, a journal that only
/// counts, so the CPU work of intake + policy + prepare + lint + sign + self-verify is what is measured), on
/// --tasks concurrent tasks. Rows: idevid with the policy off (the baseline), idevid with StationLimitsPolicy on
/// (a --revoked-entries long revocation list, a rate limit that never triggers), tls-client, matter-dac; the peer is
/// `openssl speed ecdsap256` on both cores (one CSR verify and one certificate sign per enrollment).
///
///   dotnet run -c Release --project bench/OfflinePki.Bench -- profiles [--certs 4000] [--tasks 2] [--revoked-entries 1000]
/// </summary>
public static class ProfilesBench
{
    private sealed class CountingJournal : IJournalAppender
    {
        private long _seq;

        public Task<JournalEntry> AppendAsync(EntryType type, IMessage payload, CancellationToken cancellationToken = default) =>
            Task.FromResult(new JournalEntry { Seq = (ulong)Interlocked.Increment(ref _seq), Type = type });

        public Task<JournalEntry> CheckpointAsync(CancellationToken cancellationToken = default) =>
            Task.FromResult(new JournalEntry { Seq = (ulong)Interlocked.Increment(ref _seq), Type = EntryType.Checkpoint });
    }

    /// <summary>The <c>profiles [--certs 4000] [--tasks 2] [--revoked-entries 1000] [--rounds 3]</c> verb.</summary>
    public static Command Command()
    {
        var certs = BenchCli.Int("--certs", 4000, "Enrollments per row and round");
        var tasks = BenchCli.Int("--tasks", 2, "Concurrent enrollments");
        var revokedEntries = BenchCli.Int("--revoked-entries", 1000, "Entries in the station revocation list", min: 0);
        var rounds = BenchCli.Int("--rounds", 3, "Measured rounds after one warm-up round (the median is reported)");
        return BenchCli.Verb("profiles", "Per-profile enrollment and StationLimitsPolicy overhead vs policy off and openssl speed", [certs, tasks, revokedEntries, rounds],
            p => RunAsync(p.GetValue(certs), p.GetValue(tasks), p.GetValue(revokedEntries), p.GetValue(rounds)));
    }

    /// <summary>Runs the benchmark; returns 0.</summary>
    public static async Task<int> RunAsync(int n, int tasks, int revokedEntries, int rounds)
    {
        string pki = BenchSupport.CreatePki();
        var caCert = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(pki, "issuing-ca-F1.crt"));
        var authority = new IssuingAuthority(caCert, SoftwareKeyLoader.Load(Path.Combine(pki, "issuing-ca-F1.key")),
            [X509CertificateLoader.LoadCertificateFromFile(Path.Combine(pki, "root-ca.crt"))]);
        CertificateProfile Make(string name, CertificateProfileKind kind, TimeSpan? validity) => new CertificateProfile(name, "Bench Device", "Bench OEM", validity,
            new Uri("http://mirror/crl/F1.crl"), new Uri("http://mirror/ocsp"), new Uri("http://mirror/ca/F1.crt"), null, "^[A-Za-z0-9-]{4,64}$")
        {
            Kind = kind,
            MatterVendorId = kind == CertificateProfileKind.MatterDac ? (ushort)0xFFF1 : null,
            MatterProductId = kind == CertificateProfileKind.MatterDac ? (ushort)0x8000 : null,
        };
        var profiles = new CertificateProfileSet([Make("idevid", CertificateProfileKind.IDevId, null),
            Make("tls", CertificateProfileKind.TlsClient, TimeSpan.FromDays(825)), Make("matter", CertificateProfileKind.MatterDac, null)]);
        var issuer = new CertificateIssuer(authority, profiles, new RandomSerialNumberSource(), new InMemoryIssuedSerials(), TimeProvider.System);

        string data = Path.Combine(Path.GetTempPath(), "offlinepki-bench-profiles-" + Guid.NewGuid().ToString("N")[..8]);
        var revoked = new RevokedStationStore(data, TimeProvider.System);
        for (int i = 0; i < revokedEntries; i++)
        {
            revoked.Revoke(Convert.ToHexStringLower(SHA256.HashData(BitConverter.GetBytes(i))), "bench");
        }

        var station = new StationIdentity("station-01", "station-01", new string('a', 64)) { RateLimitPerMinute = 100_000_000 };
        var bodies = new byte[n][];
        for (int i = 0; i < n; i++)
        {
            using var k = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            bodies[i] = System.Text.Encoding.ASCII.GetBytes(Convert.ToBase64String(
                new CertificateRequest($"CN=x, SERIALNUMBER=BENCH-{i:D7}", k, HashAlgorithmName.SHA256).CreateSigningRequest()));
        }

        async Task<double> Rate(string? profile, bool policy)
        {
            using var limits = new StationLimitsPolicy(revoked, TimeProvider.System);
            var service = new EnrollmentService(issuer, new CountingJournal(), NullLogger<EnrollmentService>.Instance,
                policies: policy ? [limits] : null);
            int next = -1;
            var sw = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, tasks).Select(_ => Task.Run(async () =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < n)
                {
                    await service.EnrollAsync(new EnrollmentRequest(station, bodies[i]) { ProfileName = profile }, CancellationToken.None);
                }
            })));
            return n / sw.Elapsed.TotalSeconds;
        }

        // Rows interleaved over --rounds rounds (after one warm-up round), the median of each row reported, so that JIT
        // warm-up and machine noise hit every row alike.
        var rows = new (string Profile, bool Policy)[] { ("idevid", false), ("idevid", true), ("tls", false), ("matter", false) };
        var samples = rows.Select(_ => new List<double>()).ToArray();
        for (int round = -1; round < rounds; round++)
        {
            for (int r = 0; r < rows.Length; r++)
            {
                double rate = await Rate(rows[r].Profile, rows[r].Policy);
                if (round >= 0)
                {
                    samples[r].Add(rate);
                }
            }
        }

        double Median(List<double> xs) => xs.Order().ElementAt(xs.Count / 2);
        double baseline = Median(samples[0]), withPolicy = Median(samples[1]), tls = Median(samples[2]), matter = Median(samples[3]);
        var (sign, verify) = BenchSupport.OpenSslEcdsaP256(2);
        double peer = 1 / ((1 / sign) + (1 / verify));
        Directory.Delete(data, recursive: true);

        Console.WriteLine($"profiles: {n} enrollments per row, median of {rounds} interleaved rounds, {tasks} tasks, in process (no HTTP, no fsync), revocation list {revokedEntries} entries");
        Console.WriteLine("| row | enrollments/s | vs idevid, policy off | vs openssl sign+verify (2 cores) |");
        Console.WriteLine("|---|---|---|---|");
        void Row(string name, double r) => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {name} | {r:F0} | {r / baseline:P1} | {r / peer:P1} |"));
        Row("idevid, policy off", baseline);
        Row("idevid, StationLimitsPolicy on", withPolicy);
        Row("tls-client, policy off", tls);
        Row("matter-dac, policy off", matter);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| peer: openssl speed ecdsap256 -multi 2 (1 sign + 1 verify) | {peer:F0} | | 100% |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"policy overhead: {(1 - (withPolicy / baseline)):P1} of throughput (issue 6 budget: at most 10%)"));
        return 0;
    }
}
