using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OfflinePki.Station;

/// <summary>
/// The <c>station</c> command line. Exit codes: 0 the device passed; 1 the device failed a step (the reason names
/// it); 2 bad usage or setup (arguments, certificate or key files); 3 the evidence line could not be written.
/// </summary>
public static class StationCli
{
    /// <summary>Exit code: the device passed every step.</summary>
    public const int Pass = 0;

    /// <summary>Exit code: the device failed a step.</summary>
    public const int DeviceFailed = 1;

    /// <summary>Exit code: bad arguments or unusable files.</summary>
    public const int UsageError = 2;

    /// <summary>Exit code: the evidence line could not be written (the device result is printed anyway).</summary>
    public const int EvidenceFailed = 3;

    /// <summary>Parses and runs <paramref name="args"/>, writing to <paramref name="output"/>/<paramref name="error"/>.</summary>
    /// <param name="args">Command-line arguments.</param>
    /// <param name="output">Progress and the result line.</param>
    /// <param name="error">Failures and usage errors.</param>
    /// <param name="time">Clock for the evidence time and chain validation.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <returns>The exit code.</returns>
    public static Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        var clock = time ?? TimeProvider.System;
        var device = new Option<string>("--device") { Description = "device endpoint: tcp:HOST:PORT, or serial:/dev/ttyX (set up with stty raw first)", Required = true };
        var label = new Option<string>("--label") { Description = "device ID scanned from the unit's label", Required = true };
        var est = new Option<string>("--est") { Description = "EST server, e.g. https://factory:8443", Required = true };
        var estLabel = new Option<string?>("--est-label") { Description = "EST label (RFC 7030 §3.2.2) selecting a profile or order" };
        var clientCert = new Option<string>("--client-cert") { Description = "station TLS client certificate (PEM)", Required = true };
        var clientKey = new Option<string>("--client-key") { Description = "its private key (PEM PKCS#8, optionally encrypted)", Required = true };
        var passEnv = new Option<string?>("--client-key-passphrase-env") { Description = "environment variable holding the client key passphrase" };
        var ca = new Option<string>("--ca") { Description = "TLS/RA CA certificate(s) (PEM) the EST server's certificate must chain to", Required = true };
        var root = new Option<string?>("--root") { Description = "pin the device-identity root CA (PEM); default: the root EST cacerts returns" };
        var order = new Option<string?>("--order") { Description = "production order ID (X-Order-Id)" };
        var kind = new Option<string?>("--kind") { Description = "issuance kind (X-Issuance-Kind): initial, rework or refurb" };
        kind.AcceptOnlyFromAmong("initial", "rework", "refurb");
        var op = new Option<string?>("--operator") { Description = "operator ID (X-Operator-Id)" };
        var stationId = new Option<string?>("--station-id") { Description = "station ID for the evidence (default: the client certificate's CN)" };
        var profile = new Option<string?>("--profile") { Description = "profile named to the device in its csr request (default: the EST label, else idevid)" };
        var evidence = new Option<string>("--evidence") { Description = "JSON-lines evidence file to append to", Required = true };
        var timeout = new Option<string>("--timeout") { Description = "longest wait for one device answer (e.g. 10s, 500ms)", DefaultValueFactory = _ => "10s" };
        var estTimeout = new Option<string>("--est-timeout") { Description = "longest wait for one EST request", DefaultValueFactory = _ => "30s" };

        var run = new Command("run", "Enroll one device: identify, CSR, EST enroll, verify, write, challenge-response, finalize; append evidence");
        foreach (var o in new Option[] { device, label, est, estLabel, clientCert, clientKey, passEnv, ca, root, order, kind, op, stationId, profile, evidence, timeout, estTimeout })
        {
            run.Options.Add(o);
        }

        run.SetAction(async (parse, ct) =>
        {
            StationRunOptions options;
            string evidencePath = parse.GetValue(evidence)!;
            string station;
            try
            {
                var cert = LoadClientCertificate(parse.GetValue(clientCert)!, parse.GetValue(clientKey)!, parse.GetValue(passEnv));
                var anchors = new X509Certificate2Collection();
                anchors.ImportFromPemFile(parse.GetValue(ca)!);
                if (anchors.Count == 0)
                {
                    throw new SetupException($"--ca '{parse.GetValue(ca)}' holds no PEM certificate");
                }

                X509Certificate2? pinned = parse.GetValue(root) is { } rootPath ? X509CertificateLoader.LoadCertificateFromFile(rootPath) : null;
                if (!Uri.TryCreate(parse.GetValue(est), UriKind.Absolute, out var estUri) || estUri.Scheme != Uri.UriSchemeHttps)
                {
                    throw new SetupException($"--est '{parse.GetValue(est)}' must be an https:// URL");
                }

                string labelText = parse.GetValue(label)!.Trim();
                if (labelText.Length is 0 or > 64)
                {
                    throw new SetupException("--label must be 1-64 characters (the scanned device ID)");
                }

                station = parse.GetValue(stationId) ?? cert.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
                options = new StationRunOptions
                {
                    Device = parse.GetValue(device)!,
                    Label = labelText,
                    Est = estUri,
                    EstLabel = parse.GetValue(estLabel),
                    ClientCertificate = cert,
                    TlsTrustAnchors = anchors,
                    PinnedRoot = pinned,
                    Order = parse.GetValue(order),
                    Kind = parse.GetValue(kind),
                    Operator = parse.GetValue(op),
                    StationId = station,
                    Profile = parse.GetValue(profile),
                    DeviceTimeout = ParseDuration("--timeout", parse.GetValue(timeout)!),
                    EstTimeout = ParseDuration("--est-timeout", parse.GetValue(estTimeout)!),
                };
                using (new EstClient(options.Est, options.EstLabel, cert, anchors, options.EstTimeout))
                {
                    // validates the URL and the label up front
                }
            }
            catch (Exception ex) when (ex is SetupException or CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
            {
                await error.WriteLineAsync("station: setup: " + ex.Message).ConfigureAwait(false);
                return UsageError;
            }

            var outcome = await new StationRunner(output, clock).RunAsync(options, ct).ConfigureAwait(false);
            if (outcome.Passed)
            {
                await output.WriteLineAsync($"station: PASS device {outcome.DeviceId} serial {outcome.Serial} fingerprint {outcome.Fingerprint}").ConfigureAwait(false);
            }
            else
            {
                await error.WriteLineAsync($"station: FAIL at step '{outcome.Step}': {outcome.Reason}").ConfigureAwait(false);
            }

            try
            {
                EvidenceLog.Append(evidencePath, EvidenceRecord.From(outcome, options, station, clock.GetUtcNow()));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                await error.WriteLineAsync($"station: evidence NOT written to '{evidencePath}': {ex.Message}").ConfigureAwait(false);
                return EvidenceFailed;
            }

            return outcome.Passed ? Pass : DeviceFailed;
        });

        var rootCommand = new RootCommand("OfflinePki station tool: enrolls devices on the production line over EST and proves each holds its key");
        rootCommand.Subcommands.Add(run);
        return rootCommand.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, cancellationToken);
    }

    /// <summary>Parses "10s", "500ms", "2m" or a TimeSpan ("00:00:10"); must be positive.</summary>
    internal static TimeSpan ParseDuration(string option, string text)
    {
        text = text.Trim();
        TimeSpan value;
        if (text.EndsWith("ms", StringComparison.Ordinal) && double.TryParse(text[..^2], NumberStyles.Float, CultureInfo.InvariantCulture, out double ms))
        {
            value = TimeSpan.FromMilliseconds(ms);
        }
        else if (text.EndsWith('s') && double.TryParse(text[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out double s))
        {
            value = TimeSpan.FromSeconds(s);
        }
        else if (text.EndsWith('m') && double.TryParse(text[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out double m))
        {
            value = TimeSpan.FromMinutes(m);
        }
        else if (!TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value) || !text.Contains(':', StringComparison.Ordinal))
        {
            throw new SetupException($"{option} '{text}': expected e.g. 10s, 500ms, 2m or 00:00:10");
        }

        if (value <= TimeSpan.Zero || value > TimeSpan.FromHours(1))
        {
            throw new SetupException($"{option} '{text}': must be more than 0 and at most 1 hour");
        }

        return value;
    }

    private static X509Certificate2 LoadClientCertificate(string certPath, string keyPath, string? passphraseEnv)
    {
        if (passphraseEnv is null)
        {
            return X509Certificate2.CreateFromPemFile(certPath, keyPath);
        }

        string passphrase = Environment.GetEnvironmentVariable(passphraseEnv)
            ?? throw new SetupException($"--client-key-passphrase-env: environment variable '{passphraseEnv}' is not set");
        return X509Certificate2.CreateFromEncryptedPemFile(certPath, passphrase, keyPath);
    }

    private sealed class SetupException(string message) : Exception(message);
}
