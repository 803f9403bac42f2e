using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OfflinePki.Asn1;
using OfflinePki.Keys;
using OfflinePki.MirrorCa;
using OfflinePki.Ocsp;
using OfflinePki.Registry;
using OfflinePki.Revocation;

namespace OfflinePki.Bench;

/// <summary>
/// OCSP throughput and latency (issue 4): the MirrorCa daemon's OCSP endpoint (its own process) with a registry of <c>--certs</c> certificates,
/// against <c>openssl ocsp -multi 2</c> serving the same certificates from an index file, and a bare Kestrel endpoint
/// returning a fixed 811-byte body (the HTTP ceiling, <see cref="BareHttpBench"/> in its own process), each loaded by wrk on loopback with POSTs of pre-made DER
/// requests for random known serials, at 1, 8 and 32 connections.
/// Usage: <c>bench ocsp [--certs 10000] [--duration 10] [--connections 1,8,32] [--requests 2000] [--keep]</c>.
/// Registry rows are inserted directly through <see cref="IJournalSink"/> in one transaction; their DER column holds a
/// 2-octet placeholder (OCSP reads only issuer, serial and revocation), so 1M rows load in seconds.
/// </summary>
public static class OcspBench
{
    private sealed record Row(string Peer, int Connections, double RequestsPerSecond, double P50Ms, double P99Ms, long Errors);

    /// <summary>The <c>ocsp [--certs N] [--duration SECONDS] [--connections 1,8,32] [--requests N] [--gen0 0x10000000|default] [--keep]</c> verb.</summary>
    public static Command Command()
    {
        var certs = BenchCli.Int("--certs", 10_000, "Certificates in the registry and the openssl index");
        var duration = BenchCli.Int("--duration", 10, "Seconds of wrk load per peer and connection count");
        var connections = BenchCli.IntList("--connections", [1, 8, 32], "wrk connection counts");
        var requests = BenchCli.Int("--requests", 2_000, "Pre-made DER requests for random known serials");
        var gen0 = BenchCli.Text("--gen0", "GCgen0size for the daemon and bare Kestrel processes, or 'default'", DeploymentGen0Size);
        var keep = BenchCli.Flag("--keep", "Keep the work directory");
        return BenchCli.Verb("ocsp", "OCSP req/s and p50/p99 latency vs openssl ocsp -multi 2 and bare Kestrel, loaded by wrk", [certs, duration, connections, requests, gen0, keep],
            p => RunAsync(p.GetValue(certs), p.GetValue(duration), p.GetValue(connections)!, p.GetValue(requests), p.GetValue(gen0)!, p.GetValue(keep)));
    }

    /// <summary>Runs the benchmark; returns the process exit code (0 ok, 1 setup failure).</summary>
    public static async Task<int> RunAsync(int certs, int duration, int[] connections, int sample, string gen0, bool keep)
    {
        ArgumentNullException.ThrowIfNull(connections);
        ArgumentNullException.ThrowIfNull(gen0);

        var dir = Directory.CreateTempSubdirectory("ocsp-bench-").FullName;
        Console.WriteLine($"OCSP bench: {certs:N0} certificates, {duration} s per run, connections {string.Join(",", connections)}, work dir {dir}");
        var processes = new List<Process>();
        try
        {
            var pki = MakePki(dir);
            var serials = await Task.Run(() => FillRegistry(dir, pki, certs));
            var lua = WriteLuaScript(dir, pki, serials, sample);

            // Peer (a): openssl ocsp from an index file.
            int opensslPort = FreePort();
            WriteIndex(dir, serials);
            // openssl's -multi children stay blocked on connections wrk leaves half-open at the end of a run, so each run
            // gets a fresh server (-timeout bounds the wait for a request).
            Process StartOpenssl() => StartProcess("openssl", ["ocsp", "-index", Path.Combine(dir, "index.txt"), "-port", opensslPort.ToString(CultureInfo.InvariantCulture),
                "-rsigner", Path.Combine(dir, "ocsp.crt"), "-rkey", Path.Combine(dir, "ocsp.key"), "-CA", Path.Combine(dir, "issuing.crt"), "-multi", "2", "-nmin", "60", "-timeout", "5"]);

            // Peer (b): bare Kestrel with a fixed 811-byte body, in its own process (BareHttpBench) with the daemons' GC
            // settings, so that neither peer's garbage collections pause the other.
            int barePort = FreePort();
            var bare = StartProcess("dotnet", [typeof(OcspBench).Assembly.Location, "barehttp", "--port", barePort.ToString(CultureInfo.InvariantCulture), "--bytes", "811"], gen0);
            processes.Add(bare);

            // The mirror: the real MirrorCa daemon (`MirrorCa serve`, its own runtimeconfig: server GC) on this registry.
            int mirrorPort = FreePort();
            var sw = Stopwatch.StartNew();
            var mirror = StartMirror(WriteMirrorConfig(dir, mirrorPort), certs, gen0);
            Console.WriteLine($"both .NET servers run with DOTNET_GCgen0size={gen0} (the deployment setting, ops/config/mirrorca.service)");
            processes.Add(mirror.Process);
            await mirror.Presigned.WaitAsync(TimeSpan.FromMinutes(30));
            mirror.Process.Refresh();
            Console.WriteLine($"mirror: {certs:N0} responses pre-signed in {sw.Elapsed.TotalSeconds:F1} s; MirrorCa resident set {mirror.Process.WorkingSet64 / 1024 / 1024:N0} MiB");

            await Sanity(dir, serials[0], mirrorPort, "mirror");

            var rows = new List<Row>();
            foreach (var c in connections)
            {
                rows.Add(Wrk("bare Kestrel (811 B)", barePort, c, duration, lua));
                var openssl = StartOpenssl();
                processes.Add(openssl);
                await Sanity(dir, serials[0], opensslPort, "openssl");
                rows.Add(Wrk("openssl ocsp -multi 2", opensslPort, c, duration, lua, warmUp: false));
                openssl.Kill(entireProcessTree: true);
                await openssl.WaitForExitAsync();
                rows.Add(Wrk("MirrorCa /ocsp", mirrorPort, c, duration, lua));
            }

            mirror.Process.Refresh();
            Console.WriteLine($"MirrorCa peak resident set during the runs: {mirror.Process.PeakWorkingSet64 / 1024 / 1024:N0} MiB");
            Print(rows, certs);
            return 0;
        }
        finally
        {
            foreach (var p in processes)
            {
                try
                {
                    p.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                    // already exited
                }

                p.Dispose();
            }

            if (!keep)
            {
                try
                {
                    Directory.Delete(dir, recursive: true);
                }
                catch (IOException)
                {
                    // best effort
                }
            }
        }
    }

    private sealed record Pki(X509Certificate2 Root, X509Certificate2 Issuing, ECDsa IssuingKey, X509Certificate2 Responder);

    private static Pki MakePki(string dir)
    {
        var now = DateTimeOffset.UtcNow.AddMinutes(-5);
        var rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var rootReq = new CertificateRequest("O=OfflinePki dev, CN=Bench Root", rootKey, HashAlgorithmName.SHA256);
        rootReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        rootReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        rootReq.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(rootReq.PublicKey, false));
        var root = rootReq.CreateSelfSigned(now, now.AddYears(10));

        var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caReq = new CertificateRequest("O=OfflinePki dev, CN=Bench Issuing CA", caKey, HashAlgorithmName.SHA256);
        caReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        caReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caReq.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caReq.PublicKey, false));
        caReq.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(root, true, false));
        using var issuingPublic = caReq.Create(root, now, now.AddYears(5), [1]);
        var issuing = issuingPublic.CopyWithPrivateKey(caKey);

        using var responderKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var caSigning = new AsymmetricSigningKey(caKey);
        var responder = OcspResponderCertificates.Issue(issuing, caSigning, new CertificateRequest("CN=x", responderKey, HashAlgorithmName.SHA256).PublicKey,
            new X500DistinguishedName("CN=Bench OCSP Responder"), now, TimeSpan.FromDays(30), [2]);

        File.WriteAllText(Path.Combine(dir, "root.crt"), root.ExportCertificatePem());
        File.WriteAllText(Path.Combine(dir, "issuing.crt"), issuing.ExportCertificatePem());
        File.WriteAllText(Path.Combine(dir, "issuing.key"), caKey.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(Path.Combine(dir, "ocsp.crt"), responder.ExportCertificatePem());
        File.WriteAllText(Path.Combine(dir, "ocsp.key"), responderKey.ExportPkcs8PrivateKeyPem());
        return new Pki(root, issuing, caKey, responder);
    }

    private static List<byte[]> FillRegistry(string dir, Pki pki, int certs)
    {
        var sw = Stopwatch.StartNew();
        var serials = new List<byte[]>(certs);
        var source = new RandomSerialNumberSource();
        var keyHash = IssuerHashes.KeyHash(pki.Issuing);
        var journalId = RandomNumberGenerator.GetBytes(16);
        var placeholder = new byte[] { 0x30, 0x00 };
        var now = DateTimeOffset.UtcNow;
        using var registry = new MirrorRegistry(Path.Combine(dir, "data", "registry.sqlite"), TimeProvider.System);
        using (var tx = registry.BeginApply())
        {
            for (int i = 0; i < certs; i++)
            {
                var serial = source.Next();
                serials.Add(serial);
                tx.AddCertificate(new IssuedCertificateRecord(serial, keyHash, placeholder, "DEV-" + i.ToString(CultureInfo.InvariantCulture), "station-1",
                    i % 100 == 0 ? "recall" : "batch", now, now.AddYears(5), journalId, (ulong)i + 1));
            }

            tx.SetJournal(new JournalState(journalId, "F1", pki.Issuing.RawData, pki.Responder.RawData, (ulong)certs, new byte[32]));
            tx.Commit();
        }

        // 1 % revoked (one bulk revocation), so the index file and the registry carry both statuses.
        var revoked = certs >= 100 ? registry.RevokeMatching("F1", new RevocationSelector(BatchId: "recall"), CrlReason.KeyCompromise, null, "bench").NewlyRevoked : 0;
        Console.WriteLine($"registry: {certs:N0} rows ({revoked:N0} revoked) in {sw.Elapsed.TotalSeconds:F1} s");
        return serials;
    }

    private static void WriteIndex(string dir, List<byte[]> serials)
    {
        // openssl ca index: status, expiry, revocation[,reason], serial (hex), file, subject.
        var sb = new StringBuilder(serials.Count * 80);
        var expiry = DateTime.UtcNow.AddYears(5).ToString("yyMMddHHmmss", CultureInfo.InvariantCulture) + "Z";
        var revokedAt = DateTime.UtcNow.ToString("yyMMddHHmmss", CultureInfo.InvariantCulture) + "Z";
        for (int i = 0; i < serials.Count; i++)
        {
            bool revoked = i % 100 == 0 && serials.Count >= 100;
            sb.Append(revoked ? 'R' : 'V').Append('\t').Append(expiry).Append('\t').Append(revoked ? revokedAt + ",keyCompromise" : string.Empty).Append('\t')
              .Append(Convert.ToHexString(serials[i])).Append("\tunknown\t/CN=DEV-").Append(i.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }

        File.WriteAllText(Path.Combine(dir, "index.txt"), sb.ToString());
        File.WriteAllText(Path.Combine(dir, "index.txt.attr"), "unique_subject = no\n");
    }

    private static string WriteLuaScript(string dir, Pki pki, List<byte[]> serials, int sample)
    {
        // Pre-made RFC 5019 requests (SHA-1 CertID, no nonce) for random known serials, embedded as Lua strings.
        var sb = new StringBuilder("reqs = {\n");
        var nameHash = IssuerHashes.NameHash(pki.Issuing, HashAlgorithmName.SHA1);
        var keyHash = IssuerHashes.KeyHash(pki.Issuing);
        for (int i = 0; i < Math.Min(sample, serials.Count); i++)
        {
            var serial = serials[RandomNumberGenerator.GetInt32(serials.Count)];
            var w = new System.Formats.Asn1.AsnWriter(System.Formats.Asn1.AsnEncodingRules.DER);
            using (w.PushSequence())
            using (w.PushSequence())
            using (w.PushSequence())
            using (w.PushSequence())
            using (w.PushSequence())
            {
                using (w.PushSequence())
                {
                    w.WriteObjectIdentifier(Oids.Sha1);
                    w.WriteNull();
                }

                w.WriteOctetString(nameHash);
                w.WriteOctetString(keyHash);
                w.WriteIntegerUnsigned(serial);
            }

            sb.Append("  \"");
            foreach (var b in w.Encode())
            {
                sb.Append('\\').Append(b.ToString(CultureInfo.InvariantCulture));
            }

            sb.Append("\",\n");
        }

        sb.Append("""
            }
            wrk.method = "POST"
            wrk.headers["Content-Type"] = "application/ocsp-request"
            math.randomseed(os.time())
            request = function()
              return wrk.format(nil, "/ocsp", nil, reqs[math.random(#reqs)])
            end
            """);
        var path = Path.Combine(dir, "ocsp.lua");
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    private static string WriteMirrorConfig(string dir, int port)
    {
        var json = $$"""
            {
              "MirrorCa": {
                "Environment": "dev",
                "DataDirectory": "data",
                "RootCertificate": "root.crt",
                "Http": { "Listen": "http://127.0.0.1:{{port}}", "MaxRequestBytes": 65536 },
                "Sync": { "Listen": "" },
                "Factories": [ { "FactoryId": "F1", "SyncClientSubjectCn": "factory-F1-sync",
                  "IssuingCa": { "Certificate": "issuing.crt", "Key": { "File": "issuing.key" } },
                  "OcspResponder": { "Certificate": "ocsp.crt", "Key": { "File": "ocsp.key" } } } ],
                "Ocsp": { "Validity": "1.00:00:00", "NeverIssued": "Revoked", "CacheDuration": "00:01:00", "PresignAll": true }
              }
            }
            """;
        var path = Path.Combine(dir, "mirrorca.json");
        File.WriteAllText(path, json);
        return path;
    }

    private static async Task Sanity(string dir, byte[] serial, int port, string peer)
    {
        string r = string.Empty;
        for (int attempt = 0; attempt < 50; attempt++)
        {
            r = Run("openssl", ["ocsp", "-issuer", Path.Combine(dir, "issuing.crt"), "-serial", "0x" + Convert.ToHexString(serial), "-url", $"http://127.0.0.1:{port}/ocsp",
                "-CAfile", Path.Combine(dir, "root.crt"), "-no_nonce", "-timeout", "5"], 30);
            if (r.Contains("Response verify OK", StringComparison.Ordinal) && (r.Contains(": revoked", StringComparison.Ordinal) || r.Contains(": good", StringComparison.Ordinal)))
            {
                return;
            }

            await Task.Delay(100);
        }

        throw new InvalidOperationException($"{peer} did not give a verified answer: {r}");
    }

    private static Row Wrk(string peer, int port, int connections, int duration, string lua, bool warmUp = true)
    {
        int threads = Math.Min(connections, 2);
        // Warm-up, not measured: the same load for 3 s, so that no .NET peer is measured while its JIT is still tiering
        // up. openssl (no JIT) gets none: its -multi children stay blocked on the connections wrk leaves half-open.
        if (warmUp)
        {
            Run("wrk", ["-t" + threads.ToString(CultureInfo.InvariantCulture), "-c" + connections.ToString(CultureInfo.InvariantCulture),
            "-d3s", "-s", lua, $"http://127.0.0.1:{port}/ocsp"], 60);
        }

        var output = Run("wrk", ["-t" + threads.ToString(CultureInfo.InvariantCulture), "-c" + connections.ToString(CultureInfo.InvariantCulture),
            "-d" + duration.ToString(CultureInfo.InvariantCulture) + "s", "--latency", "-s", lua, $"http://127.0.0.1:{port}/ocsp"], duration + 60);
        double rps = 0, p50 = double.NaN, p99 = double.NaN;
        long errors = 0;
        foreach (var raw in output.Split('\n'))
        {
            var line = raw.Trim();
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (line.StartsWith("Requests/sec:", StringComparison.Ordinal))
            {
                rps = double.Parse(parts[1], CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("50%", StringComparison.Ordinal))
            {
                p50 = Millis(parts[1]);
            }
            else if (line.StartsWith("99%", StringComparison.Ordinal))
            {
                p99 = Millis(parts[1]);
            }
            else if (line.StartsWith("Socket errors:", StringComparison.Ordinal) || line.StartsWith("Non-2xx", StringComparison.Ordinal))
            {
                errors += line.Split(new[] { ' ', ',' }, StringSplitOptions.RemoveEmptyEntries).Select(t => long.TryParse(t, out var n) ? n : 0).Sum();
            }
        }

        if (rps == 0)
        {
            Console.WriteLine($"  wrk against {peer} gave no figures:\n{output}");
        }

        Console.WriteLine($"  {peer,-24} c={connections,-3} {rps,10:N0} req/s  p50 {p50,7:F2} ms  p99 {p99,7:F2} ms  errors {errors}");
        return new Row(peer, connections, rps, p50, p99, errors);
    }

    private static double Millis(string value)
    {
        double Num(int suffix) => double.Parse(value[..^suffix], CultureInfo.InvariantCulture);
        return value.EndsWith("us", StringComparison.Ordinal) ? Num(2) / 1000
            : value.EndsWith("ms", StringComparison.Ordinal) ? Num(2)
            : value.EndsWith('m') ? Num(1) * 60_000
            : value.EndsWith('s') ? Num(1) * 1000 : double.NaN;
    }

    private static void Print(List<Row> rows, int certs)
    {
        Console.WriteLine();
        Console.WriteLine($"OCSP, {certs:N0} certificates (POST, RFC 5019 requests for random known serials; wrk on loopback, same machine)");
        Console.WriteLine($"{"conns",5} | {"bare Kestrel req/s",18} | {"openssl req/s",13} | {"mirror req/s",12} | {"mirror/bare",11} | {"mirror/openssl",14} | {"mirror p50 ms",13} | {"mirror p99 ms",13} | {"openssl p99 ms",14}");
        foreach (var g in rows.GroupBy(r => r.Connections))
        {
            var bare = g.First(r => r.Peer.StartsWith("bare", StringComparison.Ordinal));
            var ossl = g.First(r => r.Peer.StartsWith("openssl", StringComparison.Ordinal));
            var mirror = g.First(r => r.Peer.StartsWith("Mirror", StringComparison.Ordinal));
            Console.WriteLine($"{g.Key,5} | {bare.RequestsPerSecond,18:N0} | {ossl.RequestsPerSecond,13:N0} | {mirror.RequestsPerSecond,12:N0} | {mirror.RequestsPerSecond / bare.RequestsPerSecond,11:P0} | {mirror.RequestsPerSecond / ossl.RequestsPerSecond,13:F1}x | {mirror.P50Ms,13:F2} | {mirror.P99Ms,13:F2} | {ossl.P99Ms,14:F2}");
        }

        Console.WriteLine("Targets (issue 4): mirror >= 80 % of bare Kestrel, p99 <= 5 ms at 32 connections, same req/s at 1M as at 10k certificates.");
    }

    private static string Run(string file, string[] args, int timeoutSeconds)
    {
        using var p = new Process { StartInfo = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false } };
        foreach (var a in args)
        {
            p.StartInfo.ArgumentList.Add(a);
        }

        p.Start();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(timeoutSeconds)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} did not finish in {timeoutSeconds} s");
        }

        return stdout.Result + stderr.Result;
    }

    private sealed record MirrorProcess(Process Process, Task Presigned);

    /// <summary>Starts `MirrorCa serve`; <see cref="MirrorProcess.Presigned"/> completes when its pre-signer logs a complete index of <paramref name="certs"/> responses.</summary>
    private static MirrorProcess StartMirror(string config, int certs, string gen0)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        SetGen0(psi, gen0);
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "MirrorCa.dll"), "serve", "--config", config })
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["OFFLINEPKI_Logging__LogLevel__Default"] = "Warning";
        psi.Environment["OFFLINEPKI_Logging__LogLevel__OfflinePki.MirrorCa.OcspPresigner"] = "Information";
        psi.Environment["OFFLINEPKI_Logging__Console__FormatterName"] = "simple";
        psi.Environment["OFFLINEPKI_MirrorCa__Ocsp__MaxCachedResponses"] = Math.Max(certs, 1).ToString(CultureInfo.InvariantCulture);
        var process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start MirrorCa");
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        string want = $"{certs} pre-signed, complete True";
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line && line.Contains(want, StringComparison.Ordinal))
            {
                done.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (!string.IsNullOrWhiteSpace(e.Data))
            {
                Console.Error.WriteLine("  MirrorCa: " + e.Data);
            }
        };
        process.Exited += (_, _) => done.TrySetException(new InvalidOperationException($"MirrorCa exited with {process.ExitCode} before pre-signing finished"));
        process.EnableRaisingEvents = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new MirrorProcess(process, done.Task);
    }

    /// <summary>The gen0 budget MirrorCa is deployed with (ops/config/mirrorca.service): 256 MiB.</summary>
    private const string DeploymentGen0Size = "0x10000000";

    private static void SetGen0(ProcessStartInfo psi, string gen0)
    {
        if (!string.Equals(gen0, "default", StringComparison.Ordinal))
        {
            psi.Environment["DOTNET_GCgen0size"] = gen0;
        }
    }

    private static Process StartProcess(string file, string[] args, string? gen0 = null)
    {
        var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = false, RedirectStandardError = false };
        if (gen0 is not null)
        {
            SetGen0(psi, gen0);
        }

        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        return Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
