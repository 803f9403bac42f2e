using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using NUnit.Framework;
using OfflinePki.MirrorCa;
using OfflinePki.Registry.Schema;
using OfflinePki.Schema;
using OfflinePki.Tests.Factory;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Mirror;

/// <summary><c>MirrorCa migrate [--dry-run]</c> in process, and <c>serve</c>'s migration at start.</summary>
public class MigrateCommandTests
{
    private static (int Exit, string Out, string Err) Run(params string[] args) => MirrorCli.Run(args);

    /// <summary>Replaces the bed's registry file with the unversioned fixture of the previous code; returns its path.</summary>
    private static string ReplaceWithFixture(MirrorTestBed bed)
    {
        string path = MirrorCaCli.LoadOptions(bed.ConfigPath).RegistryPath;
        Delete(bed, path);
        RegistryV1Fixture.Write(path);
        SqliteFile.Settle(path);
        return path;
    }

    private static void Delete(MirrorTestBed bed, string path)
    {
        bed.Registry.Dispose();
        SqliteConnection.ClearAllPools();
        foreach (var suffix in new[] { string.Empty, "-wal", "-shm", "-journal" })
        {
            File.Delete(path + suffix);
        }
    }

    [Test]
    public void Migrate_stamps_an_unversioned_registry_after_a_dry_run_that_changes_nothing()
    {
        using var bed = new MirrorTestBed();
        string path = ReplaceWithFixture(bed);
        string hash = SqliteFile.Hash(path);
        var files = SqliteFile.Siblings(path);

        var dry = Run("migrate", "--config", bed.ConfigPath, "--dry-run");
        Assert.That(dry.Exit, Is.Zero, dry.Err);
        Assert.That(dry.Out.ReplaceLineEndings("\n"), Is.EqualTo(
            $"registry {path}: schema version 0 (unversioned: made before schema versions) -> 1 would apply:\n" +
            $"  would apply 1: {RegistrySchema.Migrations[0].Description}\n" +
            "dry run: nothing written\n"));
        SqliteConnection.ClearAllPools();
        Assert.That(SqliteFile.Hash(path), Is.EqualTo(hash), "--dry-run must not write");
        Assert.That(SqliteFile.Siblings(path), Is.EqualTo(files));
        Assert.That(SqliteFile.UserVersion(path), Is.Zero);

        var run = Run("migrate", "--config", bed.ConfigPath);
        Assert.That(run.Exit, Is.Zero, run.Err);
        Assert.That(run.Out, Does.StartWith($"registry {path}: schema version 0 (unversioned: made before schema versions) -> 1")
            .And.Contain("  applied 1: initial schema"));
        Assert.That(SqliteFile.UserVersion(path), Is.EqualTo(1));
        Assert.That(SqliteFile.Count(path, "certificates"), Is.EqualTo(2));

        var again = Run("migrate", "--config", bed.ConfigPath);
        Assert.That((again.Exit, again.Out.TrimEnd()), Is.EqualTo((0, $"registry {path}: schema version 1 is current; nothing to do")));
        var dryAgain = Run("migrate", "--config", bed.ConfigPath, "--dry-run");
        Assert.That(dryAgain.Out, Does.StartWith($"registry {path}: schema version 1 is current; nothing to do").And.Contain("dry run: nothing written"));

        var status = Run("status", "--config", bed.ConfigPath);
        Assert.That(status.Exit, Is.Zero, status.Err);
        Assert.That(status.Out, Does.Contain("factory F1").And.Contain("head seq 3"));
    }

    [Test]
    public void Migrate_dry_run_on_a_missing_registry_does_not_create_it_and_migrate_does()
    {
        using var bed = new MirrorTestBed();
        string path = MirrorCaCli.LoadOptions(bed.ConfigPath).RegistryPath;
        Delete(bed, path);

        var dry = Run("migrate", "--config", bed.ConfigPath, "--dry-run");
        Assert.That(dry.Exit, Is.Zero, dry.Err);
        Assert.That(dry.Out, Does.StartWith($"registry {path} does not exist: migrate would create it at schema version {RegistrySchema.LatestVersion}")
            .And.Contain("would apply 1: ").And.Contain("dry run: nothing written"));
        Assert.That(File.Exists(path), Is.False);

        var run = Run("migrate", "--config", bed.ConfigPath);
        Assert.That(run.Exit, Is.Zero, run.Err);
        Assert.That(run.Out, Does.StartWith($"registry {path}: schema version 0 -> 1"));
        Assert.That(SqliteFile.UserVersion(path), Is.EqualTo(1));
    }

    [Test]
    public void Migrate_and_its_dry_run_refuse_a_newer_registry_with_one_line_and_change_nothing()
    {
        using var bed = new MirrorTestBed();
        string path = MirrorCaCli.LoadOptions(bed.ConfigPath).RegistryPath;
        bed.Registry.Dispose();
        SqliteFile.Exec(path, "PRAGMA user_version = 2;");
        SqliteFile.Settle(path);
        string hash = SqliteFile.Hash(path);

        foreach (var args in new[] { new[] { "migrate", "--config", bed.ConfigPath }, ["migrate", "--config", bed.ConfigPath, "--dry-run"] })
        {
            var r = Run(args);
            Assert.That(r.Exit, Is.EqualTo(1), string.Join(' ', args));
            Assert.That(r.Out, Is.Empty);
            Assert.That(r.Err.TrimEnd(), Is.EqualTo(
                $"error: registry {path} has schema version 2, newer than the newest this build knows ({RegistrySchema.LatestVersion}); refused, nothing was written: " +
                "use a MirrorCa release that knows this version, or restore the backup taken before the upgrade"));
        }

        SqliteConnection.ClearAllPools();
        Assert.That(SqliteFile.Hash(path), Is.EqualTo(hash));
    }

    [Test]
    public void Migrate_refuses_a_registry_path_that_is_not_sqlite_and_leaves_it_unchanged()
    {
        using var bed = new MirrorTestBed();
        string path = MirrorCaCli.LoadOptions(bed.ConfigPath).RegistryPath;
        Delete(bed, path);
        File.WriteAllText(path, new string('x', 4096));

        foreach (var args in new[] { new[] { "migrate", "--config", bed.ConfigPath }, ["migrate", "--config", bed.ConfigPath, "--dry-run"] })
        {
            var r = Run(args);
            Assert.That(r.Exit, Is.EqualTo(1), string.Join(' ', args));
            Assert.That(r.Err, Does.StartWith($"error: registry {path}: ").And.Contain("not a database"));
        }

        SqliteConnection.ClearAllPools();
        Assert.That(File.ReadAllText(path), Is.EqualTo(new string('x', 4096)));
    }

    [Test]
    public void Serve_status_and_revoke_refuse_a_newer_registry_with_the_same_one_line()
    {
        using var bed = new MirrorTestBed();
        string path = MirrorCaCli.LoadOptions(bed.ConfigPath).RegistryPath;
        bed.Registry.Dispose();
        SqliteFile.Exec(path, "PRAGMA user_version = 4;");
        SqliteFile.Settle(path);
        string hash = SqliteFile.Hash(path);

        foreach (var args in new[]
        {
            new[] { "serve", "--config", bed.ConfigPath },
            ["status", "--config", bed.ConfigPath],
            ["revoke", "--config", bed.ConfigPath, "--serial", "01", "--reason", "keyCompromise"],
        })
        {
            var r = Run(args);
            Assert.That(r.Exit, Is.EqualTo(1), args[0]);
            Assert.That(r.Err.TrimEnd(), Does.StartWith($"error: registry {path} has schema version 4, newer than the newest this build knows").And.Not.Contain('\n'), args[0]);
        }

        SqliteConnection.ClearAllPools();
        Assert.That(SqliteFile.Hash(path), Is.EqualTo(hash));
    }

    [Test]
    public async Task Serve_migrates_an_unversioned_registry_at_start_and_logs_it_and_refuses_a_newer_one()
    {
        using var bed = new MirrorTestBed();
        string path = ReplaceWithFixture(bed);
        var overrides = new Dictionary<string, string?> { ["MirrorCa:Http:Listen"] = "http://127.0.0.1:0", ["MirrorCa:Sync:Listen"] = "" };
        var logs = new CapturingLoggerProvider();
        await using (var app = MirrorCaApp.Build(bed.ConfigPath, overrides, b => b.Logging.AddProvider(logs)))
        {
            await app.StartAsync();
            await app.StopAsync();
        }

        Assert.That(SqliteFile.UserVersion(path), Is.EqualTo(1));
        Assert.That(logs.Lines, Has.One.Contains($"registry {path}: schema migrated from version 0 (unversioned: made before schema versions) to 1 (1: initial schema"));

        SqliteConnection.ClearAllPools();
        SqliteFile.Exec(path, "PRAGMA user_version = 5;");
        SqliteFile.Settle(path);
        string hash = SqliteFile.Hash(path);
        await using (var app = MirrorCaApp.Build(bed.ConfigPath, overrides))
        {
            Exception? ex = null;
            try
            {
                await app.StartAsync();
            }
            catch (Exception e)
            {
                ex = e;
            }

            var schema = ex as DatabaseSchemaException ?? ex?.InnerException as DatabaseSchemaException;
            Assert.That(schema, Is.Not.Null, ex?.ToString() ?? "serve started over a newer registry");
            Assert.That(schema!.Message, Does.StartWith($"registry {path} has schema version 5, newer than the newest this build knows"));
        }

        SqliteConnection.ClearAllPools();
        Assert.That(SqliteFile.Hash(path), Is.EqualTo(hash));
    }
}
