using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Options;
using OfflinePki.Asn1;
using OfflinePki.Registry;
using OfflinePki.Revocation;
using OfflinePki.Schema;

namespace OfflinePki.MirrorCa.Cli;

/// <summary><c>MirrorCa audit verify|list</c>: the mirror's hash-chained audit log.</summary>
public static class AuditCommand
{
    /// <summary>The <c>audit</c> command.</summary>
    public static Command Create()
    {
        var cmd = new Command("audit", "The mirror's append-only, hash-chained audit log of revocations and releases");
        var verifyConfig = MirrorCaCli.ConfigOption();
        var verify = new Command("verify", "Recompute the SHA-256 chain of the audit log; exit 0 when intact, 3 when broken");
        verify.Options.Add(verifyConfig);
        verify.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var err = parseResult.InvocationConfiguration.Error;
            try
            {
                var options = MirrorCaCli.LoadOptions(parseResult.GetRequiredValue(verifyConfig));
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

        var listConfig = MirrorCaCli.ConfigOption();
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
                var options = MirrorCaCli.LoadOptions(parseResult.GetRequiredValue(listConfig));
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
}
