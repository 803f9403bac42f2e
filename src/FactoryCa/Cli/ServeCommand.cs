using System.CommandLine;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OfflinePki.Journal;
using OfflinePki.Journal.Index;
using OfflinePki.Sync;

namespace OfflinePki.FactoryCa;

/// <summary><c>FactoryCa serve --config F</c>: runs the daemon until SIGTERM/Ctrl-C. Exit codes: 0 stopped, 1 index refused, 2 bad config.</summary>
public static class ServeCommand
{
    /// <summary>The <c>serve</c> command.</summary>
    public static Command Create()
    {
        var config = FactoryCli.ConfigOption();
        var command = new Command("serve", "Run the EST enrollment service, the journal and the scheduled sync");
        foreach (var option in new Option[] { config })
        {
            command.Options.Add(option);
        }

        command.SetAction((parse, ct) => RunAsync(parse.GetValue(config)!, ct));
        return command;
    }

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
