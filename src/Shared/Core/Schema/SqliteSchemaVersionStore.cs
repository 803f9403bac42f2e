using System.Data.Common;
using System.Globalization;

namespace OfflinePki.Schema;

/// <summary>
/// SQLite keeps the schema version in the database header's <c>user_version</c> (a 32-bit integer at offset 60,
/// 0 in a new file), read and written with <c>PRAGMA user_version</c>. Writing it inside a transaction is undone
/// by a rollback like any other change. Tables are listed from <c>sqlite_schema</c>, without SQLite's own <c>sqlite_*</c> tables.
/// </summary>
public sealed class SqliteSchemaVersionStore : ISchemaVersionStore
{
    /// <summary>The one instance (the store holds no state).</summary>
    public static SqliteSchemaVersionStore Instance { get; } = new();

    private SqliteSchemaVersionStore()
    {
    }

    /// <inheritdoc />
    public SqlDialect Dialect => SqlDialect.Sqlite;

    /// <inheritdoc />
    public long ReadVersion(DbConnection connection, DbTransaction? transaction)
    {
        ArgumentNullException.ThrowIfNull(connection);
        using var cmd = connection.CreateCommand();
        cmd.Transaction = transaction;
        cmd.CommandText = "PRAGMA user_version";
        return Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="version"/> is less than 1.</exception>
    public void WriteVersion(DbConnection connection, DbTransaction transaction, int version)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(transaction);
        ArgumentOutOfRangeException.ThrowIfLessThan(version, 1);
        using var cmd = connection.CreateCommand();
        cmd.Transaction = transaction;
        // A PRAGMA takes no parameters; the value is an int formatted invariantly.
        cmd.CommandText = "PRAGMA user_version = " + version.ToString(CultureInfo.InvariantCulture);
        cmd.ExecuteNonQuery();
    }

    /// <inheritdoc />
    public IReadOnlyList<string> ListTables(DbConnection connection, DbTransaction? transaction)
    {
        ArgumentNullException.ThrowIfNull(connection);
        using var cmd = connection.CreateCommand();
        cmd.Transaction = transaction;
        cmd.CommandText = "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name";
        using var r = cmd.ExecuteReader();
        var names = new List<string>();
        while (r.Read())
        {
            names.Add(r.GetString(0));
        }

        return names;
    }
}
