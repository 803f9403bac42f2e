using OfflinePki.Schema;

namespace OfflinePki.Tests.Support;

/// <summary>A test-only migration whose script creates a table and a row, then fails on a missing table (any dialect).</summary>
internal sealed class FailingSchemaMigration(int version) : SqlSchemaMigration
{
    public override int Version => version;

    public override string Description => "test: fails after its first statements";

    public override string? Script(SqlDialect dialect) =>
        "CREATE TABLE half_done (x INTEGER); INSERT INTO half_done VALUES (1); INSERT INTO no_such_table VALUES (1);";
}
