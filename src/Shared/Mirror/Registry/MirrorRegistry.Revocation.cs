using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Data.Sqlite;
using OfflinePki.Asn1;
using OfflinePki.Revocation;

namespace OfflinePki.Registry;

/// <summary>Revocation writes, the delta-CRL change feed and the audit log of the registry.</summary>
public sealed partial class MirrorRegistry
{
    private const int EventRevoke = 0;
    private const int EventRelease = 1;

    /// <summary>Certificates revoked per transaction by <see cref="RevokeMatching"/> (default 5,000; 1..1,000,000).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside 1..1,000,000.</exception>
    public int BulkBatchSize
    {
        get => _bulkBatchSize;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 1_000_000);
            _bulkBatchSize = value;
        }
    }

    private int _bulkBatchSize = 5000;

    // ---------------------------------------------------------------- IRevocationStore

    /// <inheritdoc />
    public RevokeResult Revoke(string? issuer, byte[] serial, CrlReason reason, DateTimeOffset? invalidityDate, string actor)
    {
        ArgumentNullException.ThrowIfNull(serial);
        var now = CheckRevocationArguments(reason, invalidityDate, actor);
        var normalized = SerialNumber.Normalize(serial);
        using var c = Open();
        using var tx = c.BeginTransaction();
        now = RevocationTimeUnderWriteLock();
        var (issuerKeyHash, deviceId) = FindCertificate(c, tx, issuer, normalized);
        var factoryId = FactoryOf(c, tx, issuerKeyHash);
        using (var existing = Cmd(c, "SELECT serial, revoked_at, reason, invalidity_date FROM revocations WHERE issuer_key_hash = $i AND serial = $s", ("$i", issuerKeyHash), ("$s", normalized)))
        {
            existing.Transaction = tx;
            using var r = existing.ExecuteReader();
            if (r.Read())
            {
                return new RevokeResult(RevokeOutcome.AlreadyRevoked, factoryId, issuerKeyHash, deviceId, ReadRevoked(r, 0));
            }
        }

        var entry = new RevokedEntry(normalized, now, reason, invalidityDate is { } d ? DerTime.Truncate(d) : null);
        using var insert = PrepareRevocationInsert(c, tx, reason, now, entry.InvalidityDate, actor);
        InsertRevocation(insert, issuerKeyHash, normalized);
        AppendAudit(c, tx, now, actor, "revoke", string.Create(CultureInfo.InvariantCulture,
            $"factory={factoryId ?? "?"} issuerKeyHash={Convert.ToHexString(issuerKeyHash)} serial={SerialNumber.ToHex(normalized)} device={deviceId} reason={CrlReasons.Name(reason)}{InvalidityText(entry.InvalidityDate)}"));
        BumpRevocationCounters(c, tx, [issuerKeyHash]);
        tx.Commit();
        return new RevokeResult(RevokeOutcome.Revoked, factoryId, issuerKeyHash, deviceId, entry);
    }

    /// <inheritdoc />
    public BulkRevokeResult RevokeMatching(string? issuer, RevocationSelector selector, CrlReason reason, DateTimeOffset? invalidityDate, string actor,
        IProgress<BulkRevokeProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(selector);
        if (selector.IsEmpty)
        {
            throw new ArgumentException("a bulk revocation needs a device, station, batch or a whole factory", nameof(selector));
        }

        if (selector.AllOfIssuer && string.IsNullOrWhiteSpace(issuer))
        {
            throw new ArgumentException("revoking every certificate needs the factory (issuer) to be named", nameof(issuer));
        }

        if (selector.IssuedFrom is { } from && selector.IssuedTo is { } to && from > to)
        {
            throw new ArgumentException($"the time window is empty: from {from:O} is after to {to:O}", nameof(selector));
        }

        var now = CheckRevocationArguments(reason, invalidityDate, actor);
        var inv = invalidityDate is { } d ? DerTime.Truncate(d) : (DateTimeOffset?)null;

        // 1. Select the matching certificates (a read; 100,000 pairs are a few MB).
        const string Filter = """
            ($d IS NULL OR c.device_id = $d) AND ($st IS NULL OR c.station_id = $st) AND ($b IS NULL OR c.batch_id = $b)
              AND ($i IS NULL OR c.issuer_key_hash = $i) AND ($from IS NULL OR c.not_before >= $from) AND ($to IS NULL OR c.not_before <= $to)
            """;
        long matched = 0;
        var pending = new List<(byte[] Issuer, byte[] Serial)>();
        using (var c = Open())
        using (var tx = c.BeginTransaction(deferred: true))
        {
            foreach (var candidate in ResolveIssuerCandidates(c, tx, issuer))
            {
                using var select = Cmd(c, $"""
                    SELECT c.issuer_key_hash, c.serial, r.serial IS NOT NULL FROM certificates c
                    LEFT JOIN revocations r ON r.issuer_key_hash = c.issuer_key_hash AND r.serial = c.serial
                    WHERE {Filter} ORDER BY c.issuer_key_hash, c.serial
                    """,
                    ("$d", (object?)selector.DeviceId ?? DBNull.Value), ("$st", (object?)selector.StationId ?? DBNull.Value),
                    ("$b", (object?)selector.BatchId ?? DBNull.Value), ("$i", (object?)candidate ?? DBNull.Value),
                    ("$from", selector.IssuedFrom is { } f ? f.ToUnixTimeSeconds() : DBNull.Value),
                    ("$to", selector.IssuedTo is { } t ? t.ToUnixTimeSeconds() : DBNull.Value));
                select.Transaction = tx;
                using var r = select.ExecuteReader();
                while (r.Read())
                {
                    matched++;
                    if (r.GetInt64(2) == 0)
                    {
                        pending.Add(((byte[])r[0], (byte[])r[1]));
                    }
                }
            }
        }

        if (matched == 0)
        {
            throw new RevocationException($"no issued certificate matches {selector}{(issuer is null ? string.Empty : $" of {issuer}")}; nothing was revoked");
        }

        // 2. Revoke in batched transactions, each durable and audited.
        long done = 0, inserted = 0;
        int batches = (pending.Count + _bulkBatchSize - 1) / _bulkBatchSize;
        for (int b = 0; b < batches; b++)
        {
            var slice = pending.GetRange(b * _bulkBatchSize, Math.Min(_bulkBatchSize, pending.Count - (b * _bulkBatchSize)));
            using var c = Open();
            using var tx = c.BeginTransaction();
            now = RevocationTimeUnderWriteLock();
            using var insert = PrepareRevocationInsert(c, tx, reason, now, inv, actor);
            var touched = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            using var digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long batchInserted = 0;
            foreach (var (issuerKeyHash, serial) in slice)
            {
                if (InsertRevocation(insert, issuerKeyHash, serial))
                {
                    batchInserted++;
                    touched.TryAdd(Convert.ToHexString(issuerKeyHash), issuerKeyHash);
                    digest.AppendData(issuerKeyHash);
                    digest.AppendData(serial);
                }
            }

            if (batchInserted > 0)
            {
                AppendAudit(c, tx, now, actor, "revoke-bulk", string.Create(CultureInfo.InvariantCulture,
                    $"selector=[{selector}] issuer={issuer ?? "*"} batch={b + 1}/{batches} revoked={batchInserted} first={SerialNumber.ToHex(slice[0].Serial)} last={SerialNumber.ToHex(slice[^1].Serial)} sha256(issuer||serial...)={Convert.ToHexStringLower(digest.GetHashAndReset())} reason={CrlReasons.Name(reason)}{InvalidityText(inv)}"));
                BumpRevocationCounters(c, tx, touched.Values);
            }

            tx.Commit();
            inserted += batchInserted;
            done += slice.Count;
            progress?.Report(new BulkRevokeProgress(done, pending.Count));
        }

        return new BulkRevokeResult(matched, inserted, matched - inserted);
    }

    /// <inheritdoc />
    public ReleaseResult ReleaseHold(string? issuer, byte[] serial, string actor)
    {
        ArgumentNullException.ThrowIfNull(serial);
        CheckActor(actor);
        var normalized = SerialNumber.Normalize(serial);
        var hex = SerialNumber.ToHex(normalized);
        using var c = Open();
        using var tx = c.BeginTransaction();
        var now = RevocationTimeUnderWriteLock();
        var (issuerKeyHash, deviceId) = FindCertificate(c, tx, issuer, normalized);
        var factoryId = FactoryOf(c, tx, issuerKeyHash);
        using (var existing = Cmd(c, "SELECT reason FROM revocations WHERE issuer_key_hash = $i AND serial = $s", ("$i", issuerKeyHash), ("$s", normalized)))
        {
            existing.Transaction = tx;
            var reason = existing.ExecuteScalar();
            if (reason is not long code)
            {
                throw new RevocationException($"serial {hex} is not revoked; only a certificate on hold (certificateHold) can be released");
            }

            if (code != (long)CrlReason.CertificateHold)
            {
                throw new RevocationException($"serial {hex} is revoked for {CrlReasons.Name((CrlReason)code)}, which is final; only certificateHold can be released (RFC 5280 §5.3.1)");
            }
        }

        Run(c, tx, "DELETE FROM revocations WHERE issuer_key_hash = $i AND serial = $s", ("$i", issuerKeyHash), ("$s", normalized));
        Run(c, tx, "INSERT INTO revocation_events(issuer_key_hash, serial, kind, at) VALUES ($i, $s, $k, $t)",
            ("$i", issuerKeyHash), ("$s", normalized), ("$k", (long)EventRelease), ("$t", now.ToUnixTimeSeconds()));
        AppendAudit(c, tx, now, actor, "release-hold", $"factory={factoryId ?? "?"} issuerKeyHash={Convert.ToHexString(issuerKeyHash)} serial={hex} device={deviceId}");
        BumpRevocationCounters(c, tx, [issuerKeyHash]);
        tx.Commit();
        return new ReleaseResult(factoryId, issuerKeyHash, deviceId, normalized, now);
    }

    // ---------------------------------------------------------------- IRevocationChangeSource

    /// <inheritdoc />
    public long GetRevocationWatermark(byte[] issuerKeyHash)
    {
        ArgumentNullException.ThrowIfNull(issuerKeyHash);
        using var c = Open();

        // Read under the write lock (BEGIN IMMEDIATE): a revocation missing from this watermark takes the lock, and so its
        // time, after this returns; a caller that read its clock first (a full CRL's thisUpdate) therefore knows that every
        // later change is dated at or after that time (the delta lint crl_delta_no_entry_older_than_base relies on it).
        using var tx = c.BeginTransaction();
        using var cmd = Cmd(c, "SELECT COALESCE(MAX(id), 0) FROM revocation_events WHERE issuer_key_hash = $i", ("$i", issuerKeyHash));
        cmd.Transaction = tx;
        var watermark = (long)cmd.ExecuteScalar()!;
        tx.Commit();
        return watermark;
    }

    /// <inheritdoc />
    public IEnumerable<RevocationChange> EnumerateChangesSince(byte[] issuerKeyHash, long watermark)
    {
        ArgumentNullException.ThrowIfNull(issuerKeyHash);
        using var c = Open();
        using var cmd = Cmd(c, """
            SELECT e.serial, MAX(e.at), r.serial, r.revoked_at, r.reason, r.invalidity_date FROM revocation_events e
            LEFT JOIN revocations r ON r.issuer_key_hash = e.issuer_key_hash AND r.serial = e.serial
            WHERE e.issuer_key_hash = $i AND e.id > $w GROUP BY e.serial ORDER BY e.serial
            """, ("$i", issuerKeyHash), ("$w", watermark));
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            yield return new RevocationChange((byte[])r[0], r.IsDBNull(2) ? null : ReadRevoked(r, 2), DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(1)));
        }
    }

    // ---------------------------------------------------------------- audit log

    /// <summary>Reads audit records in seq order, starting at <paramref name="fromSeq"/>.</summary>
    /// <param name="fromSeq">First seq (1 for the start).</param>
    /// <param name="max">At most this many records; positive.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="max"/> is not positive.</exception>
    public IReadOnlyList<AuditRecord> ReadAudit(long fromSeq = 1, int max = 1000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        return [.. EnumerateAudit(fromSeq).Take(max)];
    }

    /// <summary>Streams the audit log in seq order from <paramref name="fromSeq"/>.</summary>
    public IEnumerable<AuditRecord> EnumerateAudit(long fromSeq = 1)
    {
        using var c = Open();
        using var cmd = Cmd(c, "SELECT seq, at, actor, action, detail, prev_hash, hash FROM audit_log WHERE seq >= $f ORDER BY seq", ("$f", fromSeq));
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            yield return new AuditRecord(r.GetInt64(0), DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(1)), r.GetString(2), r.GetString(3), r.GetString(4), (byte[])r[5], (byte[])r[6]);
        }
    }

    /// <summary>Recomputes the whole audit chain (see <see cref="AuditChain"/>).</summary>
    public AuditVerification VerifyAudit() => AuditChain.Verify(EnumerateAudit());

    // ---------------------------------------------------------------- helpers

    // A revocation or release is dated inside its write transaction (the BEGIN IMMEDIATE lock is held), never before it:
    // see GetRevocationWatermark for why delta CRLs need that order.
    private DateTimeOffset RevocationTimeUnderWriteLock() => DerTime.Truncate(_time.GetUtcNow());

    private static string InvalidityText(DateTimeOffset? invalidity) =>
        invalidity is { } d ? string.Create(CultureInfo.InvariantCulture, $" invalidityDate={d.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}") : string.Empty;

    private static void CheckActor(string actor)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        if (actor.Length > 200)
        {
            throw new ArgumentException("actor is at most 200 characters", nameof(actor));
        }
    }

    private (byte[] IssuerKeyHash, string DeviceId) FindCertificate(SqliteConnection c, SqliteTransaction tx, string? issuer, byte[] normalized)
    {
        var hex = SerialNumber.ToHex(normalized);
        byte[]? issuerKeyHash = null;
        string? deviceId = null;
        foreach (var candidate in ResolveIssuerCandidates(c, tx, issuer))
        {
            using var find = Cmd(c, "SELECT issuer_key_hash, device_id FROM certificates WHERE serial = $s" + (candidate is null ? string.Empty : " AND issuer_key_hash = $i"),
                ("$s", normalized), ("$i", (object?)candidate ?? DBNull.Value));
            find.Transaction = tx;
            using var r = find.ExecuteReader();
            while (r.Read())
            {
                if (issuerKeyHash is not null)
                {
                    throw new RevocationException($"serial {hex} was issued by more than one issuing CA; name the factory (--factory) or the issuer key hash");
                }

                issuerKeyHash = (byte[])r[0];
                deviceId = r.GetString(1);
            }
        }

        if (issuerKeyHash is null)
        {
            throw new RevocationException($"serial {hex} was never issued{(issuer is null ? string.Empty : $" by {issuer}")} according to the registry; check the serial (hex) and that the factory's journal has been synced");
        }

        return (issuerKeyHash, deviceId!);
    }

    private static SqliteCommand PrepareRevocationInsert(SqliteConnection c, SqliteTransaction tx, CrlReason reason, DateTimeOffset now, DateTimeOffset? invalidity, string actor)
    {
        var cmd = Cmd(c, """
            INSERT INTO revocations(issuer_key_hash, serial, reason, revoked_at, invalidity_date, actor) VALUES ($i, $s, $r, $t, $d, $a)
            ON CONFLICT(issuer_key_hash, serial) DO NOTHING;
            INSERT INTO revocation_events(issuer_key_hash, serial, kind, at) SELECT $i, $s, 0, $t WHERE changes() > 0;
            """,
            ("$i", Array.Empty<byte>()), ("$s", Array.Empty<byte>()), ("$r", (long)reason), ("$t", now.ToUnixTimeSeconds()),
            ("$d", invalidity is { } id ? id.ToUnixTimeSeconds() : DBNull.Value), ("$a", actor));
        cmd.Transaction = tx;
        return cmd;
    }

    private static bool InsertRevocation(SqliteCommand insert, byte[] issuerKeyHash, byte[] serial)
    {
        insert.Parameters["$i"].Value = issuerKeyHash;
        insert.Parameters["$s"].Value = serial;
        return insert.ExecuteNonQuery() > 0;
    }

    private static void AppendAudit(SqliteConnection c, SqliteTransaction tx, DateTimeOffset at, string actor, string action, string detail)
    {
        long seq = 1;
        var previous = new byte[AuditChain.HashLength];
        using (var last = Cmd(c, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"))
        {
            last.Transaction = tx;
            using var r = last.ExecuteReader();
            if (r.Read())
            {
                seq = r.GetInt64(0) + 1;
                previous = (byte[])r[1];
            }
        }

        var hash = AuditChain.ComputeHash(previous, seq, at, actor, action, detail);
        Run(c, tx, "INSERT INTO audit_log(seq, at, actor, action, detail, prev_hash, hash) VALUES ($q, $t, $a, $x, $d, $p, $h)",
            ("$q", seq), ("$t", at.ToUnixTimeSeconds()), ("$a", actor), ("$x", action), ("$d", detail), ("$p", previous), ("$h", hash));
    }

    private static void Run(SqliteConnection c, SqliteTransaction tx, string sql, params (string Name, object Value)[] args)
    {
        using var cmd = Cmd(c, sql, args);
        cmd.Transaction = tx;
        cmd.ExecuteNonQuery();
    }
}
