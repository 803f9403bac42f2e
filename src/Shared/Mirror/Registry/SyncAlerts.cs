using System.Globalization;
using Microsoft.Data.Sqlite;
using OfflinePki.Registry.Schema;
using OfflinePki.Schema;

namespace OfflinePki.Registry;

/// <summary>A rejected sync push, as the mirror records it for operators.</summary>
/// <param name="Time">When the push was rejected (UTC).</param>
/// <param name="FactoryId">Factory the push claimed (from its metadata).</param>
/// <param name="JournalIdHex">Journal id, lower-case hex (32 characters).</param>
/// <param name="Seq">The seq of the offending entry (as the entry claims it, so possibly 0); null when the push was refused for no one entry (e.g. permission).</param>
/// <param name="Fault">The fault in words ("fork", "bad hash", "permission denied", ...).</param>
/// <param name="Detail">The full error message sent to the factory; no secrets.</param>
public sealed record SyncAlert(DateTimeOffset Time, string FactoryId, string JournalIdHex, ulong? Seq, string Fault, string Detail)
{
    /// <summary>The one-line operator summary, e.g. "sync blocked: fork at seq 1042 from factory F1".</summary>
    public string Summary => Seq is { } seq
        ? string.Create(CultureInfo.InvariantCulture, $"sync blocked: {Fault} at seq {seq} from factory {FactoryId}")
        : string.Create(CultureInfo.InvariantCulture, $"sync blocked: {Fault} from factory {FactoryId}");
}

/// <summary>Where the sync applier records rejected pushes.</summary>
public interface ISyncAlertSink
{
    /// <summary>Records one alert. Must not throw for storage trouble it can log instead.</summary>
    /// <param name="alert">The alert.</param>
    void Record(SyncAlert alert);
}

/// <summary>
/// A small persistent table of sync alerts (<c>sync_alerts</c>) in the mirror's registry file, kept apart from the
/// journal and revocation tables so that recording an alert never touches applied data. The <c>status</c> verb lists them.
/// </summary>
public sealed class MirrorAlertStore : ISyncAlertSink
{
    private readonly string _connectionString;

    /// <summary>Opens the alerts of the registry file at <paramref name="databasePath"/>, migrating its schema forward (creating it if needed).</summary>
    /// <param name="databasePath">The registry's SQLite file (the same file as <see cref="MirrorRegistry"/>); its directory is created if missing.</param>
    /// <exception cref="ArgumentException"><paramref name="databasePath"/> is empty.</exception>
    /// <exception cref="SqliteException">The file cannot be opened.</exception>
    /// <exception cref="DatabaseSchemaException">The file's schema is newer than this build knows or it is not a registry (nothing
    /// was written), or a migration failed.</exception>
    public MirrorAlertStore(string databasePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(databasePath);
        var dir = Path.GetDirectoryName(Path.GetFullPath(databasePath));
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
        }

        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path.GetFullPath(databasePath),
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
        using var c = Open();
        try
        {
            // The table is part of the registry's schema: the same migrations, the same refusal of a newer file.
            RegistrySchema.CreateMigrator().Migrate(c, Path.GetFullPath(databasePath));
        }
        catch (DatabaseSchemaException)
        {
            SqliteConnection.ClearPool(c);
            throw;
        }
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentNullException"><paramref name="alert"/> is null.</exception>
    /// <exception cref="SqliteException">The file cannot be written.</exception>
    public void Record(SyncAlert alert)
    {
        ArgumentNullException.ThrowIfNull(alert);
        using var c = Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "INSERT INTO sync_alerts (time_unix_micros, factory_id, journal_id, seq, fault, detail) VALUES ($t, $f, $j, $s, $fault, $d)";
        cmd.Parameters.AddWithValue("$t", alert.Time.ToUnixTimeMilliseconds() * 1000);
        cmd.Parameters.AddWithValue("$f", alert.FactoryId);
        cmd.Parameters.AddWithValue("$j", alert.JournalIdHex);
        cmd.Parameters.AddWithValue("$s", alert.Seq is { } seq ? unchecked((long)seq) : DBNull.Value);
        cmd.Parameters.AddWithValue("$fault", alert.Fault);
        cmd.Parameters.AddWithValue("$d", alert.Detail);
        cmd.ExecuteNonQuery();
    }

    /// <summary>The most recent alerts, newest first.</summary>
    /// <param name="max">At most this many (≥ 1).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="max"/> is below 1.</exception>
    public IReadOnlyList<SyncAlert> Recent(int max = 20)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        using var c = Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT time_unix_micros, factory_id, journal_id, seq, fault, detail FROM sync_alerts ORDER BY id DESC LIMIT $n";
        cmd.Parameters.AddWithValue("$n", max);
        using var r = cmd.ExecuteReader();
        var list = new List<SyncAlert>();
        while (r.Read())
        {
            list.Add(new SyncAlert(DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(0) / 1000), r.GetString(1), r.GetString(2),
                r.IsDBNull(3) ? null : unchecked((ulong)r.GetInt64(3)), r.GetString(4), r.GetString(5)));
        }

        return list;
    }

    private SqliteConnection Open()
    {
        var c = new SqliteConnection(_connectionString);
        c.Open();
        return c;
    }
}
