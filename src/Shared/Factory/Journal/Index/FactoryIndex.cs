using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Data.Sqlite;
using OfflinePki.Asn1;
using OfflinePki.Journal.Index.Schema;
using OfflinePki.Journal.V1;
using OfflinePki.Schema;

namespace OfflinePki.Journal.Index;

/// <summary>One issued certificate as the factory index holds it.</summary>
/// <param name="SerialHex">Upper-case hex of the serial (DER INTEGER contents, as <see cref="SerialNumber.ToHex"/>).</param>
/// <param name="DeviceId">The device id from the journal entry.</param>
/// <param name="Profile">The certificate profile name.</param>
/// <param name="StationId">The RA station that requested it.</param>
/// <param name="BatchId">Production batch / order, empty if none.</param>
/// <param name="Seq">The journal seq of its entry.</param>
/// <param name="NotAfter">The certificate's notAfter (UTC, whole seconds).</param>
/// <param name="Sha256Hex">Lower-case hex SHA-256 of the certificate DER (its fingerprint).</param>
public sealed record IndexedCertificate(string SerialHex, string DeviceId, string Profile, string StationId, string BatchId, ulong Seq,
    DateTimeOffset NotAfter, string Sha256Hex);

/// <summary>
/// The factory's small local index (brief, "Parts": FactoryCa "a small local index"): issued certificates by serial and
/// by device, in SQLite (WAL). It is never the source of truth: it is derived from the journal by
/// <see cref="CatchUp"/>, and may be deleted and rebuilt at any time with <see cref="Rebuild"/>.
/// </summary>
/// <remarks>Thread-safe: one connection, serialized by a lock (lookups are point queries).</remarks>
public sealed class FactoryIndex : IDisposable
{
    private readonly SqliteConnection _db;
    private readonly Lock _lock = new();
    private readonly SqliteCommand _containsSerial;

    private FactoryIndex(string path, SqliteConnection db)
    {
        Path = path;
        _db = db;

        // Asked once per issuance (the serial-reuse check): prepared once, not parsed per call.
        _containsSerial = db.CreateCommand();
        _containsSerial.CommandText = "SELECT 1 FROM issued WHERE serial = $s";
        _containsSerial.Parameters.Add(new SqliteParameter { ParameterName = "$s" });
        _containsSerial.Prepare();
    }

    /// <summary>The database file path.</summary>
    public string Path { get; }

    /// <summary>What opening did to the schema: from and to versions and the migrations applied (none when current).</summary>
    public SchemaMigrationResult SchemaMigration { get; private init; } = null!;

    /// <summary>The last journal seq applied (0 for a new index).</summary>
    public ulong AppliedSeq
    {
        get
        {
            lock (_lock)
            {
                return ulong.Parse(GetMeta("applied_seq") ?? "0", CultureInfo.InvariantCulture);
            }
        }
    }

    /// <summary>Opens or creates the index database at <paramref name="path"/>, migrating its schema forward (<see cref="FactoryIndexSchema"/>).</summary>
    /// <param name="path">SQLite file path; its directory is created if missing.</param>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty.</exception>
    /// <exception cref="SqliteException">The database cannot be opened or is not SQLite.</exception>
    /// <exception cref="DatabaseSchemaException">Its schema version is newer than this build knows, or it is not an index (nothing
    /// was written: rebuild it with <c>FactoryCa rebuild-index</c>); or a migration failed (rolled back).</exception>
    public static FactoryIndex Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        path = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = false }.ToString());
        try
        {
            db.Open();
            // A newer index (or another file) is refused before the PRAGMAs below write to it.
            var migrator = FactoryIndexSchema.CreateMigrator();
            migrator.Plan(db, path);
            using (var cmd = db.CreateCommand())
            {
                cmd.CommandText = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";
                cmd.ExecuteNonQuery();
            }

            var migration = migrator.Migrate(db, path);
            return new FactoryIndex(path, db) { SchemaMigration = migration };
        }
        catch
        {
            db.Dispose();
            throw;
        }
    }

    /// <summary>Deletes the index at <paramref name="path"/> (with its WAL files) and rebuilds it from the whole journal.</summary>
    /// <param name="path">SQLite file path.</param>
    /// <param name="journal">The journal, the source of truth.</param>
    /// <returns>The rebuilt, open index.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="journal"/> is null.</exception>
    /// <exception cref="JournalUnavailableException">The journal cannot be read.</exception>
    public static FactoryIndex Rebuild(string path, IJournalReader journal)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(journal);
        SqliteConnection.ClearAllPools();
        foreach (var suffix in new[] { string.Empty, "-wal", "-shm", "-journal" })
        {
            File.Delete(path + suffix);
        }

        var index = Open(path);
        try
        {
            index.CatchUp(journal);
            return index;
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Applies every journal entry with seq &gt; <see cref="AppliedSeq"/>, one transaction per <paramref name="batchSize"/>
    /// entries, up to the journal head at the time of the call. Idempotent: running it again applies nothing.
    /// </summary>
    /// <param name="journal">The journal.</param>
    /// <param name="batchSize">Entries per transaction (1 to 100,000).</param>
    /// <returns>The number of entries applied.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="journal"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchSize"/> is out of range.</exception>
    /// <exception cref="InvalidOperationException">The index belongs to another journal, or is ahead of it: rebuild it with <see cref="Rebuild"/>.</exception>
    public long CatchUp(IJournalReader journal, int batchSize = 1000)
    {
        ArgumentNullException.ThrowIfNull(journal);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(batchSize, 100_000);
        lock (_lock)
        {
            ulong applied = ulong.Parse(GetMeta("applied_seq") ?? "0", CultureInfo.InvariantCulture);
            var head = journal.Head;
            if (applied > head.Seq)
            {
                throw new InvalidOperationException($"factory index {Path} is at seq {applied}, ahead of the journal (seq {head.Seq}); it belongs to another journal: rebuild it");
            }

            string? journalId = GetMeta("journal_id");
            if (journalId is not null && applied > 0)
            {
                var genesis = journal.ReadFrom(1).FirstOrDefault();
                string actual = genesis is null ? "(none)" : Convert.ToHexStringLower(Genesis.Parser.ParseFrom(genesis.Payload).JournalId.Span);
                if (actual != journalId)
                {
                    throw new InvalidOperationException($"factory index {Path} was built from journal {journalId}, not {actual}: rebuild it");
                }
            }

            if (applied == head.Seq)
            {
                return 0;
            }

            long count = 0;
            SqliteTransaction? tx = null;
            int inTx = 0;
            using var insert = _db.CreateCommand();
            insert.CommandText = """
                INSERT INTO issued (serial, device_id, profile, station_id, batch_id, seq, not_after, sha256)
                VALUES ($serial, $device, $profile, $station, $batch, $seq, $notAfter, $sha)
                ON CONFLICT (serial) DO NOTHING
                """;
            foreach (var name in new[] { "$serial", "$device", "$profile", "$station", "$batch", "$seq", "$notAfter", "$sha" })
            {
                insert.Parameters.Add(new SqliteParameter { ParameterName = name });
            }

            try
            {
                foreach (var e in journal.ReadFrom(applied + 1))
                {
                    if (e.Seq > head.Seq)
                    {
                        break;
                    }

                    if (e.Seq != applied + 1)
                    {
                        throw new InvalidOperationException($"journal reader returned seq {e.Seq} after {applied}");
                    }

                    tx ??= _db.BeginTransaction();
                    insert.Transaction = tx;
                    Apply(tx, insert, e);
                    applied = e.Seq;
                    count++;
                    if (++inTx >= batchSize)
                    {
                        SetMeta(tx, "applied_seq", applied.ToString(CultureInfo.InvariantCulture));
                        tx.Commit();
                        tx.Dispose();
                        tx = null;
                        inTx = 0;
                    }
                }

                if (tx is not null)
                {
                    SetMeta(tx, "applied_seq", applied.ToString(CultureInfo.InvariantCulture));
                    tx.Commit();
                }
            }
            finally
            {
                tx?.Dispose();
            }

            return count;
        }
    }

    /// <summary>Whether a certificate with this serial was issued (per the journal entries applied so far).</summary>
    /// <param name="serial">DER INTEGER contents of the serial (as in the certificate).</param>
    /// <exception cref="ArgumentNullException"><paramref name="serial"/> is null.</exception>
    public bool ContainsSerial(byte[] serial)
    {
        ArgumentNullException.ThrowIfNull(serial);
        string hex = SerialNumber.ToHex(serial);
        lock (_lock)
        {
            _containsSerial.Parameters[0].Value = hex;
            return _containsSerial.ExecuteScalar() is not null;
        }
    }

    /// <summary>The number of issued certificates indexed.</summary>
    public long CountIssued()
    {
        lock (_lock)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "SELECT COUNT(*) FROM issued";
            return (long)cmd.ExecuteScalar()!;
        }
    }

    /// <summary>The certificates issued to <paramref name="deviceId"/>, in journal order.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="deviceId"/> is null.</exception>
    public IReadOnlyList<IndexedCertificate> FindByDevice(string deviceId)
    {
        ArgumentNullException.ThrowIfNull(deviceId);
        lock (_lock)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "SELECT serial, device_id, profile, station_id, batch_id, seq, not_after, sha256 FROM issued WHERE device_id = $d ORDER BY seq";
            cmd.Parameters.AddWithValue("$d", deviceId);
            return ReadRecords(cmd);
        }
    }

    /// <summary>Every indexed certificate ordered by serial (for exports and tests; loads all rows).</summary>
    public IReadOnlyList<IndexedCertificate> All()
    {
        lock (_lock)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "SELECT serial, device_id, profile, station_id, batch_id, seq, not_after, sha256 FROM issued ORDER BY serial";
            return ReadRecords(cmd);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _containsSerial.Dispose();
        _db.Dispose();
    }

    private static List<IndexedCertificate> ReadRecords(SqliteCommand cmd)
    {
        var list = new List<IndexedCertificate>();
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            list.Add(new IndexedCertificate(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4),
                (ulong)r.GetInt64(5), DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(6)), r.GetString(7)));
        }

        return list;
    }

    private void Apply(SqliteTransaction tx, SqliteCommand insert, JournalEntry e)
    {
        switch (e.Type)
        {
            case EntryType.Genesis:
                var g = Genesis.Parser.ParseFrom(e.Payload);
                SetMeta(tx, "journal_id", Convert.ToHexStringLower(g.JournalId.Span));
                SetMeta(tx, "factory_id", g.FactoryId);
                break;
            case EntryType.CertificateIssued:
                var c = CertificateIssued.Parser.ParseFrom(e.Payload);
                var parts = DerCertificateParts.Parse(c.Certificate.Memory);
                var p = insert.Parameters;
                p["$serial"].Value = SerialNumber.ToHex(parts.SerialNumber.Span);
                p["$device"].Value = c.DeviceId;
                p["$profile"].Value = c.Profile;
                p["$station"].Value = c.StationId;
                p["$batch"].Value = c.BatchId;
                p["$seq"].Value = (long)e.Seq;
                p["$notAfter"].Value = parts.NotAfter.ToUnixTimeSeconds();
                p["$sha"].Value = Convert.ToHexStringLower(SHA256.HashData(c.Certificate.Span));
                insert.ExecuteNonQuery();
                break;
        }
    }

    private string? GetMeta(string key)
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "SELECT value FROM meta WHERE key = $k";
        cmd.Parameters.AddWithValue("$k", key);
        return cmd.ExecuteScalar() as string;
    }

    private void SetMeta(SqliteTransaction tx, string key, string value)
    {
        using var cmd = _db.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "INSERT INTO meta (key, value) VALUES ($k, $v) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        cmd.Parameters.AddWithValue("$k", key);
        cmd.Parameters.AddWithValue("$v", value);
        cmd.ExecuteNonQuery();
    }
}
