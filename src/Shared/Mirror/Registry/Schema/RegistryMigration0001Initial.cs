using OfflinePki.Schema;

namespace OfflinePki.Registry.Schema;

/// <summary>
/// Registry schema version 1: the tables as the registry created them before schema versions were stamped (journals,
/// entries, certificates, revocations, CRL numbers, counters, revocation events, audit log, orders, devices, sync
/// alerts). Every statement is <c>IF NOT EXISTS</c> / <c>OR IGNORE</c>, so the same script creates a new file and
/// completes an unversioned one made by any earlier build (which may lack the order and device tables) without
/// touching what it holds. Frozen: a change to the schema is a new migration.
/// </summary>
public sealed class RegistryMigration0001Initial : SqlSchemaMigration
{
    // SQLite: in the order the registry created them (orders, core, devices, then the alert store's table).
    private const string SqliteScript = """
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
        CREATE TABLE IF NOT EXISTS devices (
            factory_id TEXT NOT NULL, device_id TEXT NOT NULL, state INTEGER NOT NULL, current_serial BLOB NULL,
            linked_device_id TEXT NULL, journal_id BLOB NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (factory_id, device_id)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS device_reports (
            id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, factory_id TEXT NOT NULL, journal_id BLOB NOT NULL, seq INTEGER NOT NULL,
            code TEXT NOT NULL, station_id TEXT NOT NULL, device_id TEXT NOT NULL, public_key_sha256 TEXT NOT NULL, order_id TEXT NOT NULL,
            reason TEXT NOT NULL, UNIQUE (journal_id, seq));
        CREATE TABLE IF NOT EXISTS sync_alerts (
          id INTEGER PRIMARY KEY AUTOINCREMENT, time_unix_micros INTEGER NOT NULL, factory_id TEXT NOT NULL,
          journal_id TEXT NOT NULL, seq INTEGER, fault TEXT NOT NULL, detail TEXT NOT NULL);
        """;

    /// <inheritdoc />
    public override int Version => 1;

    /// <inheritdoc />
    public override string Description => "initial schema: journals, entries, certificates, revocations, CRL numbers, counters, audit log, orders, devices, sync alerts";

    /// <inheritdoc />
    /// <remarks>No PostgreSQL form yet (issue 14).</remarks>
    public override string? Script(SqlDialect dialect) => dialect == SqlDialect.Sqlite ? SqliteScript : null;
}
