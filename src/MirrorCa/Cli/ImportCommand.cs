using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Options;
using OfflinePki.Asn1;
using OfflinePki.Registry;
using OfflinePki.Revocation;
using OfflinePki.Schema;

namespace OfflinePki.MirrorCa.Cli;

/// <summary><c>MirrorCa import</c>: verifies and applies an air-gap bundle, and writes the receipt to carry back.</summary>
public static class ImportCommand
{
    /// <summary>The <c>import</c> command.</summary>
    public static Command Create()
    {
        var config = MirrorCaCli.ConfigOption();
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
                var options = MirrorCaCli.LoadOptions(parseResult.GetRequiredValue(config));
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
}
