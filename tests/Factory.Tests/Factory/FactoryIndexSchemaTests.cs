using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;
using OfflinePki.FactoryCa;
using OfflinePki.Journal.Index;
using OfflinePki.Journal.Index.Schema;
using OfflinePki.Schema;
using OfflinePki.Sync;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Factory;

/// <summary>Factory index schema versions: an unversioned index of the previous code, newer-file refusal, re-open, a failing migration.</summary>
public class FactoryIndexSchemaTests
{
    // FactoryIndex.cs before schema versions, copied on purpose and frozen: the migrations must keep opening such a file.
    private const string PreviousSchema = """
        PRAGMA journal_mode = WAL;
        PRAGMA synchronous = NORMAL;
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

    private const string PreviousRows = """
        INSERT INTO meta VALUES ('applied_seq', '3'), ('journal_id', '00112233445566778899aabbccddeeff'), ('factory_id', 'F1');
        INSERT INTO issued VALUES ('0A0B', 'DEV-1', 'idevid', 'station-01', 'batch-1', 2, 1950000000, 'aa'),
          ('0C0D', 'DEV-1', 'idevid', 'station-01', 'batch-1', 3, 1950000100, 'bb');
        """;

    private string _dir = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "offlinepki-tests", "index-schema-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown()
    {
        SqliteConnection.ClearAllPools();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private string WritePrevious()
    {
        string path = Path.Combine(_dir, "index.db");
        SqliteFile.Exec(path, PreviousSchema);
        SqliteFile.Exec(path, PreviousRows);
        return path;
    }

    [Test]
    public void An_unversioned_index_of_the_previous_code_is_stamped_v1_with_its_schema_and_rows_unchanged()
    {
        string path = WritePrevious();
        string schema = SqliteFile.SchemaDump(path);
        using (var index = FactoryIndex.Open(path))
        {
            Assert.That((index.SchemaMigration.FromVersion, index.SchemaMigration.ToVersion, index.SchemaMigration.Unversioned), Is.EqualTo((0, 1, true)));
            Assert.That(index.AppliedSeq, Is.EqualTo(3UL));
            Assert.That(index.CountIssued(), Is.EqualTo(2));
            Assert.That(index.FindByDevice("DEV-1").Select(c => c.SerialHex), Is.EqualTo(new[] { "0A0B", "0C0D" }));
            Assert.That(index.ContainsSerial([0x0C, 0x0D]), Is.True);
        }

        Assert.That(SqliteFile.UserVersion(path), Is.EqualTo(FactoryIndexSchema.LatestVersion));
        Assert.That(SqliteFile.SchemaDump(path), Is.EqualTo(schema));

        // Version 1 creates exactly the previous code's schema.
        string fresh = Path.Combine(_dir, "fresh.db");
        using (FactoryIndex.Open(fresh))
        {
        }

        Assert.That(SqliteFile.SchemaDump(fresh), Is.EqualTo(schema));
    }

    [Test]
    public void Reopening_a_current_index_applies_nothing()
    {
        string path = Path.Combine(_dir, "index.db");
        using (var first = FactoryIndex.Open(path))
        {
            Assert.That(first.SchemaMigration.Applied.Select(m => m.Version), Is.EqualTo(new[] { 1 }));
        }

        string schema = SqliteFile.SchemaDump(path);
        for (int i = 0; i < 2; i++)
        {
            using var again = FactoryIndex.Open(path);
            Assert.That((again.SchemaMigration.FromVersion, again.SchemaMigration.ToVersion, again.SchemaMigration.Applied.Count), Is.EqualTo((1, 1, 0)));
        }

        Assert.That(SqliteFile.SchemaDump(path), Is.EqualTo(schema));
        Assert.That(SqliteFile.UserVersion(path), Is.EqualTo(1));
    }

    [Test]
    public void An_index_newer_than_the_code_is_refused_with_one_line_and_left_byte_for_byte_unchanged()
    {
        string path = WritePrevious();
        SqliteFile.Exec(path, "PRAGMA user_version = 3;");
        SqliteFile.Settle(path);
        string hash = SqliteFile.Hash(path);
        var files = SqliteFile.Siblings(path);

        var ex = Assert.Throws<DatabaseSchemaException>(() => FactoryIndex.Open(path))!;
        Assert.That(ex.Message, Is.EqualTo(
            $"factory index {path} has schema version 3, newer than the newest this build knows ({FactoryIndexSchema.LatestVersion}); refused, nothing was written: " +
            "the index is derived from the journal: stop the daemon and run 'FactoryCa rebuild-index', or use the release that wrote it"));
        Assert.That(SqliteFile.Hash(path), Is.EqualTo(hash));
        Assert.That(SqliteFile.Siblings(path), Is.EqualTo(files));
    }

    [Test]
    public void A_file_that_is_not_an_index_is_refused_unchanged()
    {
        string path = Path.Combine(_dir, "index.db");
        SqliteFile.Exec(path, "CREATE TABLE journals (x INTEGER);");
        string hash = SqliteFile.Hash(path);
        Assert.That(Assert.Throws<DatabaseSchemaException>(() => FactoryIndex.Open(path))!.Fault, Is.EqualTo(SchemaFault.NotThisSchema));
        Assert.That(SqliteFile.Hash(path), Is.EqualTo(hash));
    }

    [Test]
    public void A_migration_that_fails_midway_leaves_the_index_at_its_previous_version()
    {
        string path = WritePrevious();
        using (FactoryIndex.Open(path))
        {
        }

        var migrator = FactoryIndexSchema.CreateMigrator([.. FactoryIndexSchema.Migrations, new FailingSchemaMigration(2)]);
        using (var c = SqliteFile.Connect(path))
        {
            var ex = Assert.Throws<DatabaseSchemaException>(() => migrator.Migrate(c, path))!;
            Assert.That(ex.Message, Does.StartWith($"factory index {path}: migration 2 (test: fails after its first statements) failed and was rolled back; the database stays at schema version 1"));
        }

        Assert.That(SqliteFile.UserVersion(path), Is.EqualTo(1));
        Assert.That(SqliteFile.HasTable(path, "half_done"), Is.False);
        using var index = FactoryIndex.Open(path);
        Assert.That(index.CountIssued(), Is.EqualTo(2));
    }

    [Test]
    public async Task The_daemon_refuses_a_newer_index_at_start_and_rebuild_index_replaces_it()
    {
        var pki = TestPki.Create("F1");
        string config = pki.PathOf("factoryca.json");
        string index = Path.Combine(pki.Directory, "data", "factory-F1", "index.db");
        var app = FactoryCaApp.Build(config, s => s.PostConfigure<SyncOptions>(o => o.Enabled = false), o => o.Est.Listen = "https://127.0.0.1:0");
        await app.StartAsync();
        await app.StopAsync();
        await app.DisposeAsync();
        Assert.That(SqliteFile.UserVersion(index), Is.EqualTo(1));

        // As if a newer release had opened it.
        SqliteFile.Exec(index, "PRAGMA user_version = 9;");
        SqliteFile.Settle(index);
        string hash = SqliteFile.Hash(index);

        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
        {
            // Refused while the host starts, before any listener; the timeout only bounds a wrong start.
            Assert.That(await ServeCommand.RunAsync(config, cts.Token), Is.EqualTo(1));
        }

        SqliteConnection.ClearAllPools();
        Assert.That(SqliteFile.Hash(index), Is.EqualTo(hash));

        Assert.That(await RebuildIndexCommand.RunAsync(config, CancellationToken.None), Is.EqualTo(0));
        Assert.That(SqliteFile.UserVersion(index), Is.EqualTo(FactoryIndexSchema.LatestVersion));
    }
}
