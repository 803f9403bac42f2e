using System.CommandLine;
using Spectre.Console;
using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using OfflinePki.Asn1;
using OfflinePki.Registry;
using OfflinePki.Revocation;
using OfflinePki.Schema;

namespace OfflinePki.MirrorCa;

/// <summary>The MirrorCa command line: <c>serve</c>, <c>revoke</c>, <c>release-hold</c>, <c>status</c>, <c>audit verify|list</c>, <c>import</c>, <c>migrate</c>.</summary>
public static class MirrorCaCli
{
    /// <summary>Builds the root command. Verbs write to the invocation's Output/Error writers.</summary>
    public static RootCommand Create()
    {
        var root = new RootCommand("OfflinePki MirrorCa: journal registry, revocation, CRL and OCSP");
        root.Subcommands.Add(Serve());
        root.Subcommands.Add(Revoke());
        root.Subcommands.Add(Status());
        root.Subcommands.Add(ReleaseHold());
        root.Subcommands.Add(Audit());
        root.Subcommands.Add(Import());
        root.Subcommands.Add(MirrorOrdersCli.Order());
        root.Subcommands.Add(MirrorOrdersCli.Report());
        root.Subcommands.Add(Cli.MigrateCommand.Create());
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
            catch (Exception ex) when (ex is DatabaseSchemaException or OptionsValidationException or FileNotFoundException)
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
        var from = new Option<string?>("--from") { Description = "With --station/--batch/--device/--all: only certificates issued at or after this ISO 8601 time" };
        var to = new Option<string?>("--to") { Description = "With --station/--batch/--device/--all: only certificates issued at or before this ISO 8601 time" };
        var all = new Option<bool>("--all") { Description = "Revoke every certificate of --factory (e.g. a compromised factory)" };
        var cmd = new Command("revoke", "Revoke by serial, or every certificate of a device, station (in a time window), batch or factory; durable and audited before OK is printed");
        foreach (var o in new Option[] { config, serial, device, station, batch, reason, invalidity, factory, actor, from, to, all })
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

                if (!TryParseTime(parseResult.GetValue(from), "--from", err, out var fromTime) || !TryParseTime(parseResult.GetValue(to), "--to", err, out var toTime))
                {
                    return 2;
                }

                var selector = new RevocationSelector(parseResult.GetValue(device), parseResult.GetValue(station), parseResult.GetValue(batch),
                    fromTime, toTime, parseResult.GetValue(all));
                if ((parseResult.GetValue(serial) is null) == selector.IsEmpty)
                {
                    err.WriteLine("error: give either --serial, or one or more of --device, --station, --batch, --all");
                    return 2;
                }

                if (selector.AllOfIssuer && parseResult.GetValue(factory) is null)
                {
                    err.WriteLine("error: --all needs --factory (the factory whose certificates are all revoked)");
                    return 2;
                }

                if ((fromTime is not null || toTime is not null) && parseResult.GetValue(serial) is not null)
                {
                    err.WriteLine("error: --from/--to select among a station's, batch's, device's or factory's certificates; they do not apply to --serial");
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
                var issuer = ResolveIssuer(options, parseResult.GetValue(factory));

                using var registry = new MirrorRegistry(options.RegistryPath, TimeProvider.System);
                var who = parseResult.GetValue(actor) ?? "cli:" + Environment.UserName;
                if (serialBytes is null)
                {
                    var bulk = RevokeWithProgress(registry, issuer, selector, crlReason, invalidityDate, who, err);
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
            catch (Exception ex) when (ex is RevocationException or ArgumentException or DatabaseSchemaException or OptionsValidationException or FileNotFoundException)
            {
                err.WriteLine("error: " + ex.Message);
                return 1;
            }
        });
        return cmd;
    }

    /// <summary>Tests set this to draw the live progress bar into a redirected writer.</summary>
    internal static bool ForceInteractiveProgress { get; set; }

    private static BulkRevokeResult RevokeWithProgress(MirrorRegistry registry, string? issuer, RevocationSelector selector, CrlReason reason,
        DateTimeOffset? invalidityDate, string who, TextWriter err)
    {
        bool interactive = ForceInteractiveProgress || (ReferenceEquals(err, Console.Error) && !Console.IsErrorRedirected);
        if (!interactive)
        {
            // Redirected (a log, a pipe, CI): one plain line per committed batch instead of a live bar.
            return registry.RevokeMatching(issuer, selector, reason, invalidityDate, who, new InlineProgress(p =>
                err.WriteLine(string.Create(CultureInfo.InvariantCulture, $"progress: {p.Done}/{p.Total} revoked ({(p.Total == 0 ? 100 : p.Done * 100 / p.Total)}%)"))));
        }

        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(err),
            Interactive = InteractionSupport.Yes,
            Ansi = AnsiSupport.Yes,
        });
        BulkRevokeResult? result = null;
        console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("revoking " + Markup.Escape(selector.ToString()), maxValue: 1);
                result = registry.RevokeMatching(issuer, selector, reason, invalidityDate, who, new InlineProgress(p =>
                {
                    task.MaxValue = Math.Max(1, p.Total);
                    task.Value = p.Done;
                    ctx.Refresh();
                }));
                task.Value = task.MaxValue;
            });
        return result!;
    }

    private sealed class InlineProgress(Action<BulkRevokeProgress> report) : IProgress<BulkRevokeProgress>
    {
        public void Report(BulkRevokeProgress value) => report(value);
    }

    private static bool TryParseTime(string? text, string name, TextWriter err, out DateTimeOffset? value)
    {
        value = null;
        if (string.IsNullOrEmpty(text))
        {
            return true;
        }

        if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var parsed))
        {
            err.WriteLine($"error: {name} '{text}' is not an ISO 8601 time (e.g. 2026-11-20T08:00:00Z)");
            return false;
        }

        value = parsed;
        return true;
    }

    private static string? ResolveIssuer(MirrorCaOptions options, string? issuer)
    {
        if (issuer is not null && options.Factories.FirstOrDefault(f => f.FactoryId == issuer) is { } configured)
        {
            using var ca = X509CertificateLoader.LoadCertificateFromFile(configured.IssuingCa.Certificate);
            return Convert.ToHexString(IssuerHashes.KeyHash(ca));
        }

        return issuer;
    }

    private static Command Import()
    {
        var config = ConfigOption();
        var input = new Option<string>("--in") { Required = true, Description = "Bundle file written by FactoryCa export" };
        var receiptOut = new Option<string?>("--receipt-out") { Description = "Where to write the mirror receipt (default: the bundle path + .receipt)" };
        var cmd = new Command("import", "Verify and apply an air-gap bundle exactly as a network sync would; write the receipt to carry back");
        cmd.Options.Add(config);
        cmd.Options.Add(input);
        cmd.Options.Add(receiptOut);
        cmd.SetAction(async (parseResult, ct) =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var err = parseResult.InvocationConfiguration.Error;
            try
            {
                var options = LoadOptions(parseResult.GetRequiredValue(config));
                using var registry = new MirrorRegistry(options.RegistryPath, TimeProvider.System);
                var importer = MirrorSyncServices.CreateImporter(options, registry, TimeProvider.System, null);
                string path = parseResult.GetRequiredValue(input);
                var r = await importer.ImportAsync(path, ct).ConfigureAwait(false);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{r.Outcome}: factory {r.FactoryId} journal {r.JournalIdHex} bundle seqs {r.FirstSeq}..{r.LastSeq}; mirror head seq {r.HeadSeq}; {r.EntriesApplied} entries applied"));
                if (r.Outcome == OfflinePki.Sync.ImportOutcome.HeldPending)
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"held until seqs {r.HeadSeq + 1}..{r.FirstSeq - 1} arrive (by sync or import)"));
                }

                if (r.Receipt is not null)
                {
                    string receiptPath = parseResult.GetValue(receiptOut) ?? path + ".receipt";
                    await File.WriteAllBytesAsync(receiptPath, Google.Protobuf.MessageExtensions.ToByteArray(r.Receipt), ct).ConfigureAwait(false);
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"receipt for seq {r.Receipt.Seq} written to {receiptPath}"));
                }

                return 0;
            }
            catch (Exception ex) when (ex is OfflinePki.Sync.ExportBundleException or DatabaseSchemaException or OptionsValidationException or FileNotFoundException)
            {
                err.WriteLine("error: " + ex.Message);
                return 1;
            }
        });
        return cmd;
    }

    private static Command ReleaseHold()
    {
        var config = ConfigOption();
        var serial = new Option<string>("--serial") { Required = true, Description = "Serial (hex) of a certificate revoked with certificateHold" };
        var factory = new Option<string?>("--factory") { Description = "Factory id; needed only if the serial exists under several issuers" };
        var actor = new Option<string?>("--actor") { Description = "Who releases (recorded); default cli:$USER" };
        var cmd = new Command("release-hold", "Release a certificateHold: the certificate is valid again and appears in the next delta CRL as removeFromCRL");
        foreach (var o in new Option[] { config, serial, factory, actor })
        {
            cmd.Options.Add(o);
        }

        cmd.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var err = parseResult.InvocationConfiguration.Error;
            byte[] serialBytes;
            var serialText = parseResult.GetRequiredValue(serial);
            try
            {
                serialBytes = SerialNumber.FromHex(serialText);
            }
            catch (Exception ex) when (ex is FormatException or ArgumentException)
            {
                err.WriteLine($"error: --serial '{serialText}' is not a positive hex serial of at most 20 octets: {ex.Message}");
                return 2;
            }

            try
            {
                var options = LoadOptions(parseResult.GetRequiredValue(config));
                using var registry = new MirrorRegistry(options.RegistryPath, TimeProvider.System);
                var result = registry.ReleaseHold(ResolveIssuer(options, parseResult.GetValue(factory)), serialBytes, parseResult.GetValue(actor) ?? "cli:" + Environment.UserName);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"OK released hold: serial {SerialNumber.ToHex(result.Serial)} factory {result.FactoryId ?? "?"} device {result.DeviceId} at {result.ReleasedAt:yyyy-MM-ddTHH:mm:ssZ}"));
                return 0;
            }
            catch (Exception ex) when (ex is RevocationException or ArgumentException or DatabaseSchemaException or OptionsValidationException or FileNotFoundException)
            {
                err.WriteLine("error: " + ex.Message);
                return 1;
            }
        });
        return cmd;
    }

    private static Command Audit()
    {
        var cmd = new Command("audit", "The mirror's append-only, hash-chained audit log of revocations and releases");
        var verifyConfig = ConfigOption();
        var verify = new Command("verify", "Recompute the SHA-256 chain of the audit log; exit 0 when intact, 3 when broken");
        verify.Options.Add(verifyConfig);
        verify.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var err = parseResult.InvocationConfiguration.Error;
            try
            {
                var options = LoadOptions(parseResult.GetRequiredValue(verifyConfig));
                using var registry = new MirrorRegistry(options.RegistryPath, TimeProvider.System);
                var v = registry.VerifyAudit();
                if (!v.Ok)
                {
                    err.WriteLine($"error: audit log BROKEN after {v.Records} good record(s): {v.Error}");
                    return 3;
                }

                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"OK audit log intact: {v.Records} record(s), head {Convert.ToHexStringLower(v.HeadHash)}"));
                return 0;
            }
            catch (Exception ex) when (ex is DatabaseSchemaException or OptionsValidationException or FileNotFoundException)
            {
                err.WriteLine("error: " + ex.Message);
                return 1;
            }
        });

        var listConfig = ConfigOption();
        var fromSeq = new Option<long>("--from-seq") { DefaultValueFactory = _ => 1, Description = "First record" };
        var max = new Option<int>("--max") { DefaultValueFactory = _ => 100, Description = "At most this many records" };
        var list = new Command("list", "Print audit records (seq, time, actor, action, detail)");
        list.Options.Add(listConfig);
        list.Options.Add(fromSeq);
        list.Options.Add(max);
        list.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            try
            {
                var options = LoadOptions(parseResult.GetRequiredValue(listConfig));
                using var registry = new MirrorRegistry(options.RegistryPath, TimeProvider.System);
                foreach (var r in registry.ReadAudit(parseResult.GetValue(fromSeq), Math.Max(1, parseResult.GetValue(max))))
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{r.Seq} {r.At:yyyy-MM-ddTHH:mm:ssZ} {r.Actor} {r.Action} {r.Detail}"));
                }

                return 0;
            }
            catch (Exception ex) when (ex is DatabaseSchemaException or OptionsValidationException or FileNotFoundException)
            {
                parseResult.InvocationConfiguration.Error.WriteLine("error: " + ex.Message);
                return 1;
            }
        });
        cmd.Subcommands.Add(verify);
        cmd.Subcommands.Add(list);
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

                foreach (var p in MirrorSyncServices.CreateImporter(options, registry, TimeProvider.System, null).Pending())
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"pending bundle {Path.GetFileName(p.Path)}: factory {p.FactoryId} journal {p.JournalIdHex} seqs {p.FirstSeq}..{p.LastSeq} held; mirror head {p.MirrorHeadSeq}, missing seqs {p.MirrorHeadSeq + 1}..{p.FirstSeq - 1}"));
                }

                foreach (var a in new MirrorAlertStore(options.RegistryPath).Recent(10))
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ALERT {a.Time:O} {a.Summary} (journal {a.JournalIdHex}): {a.Detail}"));
                }

                WriteDeviceStatus(output, registry);

                return 0;
            }
            catch (Exception ex) when (ex is DatabaseSchemaException or OptionsValidationException or FileNotFoundException)
            {
                parseResult.InvocationConfiguration.Error.WriteLine("error: " + ex.Message);
                return 1;
            }
        });
        return cmd;
    }

    /// <summary>Devices per state and the cloned-key reports (issue 6) for the status verb.</summary>
    private static void WriteDeviceStatus(TextWriter output, MirrorRegistry registry)
    {
        var states = registry.CountDevicesByState();
        if (states.Count > 0)
        {
            output.WriteLine("devices: " + string.Join(", ", Enum.GetValues<DeviceRegistryState>().Select(st =>
                string.Create(CultureInfo.InvariantCulture, $"{st.ToString().ToLowerInvariant()} {states.GetValueOrDefault(st)}"))));
        }

        foreach (var d in registry.RecentDeviceReports(10))
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ALERT {d.At:O} {d.Summary} (journal {d.JournalIdHex}): {d.Reason}"));
        }
    }
}
