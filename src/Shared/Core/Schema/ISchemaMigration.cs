using System.Data.Common;

namespace OfflinePki.Schema;

/// <summary>The SQL dialects a <see cref="ISchemaMigration"/> may be written for.</summary>
public enum SqlDialect
{
    /// <summary>SQLite (Microsoft.Data.Sqlite): the embedded registry and the factory index.</summary>
    Sqlite,
    /// <summary>PostgreSQL (issue 14): no migration has a PostgreSQL form yet.</summary>
    PostgreSql,
}

/// <summary>
/// One forward step of a database schema: it turns version <c>Version - 1</c> into <see cref="Version"/>. One class
/// and one file per version (e.g. <c>RegistryMigration0002Foo</c>); a released migration is never edited, a change
/// is a new migration. <see cref="SchemaMigrator"/> runs each one in its own transaction together with the version
/// stamp, so a migration that fails leaves the database at the version before it. Most migrations are SQL per dialect:
/// derive from <see cref="SqlSchemaMigration"/>.
/// </summary>
public interface ISchemaMigration
{
    /// <summary>The version this migration produces: 1 for the first, then each next one 1 more (no gaps).</summary>
    int Version { get; }

    /// <summary>One line for operators (<c>MirrorCa migrate --dry-run</c>), e.g. "initial schema".</summary>
    string Description { get; }

    /// <summary>Whether this migration has a form for <paramref name="dialect"/>; the runner refuses, before writing, to run one that has not.</summary>
    /// <param name="dialect">The engine's dialect.</param>
    bool Supports(SqlDialect dialect);

    /// <summary>Applies the migration inside <paramref name="transaction"/>. It must not commit or roll back.</summary>
    /// <param name="connection">The open connection.</param>
    /// <param name="transaction">The transaction the runner opened; every command must be enlisted in it.</param>
    /// <param name="dialect">The engine's dialect (one that <see cref="Supports"/>).</param>
    /// <exception cref="NotSupportedException">This migration has no form for <paramref name="dialect"/>.</exception>
    /// <exception cref="DbException">A statement failed.</exception>
    void Apply(DbConnection connection, DbTransaction transaction, SqlDialect dialect);
}

/// <summary>A migration that is one SQL script per dialect.</summary>
public abstract class SqlSchemaMigration : ISchemaMigration
{
    /// <inheritdoc />
    public abstract int Version { get; }

    /// <inheritdoc />
    public abstract string Description { get; }

    /// <summary>
    /// The SQL script for <paramref name="dialect"/> (several statements separated by ';'), or null when there is no
    /// form for it. The script must not change transaction state (no BEGIN/COMMIT) and must not use statements SQLite
    /// refuses inside a transaction (<c>PRAGMA journal_mode</c>, <c>VACUUM</c>).
    /// </summary>
    /// <param name="dialect">The engine's dialect.</param>
    public abstract string? Script(SqlDialect dialect);

    /// <inheritdoc />
    public bool Supports(SqlDialect dialect) => Script(dialect) is not null;

    /// <inheritdoc />
    public void Apply(DbConnection connection, DbTransaction transaction, SqlDialect dialect)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(transaction);
        string script = Script(dialect) ?? throw new NotSupportedException($"schema migration {Version} ({Description}) has no {dialect} form");
        using var cmd = connection.CreateCommand();
        cmd.Transaction = transaction;
        cmd.CommandText = script;
        cmd.ExecuteNonQuery();
    }
}

/// <summary>
/// Where an engine keeps the schema version, and which tables a database has (to recognise one made before versions
/// were stamped). SQLite: <see cref="SqliteSchemaVersionStore"/>; PostgreSQL (issue 14) will keep it in a table.
/// </summary>
public interface ISchemaVersionStore
{
    /// <summary>The dialect migrations are asked for.</summary>
    SqlDialect Dialect { get; }

    /// <summary>
    /// The stamped version: 0 for a new or never-stamped database; negative values are invalid and refused by the runner.
    /// Read inside the runner's transaction, it must serialize concurrent migrators (SQLite: the transaction is
    /// <c>BEGIN IMMEDIATE</c>; a server engine would lock its version row, e.g. <c>SELECT ... FOR UPDATE</c>).
    /// </summary>
    /// <param name="connection">The open connection.</param>
    /// <param name="transaction">The active transaction, or null outside one.</param>
    long ReadVersion(DbConnection connection, DbTransaction? transaction);

    /// <summary>Stamps <paramref name="version"/> inside <paramref name="transaction"/> (undone if it rolls back).</summary>
    /// <param name="connection">The open connection.</param>
    /// <param name="transaction">The runner's transaction.</param>
    /// <param name="version">The new version (1 or more).</param>
    void WriteVersion(DbConnection connection, DbTransaction transaction, int version);

    /// <summary>The names of the database's own tables (no engine-internal ones), case as stored.</summary>
    /// <param name="connection">The open connection.</param>
    /// <param name="transaction">The active transaction, or null outside one.</param>
    IReadOnlyList<string> ListTables(DbConnection connection, DbTransaction? transaction);
}
