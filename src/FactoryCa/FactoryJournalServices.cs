using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using OfflinePki.Issuance;
using OfflinePki.Journal;
using OfflinePki.Journal.Index;

namespace OfflinePki.FactoryCa;

/// <summary>
/// The serial-reuse check (RFC 5280 §4.1.2.2: unique per CA) over the journal-derived index, plus the serials
/// issued since the index last caught up. The index lags the journal by at most one catch-up interval; the
/// in-memory set covers that window.
/// </summary>
public sealed class IndexedIssuedSerials(FactoryIndex index) : IIssuedSerials, IIssuedSerialsRecorder
{
    private readonly ConcurrentDictionary<string, byte> _recent = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public bool Contains(byte[] serial) => _recent.ContainsKey(Convert.ToHexString(serial)) || index.ContainsSerial(serial);

    /// <inheritdoc />
    public void Record(byte[] serial) => _recent.TryAdd(Convert.ToHexString(serial), 0);
}

/// <summary>Keeps the SQLite index caught up with the journal (every 2 s); the journal stays the source of truth.</summary>
public sealed class FactoryIndexCatchUpService(FactoryIndex index, IJournalReader journal, TimeProvider time, ILogger<FactoryIndexCatchUpService> logger)
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
                    index.CatchUp(journal);
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
