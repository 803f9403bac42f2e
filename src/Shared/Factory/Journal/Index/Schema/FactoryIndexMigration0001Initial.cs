using OfflinePki.Schema;

namespace OfflinePki.Journal.Index.Schema;

/// <summary>
/// Factory index schema version 1: the <c>meta</c> and <c>issued</c> tables as the index created them before schema
/// versions were stamped. <c>IF NOT EXISTS</c> throughout, so an unversioned index made by an earlier build is stamped
/// without change. Frozen: a change to the schema is a new migration. (WAL and <c>synchronous</c> are connection
/// settings, set by <see cref="FactoryIndex.Open"/>, not schema.)
/// </summary>
public sealed class FactoryIndexMigration0001Initial : SqlSchemaMigration
{
    private const string SqliteScript = """
        CREATE TABLE IF NOT EXISTS meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS issued (
            serial     TEXT PRIMARY KEY,      -- upper-case hex of the DER INTEGER contents
            device_id  TEXT NOT NULL,
            profile    TEXT NOT NULL,
            station_id TEXT NOT NULL,
            batch_id   TEXT NOT NULL,
            seq        INTEGER NOT NULL,      -- journal seq of the CertificateIssued entry
            not_after  INTEGER NOT NULL,      -- Unix seconds, UTC
            sha256     TEXT NOT NULL          -- lower-case hex SHA-256 of the certificate DER
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS issued_by_device ON issued (device_id);
        """;

    /// <inheritdoc />
    public override int Version => 1;

    /// <inheritdoc />
    public override string Description => "initial schema: meta, issued (by serial, by device)";

    /// <inheritdoc />
    /// <remarks>SQLite only: the factory index is always a local file.</remarks>
    public override string? Script(SqlDialect dialect) => dialect == SqlDialect.Sqlite ? SqliteScript : null;
}
