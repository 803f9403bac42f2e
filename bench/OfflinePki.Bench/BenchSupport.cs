using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;

namespace OfflinePki.Bench;

/// <summary>Shared helpers: the repo root, a dev PKI, percentiles, and running openssl as a peer (the options: <see cref="BenchCli"/>).</summary>
public static partial class BenchSupport
{
    /// <summary>The repository root (holds OfflinePki.sln).</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>Runs ops/dev-pki.sh into a fresh temp directory and returns it.</summary>
    public static string CreatePki(string factoryId = "F1")
    {
        string dir = Path.Combine(Path.GetTempPath(), "offlinepki-bench", Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(dir);
        Run("bash", [Path.Combine(RepoRoot, "ops", "dev-pki.sh"), dir, "--factory", factoryId]);
        return dir;
    }

    /// <summary>The q-quantile (0..1) of sorted values.</summary>
    public static double Percentile(double[] sorted, double q) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];

    /// <summary>Runs a process to completion and returns stdout; throws on a non-zero exit.</summary>
    public static string Run(string file, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} exited {p.ExitCode}: {stderr.Result}");
        }

        return stdout + stderr.Result;
    }

    /// <summary>
    /// `openssl speed -multi 2 -seconds S ecdsap256`: (sign/s, verify/s) on both cores. This is the crypto limit for
    /// work that needs one P-256 sign and one P-256 verify per item.
    /// </summary>
    public static (double Sign, double Verify) OpenSslEcdsaP256(int seconds = 3)
    {
        string output = Run("openssl", ["speed", "-multi", "2", "-seconds", seconds.ToString(CultureInfo.InvariantCulture), "ecdsap256"]);
        // "256 bits ecdsa (nistp256)   0.0000s   0.0001s  23456.0   8765.0"
        var m = EcdsaLine().Match(output);
        if (!m.Success)
        {
            throw new InvalidOperationException("cannot parse openssl speed output:\n" + output);
        }

        return (double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"256 bits ecdsa \(nistp256\)\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)\s+([\d.]+)")]
    private static partial Regex EcdsaLine();

    private static string FindRepoRoot()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
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

        throw new InvalidOperationException("run the benchmarks from inside the repository (cannot find OfflinePki.sln)");
    }

    /// <summary>An EST station client: the station's mTLS certificate, one kept-alive connection, the EST server checked against <paramref name="tlsCa"/>.</summary>
    public static HttpClient StationClient(string pki, string station, X509Certificate2 tlsCa)
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
}
