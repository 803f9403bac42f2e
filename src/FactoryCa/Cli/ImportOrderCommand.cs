using System.CommandLine;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OfflinePki.Journal;
using OfflinePki.Journal.Index;
using OfflinePki.Sync;

namespace OfflinePki.FactoryCa;

/// <summary><c>FactoryCa import-order ORDER</c>: sends a signed production order to the daemon (or journals it offline).</summary>
public static class ImportOrderCommand
{
    /// <summary>The <c>import-order</c> command.</summary>
    public static Command Create()
    {
        var config = FactoryCli.ConfigOption();
        var orderFile = new Argument<string>("order") { Description = "signed order file (DER CMS, see ops/sign-order.sh)" };
        var command = new Command("import-order", "Send a signed production order to the running daemon, which verifies and journals it (OrderAccepted)");
        command.Options.Add(config);
        command.Arguments.Add(orderFile);
        command.SetAction((parse, ct) => RunAsync(parse.GetValue(config)!, parse.GetValue(orderFile)!, ct));
        return command;
    }

    /// <summary>import-order: sends a signed production order to the running daemon, which verifies and journals it.</summary>
    public static async Task<int> RunAsync(string configPath, string orderPath, CancellationToken cancellationToken)
    {
        byte[] bytes;
        try
        {
            bytes = await File.ReadAllBytesAsync(orderPath, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"cannot read order file '{orderPath}': {ex.Message}");
            return 2;
        }

        string data = FactoryCli.DataDirectoryOf(configPath);
        if (!await FactoryCli.DaemonRunningAsync(data, cancellationToken).ConfigureAwait(false))
        {
            return await ImportOrderOfflineAsync(configPath, bytes, cancellationToken).ConfigureAwait(false);
        }

        using var client = ControlEndpoints.CreateClient(data);
        using var content = new ByteArrayContent(bytes);
        return await FactoryCli.CallAsync(() => client.PostAsync(new Uri("control/order", UriKind.Relative), content, cancellationToken), "import-order").ConfigureAwait(false);
    }

    /// <summary>
    /// import-order with the daemon stopped (an air-gapped factory between shifts): opens the journal itself, verifies
    /// the order and journals OrderAccepted exactly as the daemon would. The journal writer lock keeps a daemon that
    /// starts meanwhile out.
    /// </summary>
    private static async Task<int> ImportOrderOfflineAsync(string configPath, byte[] signedOrder, CancellationToken cancellationToken)
    {
        Microsoft.AspNetCore.Builder.WebApplication app;
        try
        {
            app = FactoryCaApp.Build(configPath, services => services.Configure<Microsoft.Extensions.Logging.LoggerFilterOptions>(
                o => o.MinLevel = Microsoft.Extensions.Logging.LogLevel.Warning));
        }
        catch (OptionsValidationException ex)
        {
            return FactoryCli.ConfigError(ex);
        }
        catch (Exception ex) when (ex is FileNotFoundException or JournalUnavailableException or Keys.SigningKeyUnavailableException or IOException)
        {
            Console.Error.WriteLine("import-order: cannot open the factory (is the daemon starting on this data directory?): " + ex.Message);
            return 2;
        }

        await using (app.ConfigureAwait(false))
        {
            try
            {
                var r = await app.Services.GetRequiredService<Orders.OrderBook>().AcceptAsync(signedOrder, "file", cancellationToken).ConfigureAwait(false);
                Console.WriteLine(r.Accepted
                    ? $"OK accepted (daemon stopped, journaled directly): order {r.OrderId} quantity {r.Quantity}, journal seq {r.JournalSeq}"
                    : $"OK already accepted: order {r.OrderId} quantity {r.Quantity}, issued {r.Issued}");
                return 0;
            }
            catch (Orders.OrderRejectedException ex)
            {
                Console.Error.WriteLine($"import-order: order refused ({ex.Fault}): {ex.Message}");
                return 1;
            }
            catch (JournalUnavailableException ex)
            {
                Console.Error.WriteLine("import-order: the journal is unavailable, order not accepted: " + ex.Message);
                return 1;
            }
        }
    }
}
