using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Options;
using OfflinePki.Asn1;
using OfflinePki.Registry;
using OfflinePki.Revocation;
using OfflinePki.Schema;

namespace OfflinePki.MirrorCa.Cli;

/// <summary><c>MirrorCa status</c>: journals, heads, certificate, revocation and device counts.</summary>
public static class StatusCommand
{
    /// <summary>The <c>status</c> command.</summary>
    public static Command Create()
    {
        var config = MirrorCaCli.ConfigOption();
        var cmd = new Command("status", "Show journals, heads, certificate and revocation counts");
        cmd.Options.Add(config);
        cmd.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            try
            {
                var options = MirrorCaCli.LoadOptions(parseResult.GetRequiredValue(config));
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
