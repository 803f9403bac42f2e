using Microsoft.Data.Sqlite;
using NUnit.Framework;
using OfflinePki.Registry;
using OfflinePki.Registry.Schema;
using OfflinePki.Revocation;
using OfflinePki.Schema;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Mirror;

/// <summary>Registry schema versions: an unversioned file of the previous code, newer-file refusal, re-open, failing migrations.</summary>
public class RegistrySchemaTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "offlinepki-tests", "schema-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown()
    {
        SqliteConnection.ClearAllPools();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Test]
    public void An_unversioned_registry_of_the_previous_code_is_stamped_v1_with_its_schema_and_data_unchanged()
    {
        string path = Path.Combine(_dir, "registry.sqlite");
        RegistryV1Fixture.Write(path);
        Assert.That(SqliteFile.UserVersion(path), Is.Zero);
        string schemaBefore = SqliteFile.SchemaDump(path);
        var countsBefore = RegistrySchema.Version1Tables.ToDictionary(t => t, t => SqliteFile.Count(path, t));

        using (var registry = new MirrorRegistry(path, TimeProvider.System))
        {
            var m = registry.SchemaMigration;
            Assert.That((m.FromVersion, m.ToVersion, m.Unversioned, m.Applied.Count), Is.EqualTo((0, 1, true, 1)));

            var journal = registry.ListJournals().Single();
            Assert.That((journal.FactoryId, journal.HeadSeq), Is.EqualTo(("F1", 3UL)));
            Assert.That(registry.GetEntryHash(RegistryV1Fixture.JournalId, 2), Is.EqualTo(new byte[] { 0x02 }));
            var revoked = registry.GetStatus(RegistryV1Fixture.IssuerKeyHash, RegistryV1Fixture.RevokedSerial);
            Assert.That(revoked.State, Is.EqualTo(RegistryCertificateState.Revoked));
            Assert.That(revoked.Revocation!.Reason, Is.EqualTo(CrlReason.KeyCompromise));
            Assert.That(revoked.Revocation.InvalidityDate, Is.EqualTo(DateTimeOffset.FromUnixTimeSeconds(1790000500)));
            Assert.That(registry.GetStatus(RegistryV1Fixture.IssuerKeyHash, RegistryV1Fixture.GoodSerial).State, Is.EqualTo(RegistryCertificateState.Good));
            Assert.That((registry.RevocationVersion, registry.RegistryVersion, registry.GetRevocationVersion(RegistryV1Fixture.IssuerKeyHash)), Is.EqualTo((3L, 7L, 3L)));
            Assert.That(registry.GetDevice("F1", "DEV-1")!.CurrentSerialHex, Is.EqualTo("0A0B"));
            Assert.That(registry.RecentDeviceReports(10).Single().DeviceId, Is.EqualTo("DEV-3"));
            Assert.That(registry.ReadAudit(1, 10).Single().Actor, Is.EqualTo("alice"));
        }

        Assert.That(new MirrorAlertStore(path).Recent(10).Single().Fault, Is.EqualTo("fork"));
        Assert.That(SqliteFile.UserVersion(path), Is.EqualTo(RegistrySchema.LatestVersion));
        Assert.That(SqliteFile.SchemaDump(path), Is.EqualTo(schemaBefore), "stamping v1 must not change the schema");
        Assert.That(RegistrySchema.Version1Tables.ToDictionary(t => t, t => SqliteFile.Count(path, t)), Is.EqualTo(countsBefore));
    }

    [Test]
    public void Version_1_creates_exactly_the_schema_of_the_previous_code()
    {
        string fixture = Path.Combine(_dir, "old.sqlite"), fresh = Path.Combine(_dir, "new.sqlite");
        RegistryV1Fixture.Write(fixture);
        using (new MirrorRegistry(fresh, TimeProvider.System))
        {
        }

        Assert.That(SqliteFile.SchemaDump(fresh), Is.EqualTo(SqliteFile.SchemaDump(fixture)));
        Assert.That(SqliteFile.UserVersion(fresh), Is.EqualTo(1));
    }

    [Test]
    public void An_unversioned_registry_from_before_the_order_and_device_tables_gains_them_and_keeps_its_rows()
    {
        string path = Path.Combine(_dir, "registry.sqlite");
        RegistryV1Fixture.Write(path, complete: false);
        Assert.That(SqliteFile.HasTable(path, "devices"), Is.False);

        using (var registry = new MirrorRegistry(path, TimeProvider.System))
        {
            Assert.That(registry.SchemaMigration.Unversioned, Is.True);
            Assert.That(registry.GetStatus(RegistryV1Fixture.IssuerKeyHash, RegistryV1Fixture.RevokedSerial).State, Is.EqualTo(RegistryCertificateState.Revoked));
            Assert.That(registry.CountDevicesByState(), Is.Empty);
        }

        Assert.That(SqliteFile.UserVersion(path), Is.EqualTo(1));
        foreach (var (table, rows) in RegistryV1Fixture.CoreRowCounts)
        {
            Assert.That(SqliteFile.Count(path, table), Is.EqualTo(rows), table);
        }

        Assert.That(RegistrySchema.Version1Tables.All(t => SqliteFile.HasTable(path, t)), Is.True);
    }

    [Test]
    public void A_registry_newer_than_the_code_is_refused_with_one_line_and_left_byte_for_byte_unchanged()
    {
        string path = Path.Combine(_dir, "registry.sqlite");
        RegistryV1Fixture.Write(path);
        SqliteFile.Exec(path, "PRAGMA user_version = 7;");
        SqliteFile.Settle(path);
        string hash = SqliteFile.Hash(path);
        var files = SqliteFile.Siblings(path);

        var ex = Assert.Throws<DatabaseSchemaException>(() => new MirrorRegistry(path, TimeProvider.System))!;
        Assert.That(ex.Message, Does.StartWith($"registry {path} has schema version 7, newer than the newest this build knows ({RegistrySchema.LatestVersion}); refused, nothing was written"));
        Assert.That(ex.Message, Does.Not.Contain('\n'));
        Assert.That((ex.Fault, ex.Version, ex.LatestVersion, ex.Database), Is.EqualTo((SchemaFault.NewerThanKnown, 7L, RegistrySchema.LatestVersion, path)));

        var alertEx = Assert.Throws<DatabaseSchemaException>(() => new MirrorAlertStore(path))!;
        Assert.That(alertEx.Fault, Is.EqualTo(SchemaFault.NewerThanKnown));
        Assert.That(Assert.Throws<DatabaseSchemaException>(() => RegistrySchema.Inspect(path))!.Fault, Is.EqualTo(SchemaFault.NewerThanKnown));

        SqliteConnection.ClearAllPools();
        Assert.That(SqliteFile.Hash(path), Is.EqualTo(hash));
        Assert.That(SqliteFile.Siblings(path), Is.EqualTo(files));
        Assert.That(SqliteFile.UserVersion(path), Is.EqualTo(7));
    }

    [Test]
    public void A_negative_version_and_a_file_of_another_schema_are_refused_unchanged()
    {
        string negative = Path.Combine(_dir, "negative.sqlite"), other = Path.Combine(_dir, "other.sqlite");
        SqliteFile.Exec(negative, "CREATE TABLE journals (x INTEGER); PRAGMA user_version = -1;");
        SqliteFile.Exec(other, "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;");
        string negativeHash = SqliteFile.Hash(negative), otherHash = SqliteFile.Hash(other);

        Assert.That(Assert.Throws<DatabaseSchemaException>(() => new MirrorRegistry(negative, TimeProvider.System))!.Fault, Is.EqualTo(SchemaFault.NewerThanKnown));
        var ex = Assert.Throws<DatabaseSchemaException>(() => new MirrorRegistry(other, TimeProvider.System))!;
        Assert.That(ex.Fault, Is.EqualTo(SchemaFault.NotThisSchema));
        Assert.That(ex.Message, Is.EqualTo($"{other} is not a registry: it has no schema version and none of its tables (it has meta); refused, nothing was written: check the configured path"));

        SqliteConnection.ClearAllPools();
        Assert.That((SqliteFile.Hash(negative), SqliteFile.Hash(other)), Is.EqualTo((negativeHash, otherHash)));
    }

    [Test]
    public void Reopening_a_current_registry_applies_nothing_and_changes_nothing()
    {
        string path = Path.Combine(_dir, "registry.sqlite");
        using (var first = new MirrorRegistry(path, TimeProvider.System))
        {
            Assert.That((first.SchemaMigration.FromVersion, first.SchemaMigration.ToVersion, first.SchemaMigration.Unversioned), Is.EqualTo((0, 1, false)));
            Assert.That(first.SchemaMigration.Applied.Select(m => m.Version), Is.EqualTo(new[] { 1 }));
        }

        string schema = SqliteFile.SchemaDump(path);
        for (int i = 0; i < 3; i++)
        {
            using var again = new MirrorRegistry(path, TimeProvider.System);
            Assert.That((again.SchemaMigration.FromVersion, again.SchemaMigration.ToVersion, again.SchemaMigration.Applied.Count), Is.EqualTo((1, 1, 0)));
            _ = new MirrorAlertStore(path);
        }

        Assert.That(SqliteFile.SchemaDump(path), Is.EqualTo(schema));
        Assert.That(SqliteFile.UserVersion(path), Is.EqualTo(1));
        Assert.That(SqliteFile.Count(path, "counters"), Is.EqualTo(2));
    }

    [Test]
    public void Concurrent_first_opens_of_a_new_registry_all_succeed_at_one_version()
    {
        string path = Path.Combine(_dir, "registry.sqlite");
        var results = new SchemaMigrationResult[4];
        Parallel.For(0, results.Length, i =>
        {
            using var r = new MirrorRegistry(path, TimeProvider.System);
            results[i] = r.SchemaMigration;
        });

        Assert.That(results.Sum(r => r.Applied.Count), Is.EqualTo(1), "exactly one opener applies migration 1");
        Assert.That(results.All(r => r.ToVersion == 1), Is.True);
        Assert.That(SqliteFile.UserVersion(path), Is.EqualTo(1));
    }

    [Test]
    public void The_runners_transaction_holds_the_sqlite_write_lock_from_its_start()
    {
        // Concurrent migrators are serialized because a step's version re-read happens under BEGIN IMMEDIATE.
        string path = Path.Combine(_dir, "lock.sqlite");
        SqliteFile.Exec(path, "CREATE TABLE t (x INTEGER);");
        using var a = SqliteFile.Connect(path);
        using var tx = ((System.Data.Common.DbConnection)a).BeginTransaction();
        using var b = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, DefaultTimeout = 1 }.ToString());
        b.Open();
        using var begin = b.CreateCommand();
        begin.CommandText = "BEGIN IMMEDIATE";
        Assert.That(Assert.Throws<SqliteException>(() => begin.ExecuteNonQuery())!.SqliteErrorCode, Is.EqualTo(5), "SQLITE_BUSY");
    }

    [Test]
    public void A_migration_that_fails_midway_leaves_the_registry_at_its_previous_version()
    {
        string path = Path.Combine(_dir, "registry.sqlite");
        RegistryV1Fixture.Write(path);
        using (new MirrorRegistry(path, TimeProvider.System))
        {
        }

        var migrator = RegistrySchema.CreateMigrator([.. RegistrySchema.Migrations, new FailingSchemaMigration(2)]);
        Assert.That(migrator.LatestVersion, Is.EqualTo(2));
        using (var c = SqliteFile.Connect(path))
        {
            var ex = Assert.Throws<DatabaseSchemaException>(() => migrator.Migrate(c, path))!;
            Assert.That(ex.Fault, Is.EqualTo(SchemaFault.MigrationFailed));
            Assert.That(ex.Message, Does.StartWith($"registry {path}: migration 2 (test: fails after its first statements) failed and was rolled back; the database stays at schema version 1 (newest known 2): "));
            Assert.That(ex.Message, Does.Contain("no such table: no_such_table"));
            Assert.That(ex.InnerException, Is.InstanceOf<SqliteException>());
        }

        Assert.That(SqliteFile.UserVersion(path), Is.EqualTo(1));
        Assert.That(SqliteFile.HasTable(path, "half_done"), Is.False, "the failed migration's first statements are rolled back");
        Assert.That(SqliteFile.Count(path, "journals"), Is.EqualTo(1));

        // From an empty file: migration 1 commits, 2 fails, the file is a working v1 registry.
        string fresh = Path.Combine(_dir, "fresh.sqlite");
        using (var c = SqliteFile.Connect(fresh))
        {
            Assert.That(Assert.Throws<DatabaseSchemaException>(() => migrator.Migrate(c, fresh))!.Version, Is.EqualTo(1));
        }

        Assert.That(SqliteFile.UserVersion(fresh), Is.EqualTo(1));
        using var registry = new MirrorRegistry(fresh, TimeProvider.System);
        Assert.That(registry.SchemaMigration.Applied, Is.Empty);
        Assert.That(registry.RegistryVersion, Is.Zero);
    }

    [Test]
    public void A_migration_without_a_form_for_the_engine_is_refused_before_anything_is_written()
    {
        string path = Path.Combine(_dir, "registry.sqlite");
        using (new MirrorRegistry(path, TimeProvider.System))
        {
        }

        var migrator = RegistrySchema.CreateMigrator([.. RegistrySchema.Migrations, new PostgreSqlOnlyMigration()]);
        using (var c = SqliteFile.Connect(path))
        {
            var ex = Assert.Throws<NotSupportedException>(() => migrator.Migrate(c, path))!;
            Assert.That(ex.Message, Does.Contain("registry migration 2 (test: PostgreSQL only) has no Sqlite form"));
        }

        Assert.That(SqliteFile.UserVersion(path), Is.EqualTo(1));
    }

    [Test]
    public void The_runner_refuses_migrations_that_are_not_numbered_1_to_N()
    {
        Assert.That(Assert.Throws<ArgumentException>(() => RegistrySchema.CreateMigrator([new FailingSchemaMigration(2)]))!.Message,
            Does.Contain("registry migration at position 0 has version 2; versions must be 1..N in order"));
        Assert.Throws<ArgumentException>(() => RegistrySchema.CreateMigrator([]));
        Assert.Throws<ArgumentException>(() => RegistrySchema.CreateMigrator([.. RegistrySchema.Migrations, .. RegistrySchema.Migrations]));
    }

    [Test]
    public void Inspect_lists_pending_migrations_and_writes_nothing()
    {
        string path = Path.Combine(_dir, "registry.sqlite");
        Assert.That(RegistrySchema.Inspect(path), Is.Null);
        Assert.That(File.Exists(path), Is.False, "inspecting a missing file must not create it");

        RegistryV1Fixture.Write(path);
        SqliteFile.Settle(path);
        string hash = SqliteFile.Hash(path);
        var plan = RegistrySchema.Inspect(path)!;
        Assert.That((plan.CurrentVersion, plan.LatestVersion, plan.Unversioned), Is.EqualTo((0, 1, true)));
        Assert.That(plan.Pending.Select(m => m.Version), Is.EqualTo(new[] { 1 }));
        SqliteConnection.ClearAllPools();
        Assert.That(SqliteFile.Hash(path), Is.EqualTo(hash));
        Assert.That(SqliteFile.UserVersion(path), Is.Zero);
    }

    /// <summary>A test-only migration that has a PostgreSQL form only.</summary>
    private sealed class PostgreSqlOnlyMigration : SqlSchemaMigration
    {
        public override int Version => 2;

        public override string Description => "test: PostgreSQL only";

        public override string? Script(SqlDialect dialect) => dialect == SqlDialect.PostgreSql ? "CREATE TABLE pg_only (x integer);" : null;
    }
}
