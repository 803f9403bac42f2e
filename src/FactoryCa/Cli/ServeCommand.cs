using System.CommandLine;
using Microsoft.Extensions.Options;

namespace OfflinePki.FactoryCa;

/// <summary><c>FactoryCa serve --config F</c>: runs the daemon until SIGTERM/Ctrl-C. Exit codes: 0 stopped, 1 index refused, 2 bad config.</summary>
public static class ServeCommand
{
    /// <summary>The <c>serve</c> command.</summary>
    public static Command Create() => FactoryCli.ConfigCommand("serve", "Run the EST enrollment service, the journal and the scheduled sync", RunAsync);

    /// <summary>serve: runs the daemon until SIGTERM/Ctrl-C.</summary>
    public static async Task<int> RunAsync(string configPath, CancellationToken cancellationToken)
    {
        try
        {
            await using var app = FactoryCaApp.Build(configPath);
            await app.RunAsync(cancellationToken).ConfigureAwait(false);
            return 0;
        }
        catch (OptionsValidationException ex)
        {
            return FactoryCli.ConfigError(ex);
        }
        catch (OfflinePki.Schema.DatabaseSchemaException ex)
        {
            // A newer (or foreign) index.db: one line naming the file and versions, and the remedy (rebuild-index).
            Console.Error.WriteLine("error: " + ex.Message);
            return 1;
        }
    }
}
