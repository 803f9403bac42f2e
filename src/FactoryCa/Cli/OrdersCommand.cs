using System.CommandLine;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OfflinePki.Journal;
using OfflinePki.Journal.Index;
using OfflinePki.Sync;

namespace OfflinePki.FactoryCa;

/// <summary><c>FactoryCa orders --config F</c>: the running daemon's accepted orders.</summary>
public static class OrdersCommand
{
    /// <summary>The <c>orders</c> command.</summary>
    public static Command Create()
    {
        var config = FactoryCli.ConfigOption();
        var command = new Command("orders", "List the running daemon's accepted production orders: quantity, issued, in flight, remaining");
        foreach (var option in new Option[] { config })
        {
            command.Options.Add(option);
        }

        command.SetAction((parse, ct) => RunAsync(parse.GetValue(config)!, ct));
        return command;
    }

    /// <summary>orders: lists the running daemon's accepted orders with issued, in-flight and remaining units.</summary>
    public static async Task<int> RunAsync(string configPath, CancellationToken cancellationToken)
    {
        using var client = ControlEndpoints.CreateClient(FactoryCli.DataDirectoryOf(configPath));
        return await FactoryCli.CallAsync(() => client.GetAsync(new Uri("control/orders", UriKind.Relative), cancellationToken), "orders").ConfigureAwait(false);
    }
}
