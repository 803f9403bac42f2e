using System.CommandLine;
using Spectre.Console;
using System.Globalization;
using Microsoft.Extensions.Options;
using OfflinePki.Asn1;
using OfflinePki.Registry;
using OfflinePki.Revocation;
using OfflinePki.Schema;

namespace OfflinePki.MirrorCa.Cli;

/// <summary><c>MirrorCa revoke</c>: revokes by serial, or every certificate of a device, station, batch or factory.</summary>
public static class RevokeCommand
{
    /// <summary>The <c>revoke</c> command.</summary>
    public static Command Create()
    {
        var config = MirrorCaCli.ConfigOption();
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

                var options = MirrorCaCli.LoadOptions(parseResult.GetRequiredValue(config));
                var issuer = MirrorCaCli.ResolveIssuer(options, parseResult.GetValue(factory));

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
}
