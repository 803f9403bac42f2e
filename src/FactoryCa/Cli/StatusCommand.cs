using System.CommandLine;

namespace OfflinePki.FactoryCa;

/// <summary><c>FactoryCa status --config F</c>: the running daemon's status. Exit codes: 0 printed, 1 failed or no daemon.</summary>
public static class StatusCommand
{
    /// <summary>The <c>status</c> command.</summary>
    public static Command Create() => FactoryCli.ConfigCommand("status", "Print the running daemon's journal, index and sync status", RunAsync);

    /// <summary>status: GET /control/status on the daemon's control socket.</summary>
    public static async Task<int> RunAsync(string configPath, CancellationToken cancellationToken)
    {
        using var client = ControlEndpoints.CreateClient(FactoryCli.DataDirectoryOf(configPath));
        return await FactoryCli.CallAsync(() => client.GetAsync(new Uri("control/status", UriKind.Relative), cancellationToken), "status").ConfigureAwait(false);
    }
}
