using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Data.Sqlite;

namespace OfflinePki.Tests.Support;

/// <summary>Raw looks at a SQLite file for schema tests, each through its own unpooled connection (nothing stays open).</summary>
internal static class SqliteFile
{
    /// <summary>Runs <paramref name="sql"/> (several statements allowed) on the file, creating it if missing.</summary>
    public static void Exec(string path, string sql)
    {
        using var c = Connect(path);
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    /// <summary>The header's user_version (the schema version).</summary>
    public static long UserVersion(string path) => Scalar(path, "PRAGMA user_version");

    /// <summary>Rows of a table.</summary>
    public static long Count(string path, string table) => Scalar(path, $"SELECT COUNT(*) FROM \"{table}\"");

    /// <summary>One line per schema object (type, name, table, SQL text), sorted: equal dumps mean the same schema, byte for byte.</summary>
    public static string SchemaDump(string path)
    {
        using var c = Connect(path);
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT type, name, tbl_name, IFNULL(sql, '') FROM sqlite_schema ORDER BY type, name";
        using var r = cmd.ExecuteReader();
        var sb = new StringBuilder();
        while (r.Read())
        {
            sb.Append(CultureInfo.InvariantCulture, $"{r.GetString(0)} {r.GetString(1)} {r.GetString(2)}: {r.GetString(3)}\n");
        }

        return sb.ToString();
    }

    /// <summary>Whether the file has this table.</summary>
    public static bool HasTable(string path, string table)
    {
        using var c = Connect(path);
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = $n";
        cmd.Parameters.AddWithValue("$n", table);
        return cmd.ExecuteScalar() is not null;
    }

    /// <summary>
    /// Folds a WAL file into the main file and leaves the file in rollback-journal mode, so that the main file alone holds
    /// the whole database and its hash shows any write (an opener that writes would leave a -wal or change it).
    /// </summary>
    public static void Settle(string path)
    {
        SqliteConnection.ClearAllPools();
        Exec(path, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;");
    }

    /// <summary>SHA-256 of the file's bytes, hex.</summary>
    public static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    /// <summary>The names of the files in the file's directory (to see a -wal or -journal appear).</summary>
    public static string[] Siblings(string path) => [.. Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName).Order(StringComparer.Ordinal)!];

    private static long Scalar(string path, string sql)
    {
        using var c = Connect(path);
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    /// <summary>An open, unpooled connection to the file (the caller disposes it).</summary>
    public static SqliteConnection Connect(string path)
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        c.Open();
        return c;
    }
}
