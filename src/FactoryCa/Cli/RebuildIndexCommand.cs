using System.CommandLine;
using OfflinePki.Journal;
using OfflinePki.Journal.Index;

namespace OfflinePki.FactoryCa;

/// <summary><c>FactoryCa rebuild-index --config F</c>: rebuilds the SQLite index from the journal (daemon stopped).</summary>
public static class RebuildIndexCommand
{
    /// <summary>The <c>rebuild-index</c> command.</summary>
    public static Command Create() => FactoryCli.ConfigCommand("rebuild-index", "Delete and rebuild the local SQLite index from the journal (daemon stopped)", RunAsync);

    /// <summary>rebuild-index: deletes the index and replays the journal into a new one. The daemon must be stopped.</summary>
    public static async Task<int> RunAsync(string configPath, CancellationToken cancellationToken)
    {
        string data = FactoryCli.DataDirectoryOf(configPath);
        using (var probe = ControlEndpoints.CreateClient(data))
        {
            try
            {
                using var r = await probe.GetAsync(new Uri("control/status", UriKind.Relative), cancellationToken).ConfigureAwait(false);
                Console.Error.WriteLine("the FactoryCa daemon is running on this data directory; stop it before rebuilding the index");
                return 1;
            }
            catch (HttpRequestException)
            {
                // Not running: go on.
            }
        }

        var reader = JournalFileReader.Open(Path.Combine(data, "journal", "journal.log"));
        using var index = FactoryIndex.Rebuild(Path.Combine(data, "index.db"), reader);
        Console.WriteLine($"index rebuilt from the journal: applied seq {index.AppliedSeq}, certificates {index.CountIssued()}");
        return 0;
    }
}
