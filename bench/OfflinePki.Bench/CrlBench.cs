using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Data.Sqlite;
using OfflinePki.Asn1;
using OfflinePki.Crl;
using OfflinePki.Keys;
using OfflinePki.Registry;
using OfflinePki.Revocation;

namespace OfflinePki.Bench;

/// <summary>
/// CRL generation at N revoked entries: our streaming builder (from the SQLite registry, and from memory), against
/// <c>openssl ca -gencrl</c> over an index.txt holding the same serials and times, and against .NET's
/// <see cref="CertificateRevocationListBuilder"/> up to the size it manages within the time limit.
/// <code>dotnet run -c Release --project bench/OfflinePki.Bench -- crl --sizes 10000,100000,1000000 [--dotnet-limit 60] [--work DIR]</code>
/// </summary>
public static class CrlBench
{
    /// <summary>The <c>crl [--sizes 10000,100000,1000000] [--dotnet-limit 60] [--work DIR]</c> verb.</summary>
    public static Command Command()
    {
        var sizes = BenchCli.IntList("--sizes", [10_000, 100_000, 1_000_000], "Revoked entries per CRL");
        var dotnetLimit = BenchCli.Positive("--dotnet-limit", 60, "Seconds .NET's CertificateRevocationListBuilder may take before larger sizes are skipped");
        var work = BenchCli.Text("--work", "Work directory (default: a new temp directory)");
        return BenchCli.Verb("crl", "CRL build vs openssl ca -gencrl and .NET CertificateRevocationListBuilder", [sizes, dotnetLimit, work],
            p => RunAsync(p.GetValue(sizes)!, p.GetValue(dotnetLimit), p.GetValue(work)));
    }

    /// <summary>Runs the benchmark; returns the process exit code.</summary>
    public static async Task<int> RunAsync(IReadOnlyList<int> sizes, double dotnetLimit, string? work)
    {
        ArgumentNullException.ThrowIfNull(sizes);
        work ??= Path.Combine(Path.GetTempPath(), "offlinepki-crlbench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(work);
        Console.WriteLine($"CRL generation benchmark; work directory {work}; {Environment.ProcessorCount} cores");

        // One P-256 issuing CA for everyone (our builder, openssl and .NET sign with the same key).
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest("CN=CrlBench Issuing CA, O=OfflinePki bench", caKey, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        using var ca = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(5));
        var caCertPath = Path.Combine(work, "issuing.crt");
        var caKeyPath = Path.Combine(work, "issuing.key");
        await File.WriteAllTextAsync(caCertPath, ca.ExportCertificatePem()).ConfigureAwait(false);
        await File.WriteAllTextAsync(caKeyPath, caKey.ExportPkcs8PrivateKeyPem()).ConfigureAwait(false);
        var signer = new AsymmetricSigningKey(ECDsa.Create(caKey.ExportParameters(true)));
        var issuer = CrlIssuer.FromCertificate(ca);
        var builder = new CrlBuilder();

        // Warm up (JIT tiering) on a small registry so the first measured size is not charged for compilation.
        {
            var warm = MakeEntries(5000);
            var warmPath = Path.Combine(work, "warmup.sqlite");
            using (var warmRegistry = new MirrorRegistry(warmPath, TimeProvider.System))
            {
                Fill(warmPath, issuer.IssuerKeyHash, warm);
                for (int i = 0; i < 3; i++)
                {
                    builder.Build(issuer, signer, 1, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddDays(1), warmRegistry.EnumerateRevoked(issuer.IssuerKeyHash));
                    builder.Build(issuer, signer, 1, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddDays(1), warm);
                }
            }

            SqliteConnection.ClearAllPools();
            File.Delete(warmPath);
        }

        var rows = new List<string[]>();
        double? lastDotnetSeconds = null;
        int lastDotnetSize = 0;
        foreach (int n in sizes)
        {
            Console.WriteLine($"-- {n:N0} entries: preparing");
            var entries = MakeEntries(n);

            // Ours, realistic: stream from the registry (SQLite, ordered by serial), lint, sign.
            var registryPath = Path.Combine(work, $"registry-{n}.sqlite");
            using var registry = new MirrorRegistry(registryPath, TimeProvider.System);
            Fill(registryPath, issuer.IssuerKeyHash, entries);
            var now = DateTimeOffset.UtcNow;
            var sw = Stopwatch.StartNew();
            var fromRegistry = builder.Build(issuer, signer, 1, now, now.AddDays(7), registry.EnumerateRevoked(issuer.IssuerKeyHash));
            double oursRegistry = sw.Elapsed.TotalSeconds;
            if (fromRegistry.EntryCount != n)
            {
                throw new InvalidOperationException($"registry streamed {fromRegistry.EntryCount} entries, expected {n}");
            }

            // Ours, builder only: entries already in memory.
            sw.Restart();
            var fromMemory = builder.Build(issuer, signer, 2, now, now.AddDays(7), entries);
            double oursBuilder = sw.Elapsed.TotalSeconds;

            // Where the builder's time goes: encode, lint, sign.
            sw.Restart();
            var tbs = CrlBuilder.PrepareTbs(issuer, signer.SignatureAlgorithmIdentifier, 4, now, now.AddDays(7), entries, out _);
            double tPrepare = sw.Elapsed.TotalSeconds;
            sw.Restart();
            CrlLints.Enforce(CrlLints.All, TbsCertListView.Parse(tbs), fullCrl: true);
            double tLint = sw.Elapsed.TotalSeconds;
            sw.Restart();
            signer.Sign(tbs);
            double tSign = sw.Elapsed.TotalSeconds;
            sw.Restart();
            long streamed = registry.EnumerateRevoked(issuer.IssuerKeyHash).LongCount();
            double tStream = sw.Elapsed.TotalSeconds;
            Console.WriteLine($"   breakdown: registry stream {F(tStream)} s ({streamed:N0}), encode {F(tPrepare)} s, lint {F(tLint)} s, sign {F(tSign)} s");

            // openssl ca -gencrl on the same serials/times.
            var (opensslSeconds, opensslBytes) = await OpensslGenCrl(work, n, entries, caCertPath, caKeyPath).ConfigureAwait(false);

            // .NET CertificateRevocationListBuilder, while a quadratic extrapolation stays under the limit.
            string dotnetSeconds = "skipped (quadratic; >60 s)".Replace("60", dotnetLimit.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);
            string dotnetBytes = "-";
            string dotnetRatio = "-";
            double predicted = lastDotnetSeconds is { } t ? t * Math.Pow((double)n / lastDotnetSize, 2) : 0;
            if (predicted <= dotnetLimit)
            {
                var crlb = new CertificateRevocationListBuilder();
                foreach (var e in entries)
                {
                    crlb.AddEntry(e.Serial, e.RevocationTime, e.Reason == CrlReason.Unspecified ? null : (X509RevocationReason)(int)e.Reason);
                }

                sw.Restart();
                var der = crlb.Build(ca, 3, now.AddDays(7), HashAlgorithmName.SHA256, thisUpdate: now);
                double s = sw.Elapsed.TotalSeconds;
                lastDotnetSeconds = s;
                lastDotnetSize = n;
                dotnetSeconds = F(s);
                dotnetBytes = der.Length.ToString("N0", CultureInfo.InvariantCulture);
                dotnetRatio = (s / oursBuilder).ToString("F1", CultureInfo.InvariantCulture) + "x";
            }

            rows.Add([
                n.ToString("N0", CultureInfo.InvariantCulture),
                F(oursRegistry), F(oursBuilder), fromRegistry.Der.Length.ToString("N0", CultureInfo.InvariantCulture),
                ((double)fromRegistry.Der.Length / n).ToString("F1", CultureInfo.InvariantCulture),
                F(opensslSeconds), opensslBytes.ToString("N0", CultureInfo.InvariantCulture),
                dotnetSeconds, dotnetBytes,
                (opensslSeconds / oursRegistry).ToString("F1", CultureInfo.InvariantCulture) + "x",
                dotnetRatio,
                oursRegistry <= 5 || n < 1_000_000 ? "ok" : "MISSED (>5 s)",
            ]);
            _ = fromMemory;
            registry.Dispose();
            File.Delete(registryPath);
        }

        string[] header = ["entries", "ours (registry) s", "ours (builder) s", "ours bytes", "B/entry", "openssl s", "openssl bytes", ".NET s", ".NET bytes",
            "openssl/ours", ".NET/ours(builder)", "1M≤5s"];
        Console.WriteLine();
        PrintTable(header, rows);
        Console.WriteLine();
        Console.WriteLine("ours (registry): SQLite streaming enumeration + AsnWriter TBSCertList + lints + ECDSA P-256 signature; ours (builder): same from memory.");
        Console.WriteLine("openssl: `openssl ca -gencrl` over an index.txt with the same serials, revocation times and reasons (process wall time).");
        Console.WriteLine(".NET: System.Security.Cryptography.X509Certificates.CertificateRevocationListBuilder.Build (AddEntry not timed).");
        return 0;
    }

    private static string F(double seconds) => seconds.ToString("F3", CultureInfo.InvariantCulture);

    private static List<RevokedEntry> MakeEntries(int n)
    {
        var rng = new Random(4242 + n);
        var list = new List<RevokedEntry>(n);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var baseTime = DerTime.Truncate(DateTimeOffset.UtcNow.AddDays(-30));
        var buffer = new byte[16];
        while (list.Count < n)
        {
            rng.NextBytes(buffer);
            buffer[0] = (byte)((buffer[0] & 0x7F) | 0x01);
            var serial = SerialNumber.Normalize(buffer);
            if (!seen.Add(Convert.ToHexString(serial)))
            {
                continue;
            }

            var reason = (list.Count % 4) switch { 0 => CrlReason.KeyCompromise, 1 => CrlReason.Superseded, 2 => CrlReason.CessationOfOperation, _ => CrlReason.Unspecified };
            list.Add(new RevokedEntry(serial, baseTime.AddSeconds(list.Count), reason, null));
        }

        list.Sort((a, b) => a.Serial.AsSpan().SequenceCompareTo(b.Serial));
        return list;
    }

    private static void Fill(string path, byte[] issuerKeyHash, List<RevokedEntry> entries)
    {
        using var c = new SqliteConnection($"Data Source={path};Pooling=False");
        c.Open();
        using var tx = c.BeginTransaction();
        using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "INSERT INTO revocations(issuer_key_hash, serial, reason, revoked_at, invalidity_date, actor) VALUES ($i, $s, $r, $t, NULL, 'bench')";
        var pi = cmd.Parameters.AddWithValue("$i", issuerKeyHash);
        var ps = cmd.Parameters.AddWithValue("$s", Array.Empty<byte>());
        var pr = cmd.Parameters.AddWithValue("$r", 0L);
        var pt = cmd.Parameters.AddWithValue("$t", 0L);
        cmd.Prepare();
        foreach (var e in entries)
        {
            ps.Value = e.Serial;
            pr.Value = (long)e.Reason;
            pt.Value = e.RevocationTime.ToUnixTimeSeconds();
            cmd.ExecuteNonQuery();
        }

        _ = pi;
        tx.Commit();
    }

    private static async Task<(double Seconds, long DerBytes)> OpensslGenCrl(string work, int n, List<RevokedEntry> entries, string caCert, string caKey)
    {
        var dir = Path.Combine(work, "openssl-" + n.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(dir);
        var index = new StringBuilder(n * 80);
        var expiry = DateTimeOffset.UtcNow.AddYears(5).ToString("yyMMddHHmmss", CultureInfo.InvariantCulture) + "Z";
        int i = 0;
        foreach (var e in entries)
        {
            var when = e.RevocationTime.ToString("yyMMddHHmmss", CultureInfo.InvariantCulture) + "Z";
            var reason = e.Reason switch
            {
                CrlReason.KeyCompromise => ",keyCompromise",
                CrlReason.Superseded => ",superseded",
                CrlReason.CessationOfOperation => ",cessationOfOperation",
                _ => string.Empty,
            };
            index.Append("R\t").Append(expiry).Append('\t').Append(when).Append(reason).Append('\t')
                .Append(SerialNumber.ToHex(e.Serial)).Append("\tunknown\t/CN=d").Append(i++).Append('\n');
        }

        await File.WriteAllTextAsync(Path.Combine(dir, "index.txt"), index.ToString()).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(dir, "index.txt.attr"), "unique_subject = no\n").ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(dir, "crlnumber"), "01\n").ConfigureAwait(false);
        var config = Path.Combine(dir, "ca.cnf");
        await File.WriteAllTextAsync(config, $"""
            [ ca ]
            default_ca = CA_default
            [ CA_default ]
            dir = {dir}
            database = $dir/index.txt
            crlnumber = $dir/crlnumber
            unique_subject = no
            default_md = sha256
            default_crl_days = 7
            crl_extensions = crl_ext
            [ crl_ext ]
            authorityKeyIdentifier = keyid:always
            """).ConfigureAwait(false);
        var output = Path.Combine(dir, "crl.pem");
        var psi = new ProcessStartInfo("openssl") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "ca", "-gencrl", "-config", config, "-keyfile", caKey, "-cert", caCert, "-out", output })
        {
            psi.ArgumentList.Add(a);
        }

        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        await p.StandardOutput.ReadToEndAsync().ConfigureAwait(false);
        await p.WaitForExitAsync().ConfigureAwait(false);
        double seconds = sw.Elapsed.TotalSeconds;
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException("openssl ca -gencrl failed: " + await stderr.ConfigureAwait(false));
        }

        var pem = await File.ReadAllTextAsync(output).ConfigureAwait(false);
        var der = PemEncoding.Find(pem) is var f ? Convert.FromBase64String(pem[f.Base64Data]) : [];
        return (seconds, der.Length);
    }

    private static void PrintTable(string[] header, List<string[]> rows)
    {
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        Console.WriteLine(string.Join(" | ", header.Select((h, i) => h.PadLeft(widths[i]))));
        Console.WriteLine(string.Join("-+-", widths.Select(w => new string('-', w))));
        foreach (var r in rows)
        {
            Console.WriteLine(string.Join(" | ", r.Select((c, i) => c.PadLeft(widths[i]))));
        }
    }
}
