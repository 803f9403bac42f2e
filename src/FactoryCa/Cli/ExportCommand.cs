using System.CommandLine;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OfflinePki.Journal;
using OfflinePki.Journal.Index;
using OfflinePki.Sync;

namespace OfflinePki.FactoryCa;

/// <summary><c>FactoryCa export</c>: writes a signed air-gap bundle of a seq range.</summary>
public static class ExportCommand
{
    /// <summary>The <c>export</c> command.</summary>
    public static Command Create()
    {
        var config = FactoryCli.ConfigOption();
        var fromSeq = new Option<ulong>("--from") { Description = "first seq", DefaultValueFactory = _ => 1 };
        var toSeq = new Option<ulong>("--to") { Description = "last seq (extended to the next checkpoint; 0: the head)", DefaultValueFactory = _ => 0 };
        var outFile = new Option<string>("--out") { Description = "bundle file to write", Required = true };
        var command = new Command("export", "Write a signed air-gap bundle of a seq range (asks a running daemon to checkpoint first)");
        foreach (var option in new Option[] { config, fromSeq, toSeq, outFile })
        {
            command.Options.Add(option);
        }

        command.SetAction((parse, ct) => RunAsync(parse.GetValue(config)!, parse.GetValue(fromSeq), parse.GetValue(toSeq), parse.GetValue(outFile)!, ct));
        return command;
    }

    /// <summary>
    /// export: writes a signed air-gap bundle of seqs <paramref name="from"/>..<paramref name="to"/> (0: the head),
    /// extended to the next checkpoint. With the daemon running it is first asked (control socket) to checkpoint.
    /// </summary>
    public static async Task<int> RunAsync(string configPath, ulong from, ulong to, string outPath, CancellationToken cancellationToken)
    {
        var o = FactoryCli.LoadOptions(configPath);
        using (var control = ControlEndpoints.CreateClient(o.DataDirectory))
        {
            try
            {
                using var r = await control.PostAsync(new Uri("control/checkpoint", UriKind.Relative), null, cancellationToken).ConfigureAwait(false);
                if (!r.IsSuccessStatusCode)
                {
                    Console.Error.Write(await r.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
                    return 1;
                }
            }
            catch (HttpRequestException)
            {
                // The daemon is not running: read the journal as it is (its shutdown wrote a checkpoint).
            }
        }

        var reader = JournalFileReader.Open(Path.Combine(o.DataDirectory, "journal", "journal.log"));
        string? passphrase = o.JournalSigner.Key.PassphraseEnvironmentVariable is { Length: > 0 } v ? Environment.GetEnvironmentVariable(v) : null;
        using var key = OfflinePki.Keys.SoftwareKeyLoader.Load(o.JournalSigner.Key.File, passphrase);
        using var cert = X509CertificateLoader.LoadCertificateFromFile(o.JournalSigner.Certificate);
        string temp = outPath + ".tmp";
        try
        {
            ExportBundleInfo info;
            using (var output = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            {
                info = ExportBundleWriter.Write(reader, from, to, key, cert.RawData, output, TimeProvider.System);
                output.Flush(flushToDisk: true);
            }

            File.Move(temp, outPath, overwrite: true);
            Console.WriteLine($"exported seqs {info.FirstSeq}..{info.LastSeq} ({info.Entries} entries) to {outPath}");
            return 0;
        }
        catch (ExportBundleException ex)
        {
            File.Delete(temp);
            Console.Error.WriteLine("export failed: " + ex.Message);
            return 1;
        }
    }
}
