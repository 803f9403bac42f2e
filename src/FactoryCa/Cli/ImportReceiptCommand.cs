using System.CommandLine;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OfflinePki.Journal;
using OfflinePki.Journal.Index;
using OfflinePki.Sync;

namespace OfflinePki.FactoryCa;

/// <summary><c>FactoryCa import-receipt --in R</c>: verifies and stores a mirror receipt carried back from an air-gapped mirror.</summary>
public static class ImportReceiptCommand
{
    /// <summary>The <c>import-receipt</c> command.</summary>
    public static Command Create()
    {
        var config = FactoryCli.ConfigOption();
        var inFile = new Option<string>("--in") { Description = "receipt file written by MirrorCa import", Required = true };
        var command = new Command("import-receipt", "Verify and store a mirror receipt carried back from an air-gapped mirror");
        foreach (var option in new Option[] { config, inFile })
        {
            command.Options.Add(option);
        }

        command.SetAction((parse, ct) => RunAsync(parse.GetValue(config)!, parse.GetValue(inFile)!, ct));
        return command;
    }

    /// <summary>import-receipt: verifies a mirror receipt file and stores it (through the daemon when it runs).</summary>
    public static async Task<int> RunAsync(string configPath, string inPath, CancellationToken cancellationToken)
    {
        var o = FactoryCli.LoadOptions(configPath);
        var bytes = await File.ReadAllBytesAsync(inPath, cancellationToken).ConfigureAwait(false);
        using (var control = ControlEndpoints.CreateClient(o.DataDirectory))
        {
            try
            {
                using var content = new ByteArrayContent(bytes);
                using var r = await control.PostAsync(new Uri("control/receipt", UriKind.Relative), content, cancellationToken).ConfigureAwait(false);
                string body = await r.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                (r.IsSuccessStatusCode ? Console.Out : Console.Error).WriteLine(body.TrimEnd());
                return r.IsSuccessStatusCode ? 0 : 1;
            }
            catch (HttpRequestException)
            {
                // Not running: store it directly.
            }
        }

        try
        {
            var receipt = OfflinePki.Sync.V1.MirrorReceipt.Parser.ParseFrom(bytes);
            var reader = JournalFileReader.Open(Path.Combine(o.DataDirectory, "journal", "journal.log"));
            var store = new MirrorReceiptStore(Path.Combine(o.DataDirectory, MirrorReceiptStore.FileName));
            var book = new MirrorReceiptBook(new MirrorReceiptVerifier(X509CertificateLoader.LoadCertificateFromFile(o.RootCertificate)), store, reader);
            bool advanced = book.Accept(receipt);
            Console.WriteLine($"receipt for seq {receipt.Seq} {(advanced ? "stored" : "already covered")}; confirmed seq {store.ConfirmedSeq}");
            return 0;
        }
        catch (Exception ex) when (ex is MirrorReceiptException or Google.Protobuf.InvalidProtocolBufferException)
        {
            Console.Error.WriteLine("receipt refused: " + ex.Message);
            return 1;
        }
    }
}
