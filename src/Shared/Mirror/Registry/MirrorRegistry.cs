using System.Globalization;
using System.Numerics;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Data.Sqlite;
using OfflinePki.Asn1;
using OfflinePki.Registry.Schema;
using OfflinePki.Revocation;
using OfflinePki.Schema;

namespace OfflinePki.Registry;

/// <summary>
/// The mirror's registry in one SQLite file (WAL, synchronous=FULL: a commit is on disk before it returns).
/// It holds the replayed journals and their raw entries, the issued certificates of every factory, the
/// revocations, and one persisted CRL number counter per issuer. Several processes may use the same file
/// (the daemon and a <c>revoke</c> CLI); each notices the other's writes through the version counters.
/// Thread-safe: every call opens its own pooled connection.
/// </summary>
public sealed partial class MirrorRegistry : IJournalSink, IKnownJournals, IRevocationSource, IRevocationStore, IRevocationChangeSource, IDisposable
{
    private readonly string _connectionString;
    private readonly TimeProvider _time;

    /// <summary>
    /// Issue 16 finding 7: the registry file is 0600 whatever the umask (an existing file is narrowed, a new one is
    /// created empty at 0600 before SQLite opens it). SQLite creates the -wal and -shm files with the database file's
    /// mode, so they are 0600 too.
    /// </summary>
    private static void MakePrivate(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        if (!File.Exists(path))
        {
            using var created = new FileStream(path, new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.Write, UnixCreateMode = Private });
        }

        File.SetUnixFileMode(path, Private);
        foreach (var sidecar in new[] { path + "-wal", path + "-shm" })
        {
            if (File.Exists(sidecar))
            {
                File.SetUnixFileMode(sidecar, Private);
            }
        }
    }

    /// <summary>
    /// Opens (creating if needed) the registry file and migrates its schema forward to <see cref="RegistrySchema.LatestVersion"/>
    /// (see <see cref="SchemaMigration"/>).
    /// </summary>
    /// <param name="databasePath">Path of the SQLite file; its directory is created if missing.</param>
    /// <param name="timeProvider">Clock for revocation times.</param>
    /// <exception cref="ArgumentException"><paramref name="databasePath"/> is empty.</exception>
    /// <exception cref="SqliteException">The file cannot be opened or is not a SQLite file.</exception>
    /// <exception cref="DatabaseSchemaException">The file's schema version is newer than this build knows, or it is not a registry
    /// (nothing was written); or a migration failed (rolled back: the file stays at the version before it).</exception>
    public MirrorRegistry(string databasePath, TimeProvider timeProvider)
    {
        ArgumentException.ThrowIfNullOrEmpty(databasePath);
        ArgumentNullException.ThrowIfNull(timeProvider);
        _time = timeProvider;
        var dir = Path.GetDirectoryName(Path.GetFullPath(databasePath));
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
        }

        DatabasePath = Path.GetFullPath(databasePath);
        MakePrivate(DatabasePath);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = DatabasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();

        using var c = Open();
        try
        {
            // A file newer than this build (or not a registry) is refused before anything below writes to it.
            var migrator = RegistrySchema.CreateMigrator();
            migrator.Plan(c, DatabasePath);

            // 16 KiB pages for a new file (an existing one keeps its own): a synced entry adds about 1.5 KB of rows to a
            // dozen B-trees, and with SQLite's default 4 KiB pages a full sync spent a fifth of its time writing pages.
            Exec(c, "PRAGMA page_size=16384;");
            Exec(c, "PRAGMA journal_mode=WAL;");
            SchemaMigration = migrator.Migrate(c, DatabasePath);
        }
        catch (DatabaseSchemaException)
        {
            SqliteConnection.ClearPool(c);
            throw;
        }
    }

    /// <summary>
    /// What opening did to the schema: from and to versions and the migrations applied (none when the file was current).
    /// The daemon logs it.
    /// </summary>
    public SchemaMigrationResult SchemaMigration { get; }

    /// <summary>Absolute path of the SQLite file.</summary>
    public string DatabasePath { get; }

    // ---------------------------------------------------------------- IJournalSink

    /// <inheritdoc />
    public JournalState? GetJournal(ReadOnlySpan<byte> journalId)
    {
        using var c = Open();
        using var cmd = Cmd(c, "SELECT factory_id, issuing_ca, signer_cert, head_seq, head_hash FROM journals WHERE journal_id = $j", ("$j", journalId.ToArray()));
        using var r = cmd.ExecuteReader();
        if (!r.Read())
        {
            return null;
        }

        return new JournalState(journalId.ToArray(), r.GetString(0), (byte[])r[1], (byte[])r[2], (ulong)r.GetInt64(3), (byte[])r[4]);
    }

    /// <inheritdoc />
    public byte[]? GetEntryHash(ReadOnlySpan<byte> journalId, ulong seq)
    {
        using var c = Open();
        using var cmd = Cmd(c, "SELECT hash FROM entries WHERE journal_id = $j AND seq = $s", ("$j", journalId.ToArray()), ("$s", checked((long)seq)));
        return cmd.ExecuteScalar() as byte[];
    }

    /// <inheritdoc />
    public IJournalApplyTransaction BeginApply()
    {
        var c = Open();
        try
        {
            // A push may stage a million entries in one transaction: SQLite's default 2 MiB page cache then spills and
            // re-reads index pages for every insert. 64 MiB, a constant, keeps the indexes' hot pages in memory.
            Exec(c, "PRAGMA cache_size=-65536;");
        }
        catch
        {
            c.Dispose();
            throw;
        }

        return new ApplyTransaction(c);
    }

    /// <inheritdoc />
    public IReadOnlyList<JournalState> ListJournals()
    {
        using var c = Open();
        using var cmd = Cmd(c, "SELECT journal_id, factory_id, issuing_ca, signer_cert, head_seq, head_hash FROM journals ORDER BY factory_id, journal_id");
        using var r = cmd.ExecuteReader();
        var list = new List<JournalState>();
        while (r.Read())
        {
            list.Add(new JournalState((byte[])r[0], r.GetString(1), (byte[])r[2], (byte[])r[3], (ulong)r.GetInt64(4), (byte[])r[5]));
        }

        return list;
    }

    // ---------------------------------------------------------------- IRevocationSource

    /// <inheritdoc />
    public long RevocationVersion => ReadCounter("revocation");

    /// <inheritdoc />
    public long RegistryVersion => ReadCounter("registry");

    /// <inheritdoc />
    public long GetRevocationVersion(byte[] issuerKeyHash)
    {
        ArgumentNullException.ThrowIfNull(issuerKeyHash);
        using var c = Open();
        using var cmd = Cmd(c, "SELECT value FROM counters WHERE name = $n", ("$n", IssuerCounter(issuerKeyHash)));
        return cmd.ExecuteScalar() is long v ? v : 0;
    }

    private static string IssuerCounter(byte[] issuerKeyHash) => "revocation:" + Convert.ToHexString(issuerKeyHash);

    private static void BumpRevocationCounters(SqliteConnection c, SqliteTransaction tx, IEnumerable<byte[]> issuerKeyHashes)
    {
        using (var bump = Cmd(c, "UPDATE counters SET value = value + 1 WHERE name IN ('revocation', 'registry')"))
        {
            bump.Transaction = tx;
            bump.ExecuteNonQuery();
        }

        foreach (var issuer in issuerKeyHashes)
        {
            using var one = Cmd(c, "INSERT INTO counters(name, value) VALUES ($n, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1", ("$n", IssuerCounter(issuer)));
            one.Transaction = tx;
            one.ExecuteNonQuery();
        }
    }

    /// <inheritdoc />
    public IEnumerable<RevokedEntry> EnumerateRevoked(byte[] issuerKeyHash)
    {
        ArgumentNullException.ThrowIfNull(issuerKeyHash);
        using var c = Open();
        using var cmd = Cmd(c, "SELECT serial, revoked_at, reason, invalidity_date FROM revocations WHERE issuer_key_hash = $i ORDER BY serial", ("$i", issuerKeyHash));
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            yield return ReadRevoked(r, 0);
        }
    }

    /// <inheritdoc />
    public CertificateStatus GetStatus(ReadOnlySpan<byte> issuerKeyHash, ReadOnlySpan<byte> serial)
    {
        using var c = Open();
        using var cmd = Cmd(c, """
            SELECT r.serial, r.revoked_at, r.reason, r.invalidity_date FROM certificates c
            LEFT JOIN revocations r ON r.issuer_key_hash = c.issuer_key_hash AND r.serial = c.serial
            WHERE c.issuer_key_hash = $i AND c.serial = $s
            """, ("$i", issuerKeyHash.ToArray()), ("$s", serial.ToArray()));
        using var r = cmd.ExecuteReader();
        if (!r.Read())
        {
            return CertificateStatus.NeverIssued;
        }

        return r.IsDBNull(0) ? CertificateStatus.Good : new CertificateStatus(RegistryCertificateState.Revoked, ReadRevoked(r, 0));
    }

    /// <inheritdoc />
    public BigInteger NextCrlNumber(byte[] issuerKeyHash)
    {
        ArgumentNullException.ThrowIfNull(issuerKeyHash);
        using var c = Open();
        using var tx = c.BeginTransaction();
        using var cmd = Cmd(c, """
            INSERT INTO crl_numbers(issuer_key_hash, last_number) VALUES ($i, 1)
            ON CONFLICT(issuer_key_hash) DO UPDATE SET last_number = last_number + 1
            RETURNING last_number
            """, ("$i", issuerKeyHash));
        cmd.Transaction = tx;
        long n = (long)cmd.ExecuteScalar()!;
        tx.Commit();
        return n;
    }

    // ---------------------------------------------------------------- IRevocationStore

    // ---------------------------------------------------------------- summary

    /// <summary>Per-journal counts for the <c>status</c> verb. Counting scans the certificate index of each journal.</summary>
    public RegistrySummary GetSummary()
    {
        using var c = Open();
        using var cmd = Cmd(c, """
            SELECT j.factory_id, j.journal_id, j.issuer_key_hash, j.head_seq,
              (SELECT COUNT(*) FROM entries e WHERE e.journal_id = j.journal_id),
              (SELECT COUNT(*) FROM certificates c WHERE c.journal_id = j.journal_id),
              (SELECT COUNT(*) FROM certificates c JOIN revocations r ON r.issuer_key_hash = c.issuer_key_hash AND r.serial = c.serial WHERE c.journal_id = j.journal_id)
            FROM journals j ORDER BY j.factory_id, j.journal_id
            """);
        var list = new List<FactorySummary>();
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read())
            {
                list.Add(new FactorySummary(r.GetString(0), Convert.ToHexString((byte[])r[1]), Convert.ToHexString((byte[])r[2]),
                    (ulong)r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6)));
            }
        }

        return new RegistrySummary(list, RevocationVersion, RegistryVersion);
    }

    /// <summary>Releases pooled connections to the file (so it can be moved or deleted).</summary>
    public void Dispose()
    {
        using var c = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(c);
    }

    // ---------------------------------------------------------------- helpers

    private DateTimeOffset CheckRevocationArguments(CrlReason reason, DateTimeOffset? invalidityDate, string actor)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        if (actor.Length > 200)
        {
            throw new ArgumentException("actor is at most 200 characters", nameof(actor));
        }

        if (!CrlReasons.IsDefined(reason) || reason == CrlReason.RemoveFromCrl)
        {
            throw new ArgumentException($"reason {reason} cannot be used to revoke (RFC 5280 §5.3.1)", nameof(reason));
        }

        var now = DerTime.Truncate(_time.GetUtcNow());
        if (invalidityDate is { } inv && inv > now)
        {
            throw new ArgumentException($"invalidity date {inv:O} is in the future (now {now:O}); RFC 5280 §5.3.2 records when the key was compromised", nameof(invalidityDate));
        }

        return now;
    }

    private List<byte[]?> ResolveIssuerCandidates(SqliteConnection c, SqliteTransaction tx, string? issuer)
    {
        if (string.IsNullOrWhiteSpace(issuer))
        {
            return [null];
        }

        var list = new List<byte[]?>();
        using (var cmd = Cmd(c, "SELECT DISTINCT issuer_key_hash FROM journals WHERE factory_id = $f", ("$f", issuer.Trim())))
        {
            cmd.Transaction = tx;
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                list.Add((byte[])r[0]);
            }
        }

        if (list.Count == 0 && issuer.Trim().Length == 40 && issuer.Trim().All(char.IsAsciiHexDigit))
        {
            list.Add(Convert.FromHexString(issuer.Trim()));
        }

        if (list.Count == 0)
        {
            var known = new List<string>();
            using var cmd = Cmd(c, "SELECT DISTINCT factory_id FROM journals ORDER BY factory_id");
            cmd.Transaction = tx;
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                known.Add(r.GetString(0));
            }

            throw new RevocationException($"factory '{issuer}' is unknown to the registry (known: {(known.Count == 0 ? "none yet; sync a journal first" : string.Join(", ", known))})");
        }

        return list;
    }

    private static string? FactoryOf(SqliteConnection c, SqliteTransaction tx, byte[] issuerKeyHash)
    {
        using var cmd = Cmd(c, "SELECT factory_id FROM journals WHERE issuer_key_hash = $i LIMIT 1", ("$i", issuerKeyHash));
        cmd.Transaction = tx;
        return cmd.ExecuteScalar() as string;
    }

    private long ReadCounter(string name)
    {
        using var c = Open();
        using var cmd = Cmd(c, "SELECT value FROM counters WHERE name = $n", ("$n", name));
        return (long)cmd.ExecuteScalar()!;
    }

    private static RevokedEntry ReadRevoked(SqliteDataReader r, int first) => new(
        (byte[])r[first],
        DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(first + 1)),
        (CrlReason)r.GetInt64(first + 2),
        r.IsDBNull(first + 3) ? null : DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(first + 3)));

    private SqliteConnection Open()
    {
        var c = new SqliteConnection(_connectionString);
        try
        {
            c.Open();
            Exec(c, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
            return c;
        }
        catch
        {
            c.Dispose();
            throw;
        }
    }

    private static void Exec(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    private static SqliteCommand Cmd(SqliteConnection c, string sql, params (string Name, object Value)[] args)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in args)
        {
            cmd.Parameters.AddWithValue(name, value);
        }

        return cmd;
    }

    private sealed partial class ApplyTransaction : IJournalApplyTransaction
    {
        private readonly SqliteConnection _c;
        private readonly SqliteTransaction _tx;
        private readonly Dictionary<string, SqliteCommand> _prepared = new(StringComparer.Ordinal);
        private bool _done;

        public ApplyTransaction(SqliteConnection c)
        {
            _c = c;
            try
            {
                _tx = c.BeginTransaction();
            }
            catch
            {
                c.Dispose();
                throw;
            }
        }

        public void AddEntry(ReadOnlySpan<byte> journalId, ulong seq, ReadOnlySpan<byte> hash, int entryType, ReadOnlySpan<byte> rawEntry)
        {
            EnsureOpen();
            Run("INSERT INTO entries(journal_id, seq, hash, type, raw) VALUES ($j, $s, $h, $t, $r)",
                ("$j", journalId.ToArray()), ("$s", checked((long)seq)), ("$h", hash.ToArray()), ("$t", (long)entryType), ("$r", rawEntry.ToArray()));
        }

        public void AddCertificate(IssuedCertificateRecord record)
        {
            ArgumentNullException.ThrowIfNull(record);
            EnsureOpen();
            var serial = SerialNumber.Normalize(record.Serial);
            try
            {
                Run("""
                    INSERT INTO certificates(issuer_key_hash, serial, device_id, station_id, batch_id, not_before, not_after, journal_id, seq, der)
                    VALUES ($i, $s, $d, $st, $b, $nb, $na, $j, $q, $c)
                    """,
                    ("$i", record.IssuerKeyHash), ("$s", serial), ("$d", record.DeviceId), ("$st", record.StationId), ("$b", record.BatchId ?? string.Empty),
                    ("$nb", record.NotBefore.ToUnixTimeSeconds()), ("$na", record.NotAfter.ToUnixTimeSeconds()), ("$j", record.JournalId),
                    ("$q", checked((long)record.Seq)), ("$c", record.Certificate));
                if (record.Details is { } details)
                {
                    AddDetails(record.IssuerKeyHash, serial, details);
                }
            }
            catch (SqliteException ex) when (ex.SqliteErrorCode == 19)
            {
                throw new InvalidOperationException(
                    $"certificate serial {SerialNumber.ToHex(serial)} of issuer {Convert.ToHexString(record.IssuerKeyHash)} is already recorded; a duplicate serial (journal seq {record.Seq.ToString(CultureInfo.InvariantCulture)}) is refused", ex);
            }
        }

        public void SetJournal(JournalState state)
        {
            ArgumentNullException.ThrowIfNull(state);
            EnsureOpen();
            using var ca = X509CertificateLoader.LoadCertificate(state.IssuingCaCertificate);
            Run("""
                INSERT INTO journals(journal_id, factory_id, issuing_ca, issuer_key_hash, signer_cert, head_seq, head_hash)
                VALUES ($j, $f, $ca, $i, $sc, $s, $h)
                ON CONFLICT(journal_id) DO UPDATE SET factory_id = excluded.factory_id, issuing_ca = excluded.issuing_ca,
                  issuer_key_hash = excluded.issuer_key_hash, signer_cert = excluded.signer_cert, head_seq = excluded.head_seq, head_hash = excluded.head_hash
                """,
                ("$j", state.JournalId), ("$f", state.FactoryId), ("$ca", state.IssuingCaCertificate), ("$i", IssuerHashes.KeyHash(ca)),
                ("$sc", state.JournalSignerCertificate), ("$s", checked((long)state.HeadSeq)), ("$h", state.HeadHash));
        }

        public void Commit()
        {
            EnsureOpen();
            Run("UPDATE counters SET value = value + 1 WHERE name = 'registry'");
            _tx.Commit();
            _done = true;
        }

        public void Dispose()
        {
            if (!_done)
            {
                _done = true;
                try
                {
                    _tx.Rollback();
                }
                catch (SqliteException)
                {
                    // The connection is going away; SQLite rolls back an open transaction on close.
                }
            }

            foreach (var cmd in _prepared.Values)
            {
                cmd.Dispose();
            }

            _tx.Dispose();
            _c.Dispose();
        }

        private void EnsureOpen() => ObjectDisposedException.ThrowIf(_done, this);

        // One prepared statement per SQL text for the life of the transaction: a sync applies the same few INSERTs per
        // entry, and preparing each anew (SQLite's parser) was a fifth of the mirror's CPU per synced entry.
        private void Run(string sql, params (string Name, object Value)[] args)
        {
            if (!_prepared.TryGetValue(sql, out var cmd))
            {
                cmd = _c.CreateCommand();
                cmd.CommandText = sql;
                cmd.Transaction = _tx;
                _prepared[sql] = cmd;
            }

            // The same SQL text always comes with the same parameter names in the same order: set values in place.
            var parameters = cmd.Parameters;
            if (parameters.Count != args.Length)
            {
                parameters.Clear();
                foreach (var (name, value) in args)
                {
                    parameters.AddWithValue(name, value);
                }
            }
            else
            {
                for (int i = 0; i < args.Length; i++)
                {
                    var p = parameters[i];
                    if (!string.Equals(p.ParameterName, args[i].Name, StringComparison.Ordinal))
                    {
                        throw new InvalidOperationException($"parameter {i} of a prepared statement is {p.ParameterName}, not {args[i].Name}");
                    }

                    p.Value = args[i].Value;
                }
            }

            cmd.ExecuteNonQuery();
        }
    }
}
