using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using OfflinePki.Asn1;
using OfflinePki.Registry;
using OfflinePki.Revocation;

namespace OfflinePki.MirrorCa;

/// <summary>The MirrorCa command line: <c>serve</c>, <c>revoke</c>, <c>status</c>.</summary>
public static class MirrorCaCli
{
    /// <summary>Builds the root command. Verbs write to the invocation's Output/Error writers.</summary>
    public static RootCommand Create()
    {
        var root = new RootCommand("OfflinePki MirrorCa: journal registry, revocation, CRL and OCSP");
        root.Subcommands.Add(Serve());
        root.Subcommands.Add(Revoke());
        root.Subcommands.Add(Status());
        return root;
    }

    /// <summary>Loads, resolves and validates the "MirrorCa" section without starting the host (for CLI verbs).</summary>
    /// <exception cref="FileNotFoundException">The config file does not exist.</exception>
    /// <exception cref="OptionsValidationException">The configuration is invalid; the messages name the keys.</exception>
    public static MirrorCaOptions LoadOptions(string configPath)
    {
        var full = Path.GetFullPath(configPath);
        if (!File.Exists(full))
        {
            throw new FileNotFoundException($"config file '{full}' not found", full);
        }

        var config = new ConfigurationBuilder().AddJsonFile(full, optional: false).AddEnvironmentVariables("OFFLINEPKI_").Build();
        var options = new MirrorCaOptions();
        config.GetSection(MirrorCaOptions.SectionName).Bind(options);
        options.ResolvePaths(Path.GetDirectoryName(full)!);
        var result = new MirrorCaOptionsValidator().Validate(null, options);
        if (result.Failed)
        {
            throw new OptionsValidationException(MirrorCaOptions.SectionName, typeof(MirrorCaOptions), result.Failures);
        }

        return options;
    }

    private static Option<string> ConfigOption() => new("--config") { Required = true, Description = "Path of mirrorca.json" };

    private static Command Serve()
    {
        var config = ConfigOption();
        var cmd = new Command("serve", "Run the mirror: HTTP CRL/CA/OCSP endpoints (and the sync endpoint once wired)");
        cmd.Options.Add(config);
        cmd.SetAction(async (parseResult, ct) =>
        {
            var err = parseResult.InvocationConfiguration.Error;
            try
            {
                await using var app = MirrorCaApp.Build(parseResult.GetRequiredValue(config));
                await app.RunAsync(ct).ConfigureAwait(false);
                return 0;
            }
            catch (Exception ex) when (ex is OptionsValidationException or FileNotFoundException)
            {
                await err.WriteLineAsync("error: " + ex.Message).ConfigureAwait(false);
                return 1;
            }
        });
        return cmd;
    }

    private static Command Revoke()
    {
        var config = ConfigOption();
        var serial = new Option<string?>("--serial") { Description = "Certificate serial, hex (':' separators and 0x allowed)" };
        var device = new Option<string?>("--device") { Description = "Revoke every certificate of this device id (instead of --serial)" };
        var station = new Option<string?>("--station") { Description = "Revoke every certificate requested by this station (instead of --serial)" };
        var batch = new Option<string?>("--batch") { Description = "Revoke every certificate of this batch/order (instead of --serial)" };
        var reason = new Option<string>("--reason") { Required = true, Description = "RFC 5280 reason, e.g. keyCompromise, superseded, cessationOfOperation" };
        var invalidity = new Option<string?>("--invalidity-date") { Description = "ISO 8601 time the key is known or suspected compromised (RFC 5280 §5.3.2)" };
        var factory = new Option<string?>("--factory") { Description = "Factory id; needed only if the serial exists under several issuers" };
        var actor = new Option<string?>("--actor") { Description = "Who revokes (recorded); default cli:$USER" };
        var cmd = new Command("revoke", "Revoke by serial, or every certificate of a device, station or batch; durable before OK is printed");
        foreach (var o in new Option[] { config, serial, device, station, batch, reason, invalidity, factory, actor })
        {
            cmd.Options.Add(o);
        }

        cmd.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var err = parseResult.InvocationConfiguration.Error;
            try
            {
                if (!CrlReasons.TryParseForRevocation(parseResult.GetValue(reason), out var crlReason, out var reasonError))
                {
                    err.WriteLine("error: " + reasonError);
                    return 2;
                }

                var selector = new RevocationSelector(parseResult.GetValue(device), parseResult.GetValue(station), parseResult.GetValue(batch));
                if ((parseResult.GetValue(serial) is null) == selector.IsEmpty)
                {
                    err.WriteLine("error: give either --serial, or one or more of --device, --station, --batch");
                    return 2;
                }

                byte[]? serialBytes = null;
                if (parseResult.GetValue(serial) is { } serialText)
                {
                    try
                    {
                        serialBytes = SerialNumber.FromHex(serialText);
                    }
                    catch (Exception ex) when (ex is FormatException or ArgumentException)
                    {
                        err.WriteLine($"error: --serial '{serialText}' is not a positive hex serial of at most 20 octets: {ex.Message}");
                        return 2;
                    }
                }

                DateTimeOffset? invalidityDate = null;
                if (parseResult.GetValue(invalidity) is { Length: > 0 } text)
                {
                    if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var parsed))
                    {
                        err.WriteLine($"error: --invalidity-date '{text}' is not an ISO 8601 time (e.g. 2026-11-20T08:00:00Z)");
                        return 2;
                    }

                    invalidityDate = parsed;
                }

                var options = LoadOptions(parseResult.GetRequiredValue(config));
                var issuer = parseResult.GetValue(factory);
                if (issuer is not null && options.Factories.FirstOrDefault(f => f.FactoryId == issuer) is { } configured)
                {
                    using var ca = X509CertificateLoader.LoadCertificateFromFile(configured.IssuingCa.Certificate);
                    issuer = Convert.ToHexString(IssuerHashes.KeyHash(ca));
                }

                using var registry = new MirrorRegistry(options.RegistryPath, TimeProvider.System);
                var who = parseResult.GetValue(actor) ?? "cli:" + Environment.UserName;
                if (serialBytes is null)
                {
                    var bulk = registry.RevokeMatching(issuer, selector, crlReason, invalidityDate, who);
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"OK revoked {bulk.NewlyRevoked} certificate(s) of {selector} ({bulk.Matched} matched, {bulk.AlreadyRevoked} already revoked) reason {CrlReasons.Name(crlReason)}"));
                    return 0;
                }

                var result = registry.Revoke(issuer, serialBytes, crlReason, invalidityDate, who);
                var e = result.Entry;
                var what = result.Outcome == RevokeOutcome.Revoked ? "OK revoked" : "OK already revoked";
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{what}: serial {SerialNumber.ToHex(e.Serial)} factory {result.FactoryId ?? "?"} device {result.DeviceId} reason {CrlReasons.Name(e.Reason)} at {e.RevocationTime:yyyy-MM-ddTHH:mm:ssZ}{(e.InvalidityDate is { } d ? $" invalidity {d:yyyy-MM-ddTHH:mm:ssZ}" : string.Empty)}"));
                return 0;
            }
            catch (Exception ex) when (ex is RevocationException or ArgumentException or OptionsValidationException or FileNotFoundException)
            {
                err.WriteLine("error: " + ex.Message);
                return 1;
            }
        });
        return cmd;
    }

    private static Command Status()
    {
        var config = ConfigOption();
        var cmd = new Command("status", "Show journals, heads, certificate and revocation counts");
        cmd.Options.Add(config);
        cmd.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            try
            {
                var options = LoadOptions(parseResult.GetRequiredValue(config));
                using var registry = new MirrorRegistry(options.RegistryPath, TimeProvider.System);
                var s = registry.GetSummary();
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"registry {registry.DatabasePath} (revocation version {s.RevocationVersion}, registry version {s.RegistryVersion})"));
                if (s.Factories.Count == 0)
                {
                    output.WriteLine("no journals yet");
                }

                foreach (var f in s.Factories)
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"factory {f.FactoryId} journal {f.JournalIdHex} head seq {f.HeadSeq} entries {f.Entries} certificates {f.Certificates} revoked {f.Revoked} issuerKeyHash {f.IssuerKeyHashHex}"));
                }

                foreach (var a in new MirrorAlertStore(options.RegistryPath).Recent(10))
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ALERT {a.Time:O} {a.Summary} (journal {a.JournalIdHex}): {a.Detail}"));
                }

                return 0;
            }
            catch (Exception ex) when (ex is OptionsValidationException or FileNotFoundException)
            {
                parseResult.InvocationConfiguration.Error.WriteLine("error: " + ex.Message);
                return 1;
            }
        });
        return cmd;
    }
}
