using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Mirror;

/// <summary>
/// A registry file exactly as the code before schema versions made it (user_version 0), written with raw SQL at test
/// time: the same PRAGMAs and CREATE statements in the same order (copied, on purpose, from that code and frozen here:
/// the migrations must keep opening such a file), plus a few rows in every kind of table.
/// </summary>
internal static class RegistryV1Fixture
{
    /// <summary>The journal id of the fixture's one journal.</summary>
    public static readonly byte[] JournalId = Convert.FromHexString("00112233445566778899AABBCCDDEEFF");

    /// <summary>The issuer key hash of its certificates.</summary>
    public static readonly byte[] IssuerKeyHash = Convert.FromHexString("0102030405060708090A0B0C0D0E0F1011121314");

    /// <summary>The revoked certificate's serial.</summary>
    public static readonly byte[] RevokedSerial = [0x0A, 0x0B];

    /// <summary>The good certificate's serial.</summary>
    public static readonly byte[] GoodSerial = [0x0C, 0x0D];

    // MirrorRegistry.Orders.cs before schema versions (created first).
    private const string OrdersSchema = """
        CREATE TABLE IF NOT EXISTS issuance_details (
            issuer_key_hash BLOB NOT NULL, serial BLOB NOT NULL, operator_id TEXT NOT NULL, mac_address TEXT NOT NULL, kind INTEGER NOT NULL,
            label TEXT NOT NULL, profile TEXT NOT NULL, issued_at INTEGER NOT NULL, sha256 TEXT NOT NULL, supersedes_serial BLOB NOT NULL,
            server_generated_key INTEGER NOT NULL, PRIMARY KEY (issuer_key_hash, serial)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS factory_orders (
            journal_id BLOB NOT NULL, seq INTEGER NOT NULL, order_id TEXT NOT NULL, signed BLOB NOT NULL, sha256 BLOB NOT NULL,
            source TEXT NOT NULL, accepted_at INTEGER NOT NULL, PRIMARY KEY (journal_id, seq));
        CREATE INDEX IF NOT EXISTS factory_orders_order ON factory_orders(order_id);
        CREATE TABLE IF NOT EXISTS oem_orders (
            order_id TEXT PRIMARY KEY, factory_id TEXT NOT NULL, sku TEXT NOT NULL, profile TEXT NOT NULL, quantity INTEGER NOT NULL,
            not_before INTEGER NOT NULL, not_after INTEGER NOT NULL, signed BLOB NOT NULL, sha256 BLOB NOT NULL, added_at INTEGER NOT NULL,
            added_by TEXT NOT NULL);
        """;

    // MirrorRegistry.cs before schema versions.
    private const string CoreSchema = """
        CREATE TABLE IF NOT EXISTS journals (
            journal_id BLOB PRIMARY KEY, factory_id TEXT NOT NULL, issuing_ca BLOB NOT NULL,
            issuer_key_hash BLOB NOT NULL, signer_cert BLOB NOT NULL, head_seq INTEGER NOT NULL, head_hash BLOB NOT NULL);
        CREATE INDEX IF NOT EXISTS journals_factory ON journals(factory_id);
        CREATE TABLE IF NOT EXISTS entries (
            journal_id BLOB NOT NULL, seq INTEGER NOT NULL, hash BLOB NOT NULL, type INTEGER NOT NULL, raw BLOB NOT NULL,
            PRIMARY KEY (journal_id, seq));
        CREATE TABLE IF NOT EXISTS certificates (
            issuer_key_hash BLOB NOT NULL, serial BLOB NOT NULL, device_id TEXT NOT NULL, station_id TEXT NOT NULL,
            batch_id TEXT NOT NULL, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL, journal_id BLOB NOT NULL,
            seq INTEGER NOT NULL, der BLOB NOT NULL, PRIMARY KEY (issuer_key_hash, serial));
        CREATE INDEX IF NOT EXISTS certificates_device ON certificates(device_id);
        CREATE INDEX IF NOT EXISTS certificates_journal ON certificates(journal_id);
        CREATE INDEX IF NOT EXISTS certificates_serial ON certificates(serial);
        CREATE TABLE IF NOT EXISTS revocations (
            issuer_key_hash BLOB NOT NULL, serial BLOB NOT NULL, reason INTEGER NOT NULL, revoked_at INTEGER NOT NULL,
            invalidity_date INTEGER NULL, actor TEXT NOT NULL, PRIMARY KEY (issuer_key_hash, serial)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS crl_numbers (issuer_key_hash BLOB PRIMARY KEY, last_number INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        INSERT OR IGNORE INTO counters(name, value) VALUES ('revocation', 0), ('registry', 0);
        CREATE INDEX IF NOT EXISTS certificates_station ON certificates(station_id, not_before);
        CREATE INDEX IF NOT EXISTS certificates_batch ON certificates(batch_id);
        CREATE TABLE IF NOT EXISTS revocation_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT, issuer_key_hash BLOB NOT NULL, serial BLOB NOT NULL, kind INTEGER NOT NULL, at INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS revocation_events_issuer ON revocation_events(issuer_key_hash, id);
        CREATE TABLE IF NOT EXISTS audit_log (
            seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL,
            prev_hash BLOB NOT NULL, hash BLOB NOT NULL);
        """;

    // MirrorRegistry.Devices.cs before schema versions.
    private const string DeviceSchema = """
        CREATE TABLE IF NOT EXISTS devices (
            factory_id TEXT NOT NULL, device_id TEXT NOT NULL, state INTEGER NOT NULL, current_serial BLOB NULL,
            linked_device_id TEXT NULL, journal_id BLOB NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (factory_id, device_id)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS device_reports (
            id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, factory_id TEXT NOT NULL, journal_id BLOB NOT NULL, seq INTEGER NOT NULL,
            code TEXT NOT NULL, station_id TEXT NOT NULL, device_id TEXT NOT NULL, public_key_sha256 TEXT NOT NULL, order_id TEXT NOT NULL,
            reason TEXT NOT NULL, UNIQUE (journal_id, seq));
        """;

    // SyncAlerts.cs (MirrorAlertStore) before schema versions.
    private const string AlertSchema = """
        CREATE TABLE IF NOT EXISTS sync_alerts (
          id INTEGER PRIMARY KEY AUTOINCREMENT, time_unix_micros INTEGER NOT NULL, factory_id TEXT NOT NULL,
          journal_id TEXT NOT NULL, seq INTEGER, fault TEXT NOT NULL, detail TEXT NOT NULL);
        """;

    private const string Rows = """
        INSERT INTO journals VALUES (X'00112233445566778899AABBCCDDEEFF', 'F1', X'30820001', X'0102030405060708090A0B0C0D0E0F1011121314', X'30820002', 3, X'AA');
        INSERT INTO entries VALUES (X'00112233445566778899AABBCCDDEEFF', 1, X'01', 1, X'E1'), (X'00112233445566778899AABBCCDDEEFF', 2, X'02', 2, X'E2'),
          (X'00112233445566778899AABBCCDDEEFF', 3, X'03', 2, X'E3');
        INSERT INTO certificates VALUES (X'0102030405060708090A0B0C0D0E0F1011121314', X'0A0B', 'DEV-1', 'station-01', 'batch-1', 1790000000, 1950000000,
          X'00112233445566778899AABBCCDDEEFF', 2, X'3003020101');
        INSERT INTO certificates VALUES (X'0102030405060708090A0B0C0D0E0F1011121314', X'0C0D', 'DEV-2', 'station-01', 'batch-1', 1790000100, 1950000100,
          X'00112233445566778899AABBCCDDEEFF', 3, X'3003020102');
        INSERT INTO revocations VALUES (X'0102030405060708090A0B0C0D0E0F1011121314', X'0A0B', 1, 1790001000, 1790000500, 'alice');
        INSERT INTO revocation_events (issuer_key_hash, serial, kind, at) VALUES (X'0102030405060708090A0B0C0D0E0F1011121314', X'0A0B', 0, 1790001000);
        INSERT INTO crl_numbers VALUES (X'0102030405060708090A0B0C0D0E0F1011121314', 5);
        UPDATE counters SET value = 3 WHERE name = 'revocation';
        UPDATE counters SET value = 7 WHERE name = 'registry';
        INSERT INTO counters VALUES ('revocation:0102030405060708090A0B0C0D0E0F1011121314', 3);
        INSERT INTO audit_log VALUES (1, 1790001000, 'alice', 'revoke', 'serial 0A0B', X'00', X'01');
        INSERT INTO devices VALUES ('F1', 'DEV-1', 0, X'0A0B', NULL, X'00112233445566778899AABBCCDDEEFF', 2);
        INSERT INTO device_reports (at, factory_id, journal_id, seq, code, station_id, device_id, public_key_sha256, order_id, reason)
          VALUES (1790000200, 'F1', X'00112233445566778899AABBCCDDEEFF', 4, 'DuplicatePublicKey', 'station-01', 'DEV-3', 'ab', '', 'key of DEV-1');
        INSERT INTO oem_orders VALUES ('ORD-1', 'F1', 'SKU-1', 'idevid', 10, 1780000000, 1990000000, X'3000', X'BB', 1780000000, 'oem');
        """;

    private const string AlertRows = """
        INSERT INTO sync_alerts (time_unix_micros, factory_id, journal_id, seq, fault, detail)
          VALUES (1790000300000000, 'F1', '00112233445566778899aabbccddeeff', 9, 'fork', 'fork at seq 9');
        """;

    /// <summary>The tables every fixture has, with the rows written to each.</summary>
    public static IReadOnlyDictionary<string, long> CoreRowCounts { get; } = new Dictionary<string, long>
    {
        ["journals"] = 1, ["entries"] = 3, ["certificates"] = 2, ["revocations"] = 1, ["revocation_events"] = 1, ["crl_numbers"] = 1,
        ["counters"] = 3, ["audit_log"] = 1,
    };

    /// <summary>
    /// Writes the fixture: as the last build before schema versions made it (<paramref name="complete"/>), or as a build
    /// before the order, device and alert tables existed (only the core tables and their rows).
    /// </summary>
    public static void Write(string path, bool complete = true)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        SqliteFile.Exec(path, "PRAGMA page_size=16384;");
        SqliteFile.Exec(path, "PRAGMA journal_mode=WAL;");
        if (complete)
        {
            SqliteFile.Exec(path, OrdersSchema);
            SqliteFile.Exec(path, CoreSchema);
            SqliteFile.Exec(path, DeviceSchema);
            SqliteFile.Exec(path, AlertSchema);
            SqliteFile.Exec(path, "BEGIN;" + Rows + AlertRows + "COMMIT;");
        }
        else
        {
            SqliteFile.Exec(path, CoreSchema);
            SqliteFile.Exec(path, "BEGIN;" + string.Join('\n', Rows.Split('\n').TakeWhile(l => !l.Contains("INSERT INTO devices", StringComparison.Ordinal))) + "COMMIT;");
        }
    }
}
