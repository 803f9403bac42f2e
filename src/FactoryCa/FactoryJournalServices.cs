using System.Security.Cryptography;
using System.Text.Json;
using OfflinePki.Issuance;
using OfflinePki.Journal;
using OfflinePki.Journal.Index;

namespace OfflinePki.FactoryCa;

/// <summary>
/// The serial-reuse check (RFC 5280 §4.1.2.2: unique per CA) over the journal-derived index, plus the serials
/// issued since the index last caught up. The index lags the journal by at most one catch-up interval; the
/// in-memory sets cover that window, and each catch-up through <see cref="CatchUp"/> drops the serials it has indexed,
/// so memory does not grow with the daemon's uptime.
/// </summary>
public sealed class IndexedIssuedSerials(FactoryIndex index) : IIssuedSerials, IIssuedSerialsRecorder
{
    private readonly Lock _gate = new();
    private readonly Lock _catchUp = new();
    private HashSet<string> _recent = new(StringComparer.Ordinal);
    private HashSet<string> _indexing = new(StringComparer.Ordinal);

    /// <summary>Serials held in memory, not yet known to be in the index (for tests and status).</summary>
    public int InMemory
    {
        get
        {
            lock (_gate)
            {
                return _recent.Count + _indexing.Count;
            }
        }
    }

    /// <inheritdoc />
    /// <remarks>The serials recorded since the last catch-up, then those a running catch-up is indexing, then the index.</remarks>
    public bool Contains(byte[] serial)
    {
        string hex = Convert.ToHexString(serial);
        lock (_gate)
        {
            if (_recent.Contains(hex) || _indexing.Contains(hex))
            {
                return true;
            }
        }

        return index.ContainsSerial(serial);
    }

    /// <inheritdoc />
    /// <remarks>Called once the certificate's journal entry is durable, so the next catch-up indexes it.</remarks>
    public void Record(byte[] serial)
    {
        string hex = Convert.ToHexString(serial);
        lock (_gate)
        {
            _recent.Add(hex);
        }
    }

    /// <summary>
    /// Brings the index up to the journal head (<see cref="FactoryIndex.CatchUp"/>), then forgets the in-memory serials
    /// recorded before the call: their entries were durable before it began, so the index now holds them.
    /// </summary>
    /// <returns>The number of journal entries indexed.</returns>
    /// <exception cref="JournalUnavailableException">The journal cannot be read; the in-memory serials are kept.</exception>
    /// <exception cref="Microsoft.Data.Sqlite.SqliteException">The index cannot be written; the in-memory serials are kept.</exception>
    public long CatchUp(IJournalReader journal)
    {
        lock (_catchUp)
        {
            lock (_gate)
            {
                _indexing.UnionWith(_recent);
                _recent = new HashSet<string>(StringComparer.Ordinal);
            }

            long applied = index.CatchUp(journal);
            lock (_gate)
            {
                _indexing = new HashSet<string>(StringComparer.Ordinal);
            }

            return applied;
        }
    }
}

/// <summary>Keeps the SQLite index caught up with the journal (every 2 s); the journal stays the source of truth.</summary>
public sealed class FactoryIndexCatchUpService(IndexedIssuedSerials serials, IJournalReader journal, TimeProvider time, ILogger<FactoryIndexCatchUpService> logger)
    : BackgroundService
{
    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(2), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    serials.CatchUp(journal);
                }
                catch (Exception ex) when (ex is JournalUnavailableException or Microsoft.Data.Sqlite.SqliteException or IOException)
                {
                    logger.LogWarning("index catch-up failed (the journal is unaffected; rebuild-index can recreate it): {Reason}", ex.Message);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}

/// <summary>The policy digest recorded in the genesis entry: SHA-256 of the station list and profile, as JSON.</summary>
public static class PolicyDigest
{
    /// <summary>SHA-256 (32 bytes) of the JSON form of FactoryCa:Stations, the profiles (FactoryCa:Profile or :Profiles, :DefaultProfile) and the EST labels.</summary>
    public static byte[] Of(FactoryCaOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var json = JsonSerializer.SerializeToUtf8Bytes(new { options.FactoryId, options.Stations, options.Profile, options.Profiles, options.DefaultProfile, options.Est.Labels });
        return SHA256.HashData(json);
    }
}
