using System.Security.Cryptography;
using System.Text;
using Microsoft.Data.Sqlite;

namespace OfflinePki.Tests.Resilience;

/// <summary>A SHA-256 digest of the applied data of a SQLite registry (every row of every table except sync_alerts and <c>excludeTables</c>).</summary>
internal static class RegistryDigest
{
    public static string Of(string databasePath, params string[] excludeTables)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = databasePath, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        c.Open();
        var tables = new List<string>();
        using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name <> 'sync_alerts' ORDER BY name";
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                tables.Add(r.GetString(0));
            }
        }

        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var t in tables.Except(excludeTables))
        {
            h.AppendData(Encoding.UTF8.GetBytes("table " + t + "\n"));
            using var cmd = c.CreateCommand();
            cmd.CommandText = $"SELECT * FROM \"{t}\"";
            using var r = cmd.ExecuteReader();
            var rows = new List<string>();
            while (r.Read())
            {
                var cols = new string[r.FieldCount];
                for (int i = 0; i < r.FieldCount; i++)
                {
                    cols[i] = r.IsDBNull(i) ? "null" : r.GetValue(i) switch
                    {
                        byte[] b => Convert.ToHexString(b),
                        var v => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture) ?? "",
                    };
                }

                rows.Add(string.Join('|', cols));
            }

            rows.Sort(StringComparer.Ordinal);
            foreach (var row in rows)
            {
                h.AppendData(Encoding.UTF8.GetBytes(row + "\n"));
            }
        }

        return Convert.ToHexString(h.GetHashAndReset());
    }
}
