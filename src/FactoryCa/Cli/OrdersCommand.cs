using System.CommandLine;

namespace OfflinePki.FactoryCa;

/// <summary><c>FactoryCa orders --config F</c>: the running daemon's accepted orders.</summary>
public static class OrdersCommand
{
    /// <summary>The <c>orders</c> command.</summary>
    public static Command Create() => FactoryCli.ConfigCommand("orders", "List the running daemon's accepted production orders: quantity, issued, in flight, remaining", RunAsync);

    /// <summary>orders: lists the running daemon's accepted orders with issued, in-flight and remaining units.</summary>
    public static async Task<int> RunAsync(string configPath, CancellationToken cancellationToken)
    {
        using var client = ControlEndpoints.CreateClient(FactoryCli.DataDirectoryOf(configPath));
        return await FactoryCli.CallAsync(() => client.GetAsync(new Uri("control/orders", UriKind.Relative), cancellationToken), "orders").ConfigureAwait(false);
    }
}
