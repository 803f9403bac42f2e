using System.CommandLine;

namespace OfflinePki.FactoryCa;

/// <summary><c>FactoryCa sync-now --config F</c>: asks the running daemon to sync now. Exit codes: 0 synced, 1 failed or no daemon.</summary>
public static class SyncNowCommand
{
    /// <summary>The <c>sync-now</c> command.</summary>
    public static Command Create() => FactoryCli.ConfigCommand("sync-now", "Ask the running daemon to sync its journal to the mirror now, and print the result", RunAsync);

    /// <summary>sync-now: POST /control/sync on the daemon's control socket.</summary>
    public static async Task<int> RunAsync(string configPath, CancellationToken cancellationToken)
    {
        using var client = ControlEndpoints.CreateClient(FactoryCli.DataDirectoryOf(configPath));
        return await FactoryCli.CallAsync(() => client.PostAsync(new Uri("control/sync", UriKind.Relative), null, cancellationToken), "sync").ConfigureAwait(false);
    }
}
