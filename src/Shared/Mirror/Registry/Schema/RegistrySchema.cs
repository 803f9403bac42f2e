using Microsoft.Data.Sqlite;
using OfflinePki.Schema;

namespace OfflinePki.Registry.Schema;

/// <summary>
/// The mirror registry's schema: its migrations, one per version, and the runner over the registry's SQLite file.
/// <see cref="MirrorRegistry"/> and <see cref="MirrorAlertStore"/> migrate the file forward when they open it and refuse
/// a file newer than <see cref="LatestVersion"/>; <c>MirrorCa migrate</c> does it on its own (with <c>--dry-run</c>: <see cref="Inspect"/>).
/// </summary>
public static class RegistrySchema
{
    /// <summary>The migrations, versions 1..<see cref="LatestVersion"/>.</summary>
    public static IReadOnlyList<ISchemaMigration> Migrations { get; } = [new RegistryMigration0001Initial()];

    /// <summary>The newest schema version this build knows.</summary>
    public static int LatestVersion => Migrations.Count;

    /// <summary>The tables of version 1; an unversioned file with any of them was made by a build before schema versions.</summary>
    public static IReadOnlyList<string> Version1Tables { get; } =
    [
        "issuance_details", "factory_orders", "oem_orders", "journals", "entries", "certificates", "revocations", "crl_numbers", "counters",
        "revocation_events", "audit_log", "devices", "device_reports", "sync_alerts",
    ];

    /// <summary>The runner for the registry's schema.</summary>
    /// <param name="migrations">The migrations to run instead of <see cref="Migrations"/> (tests), or null.</param>
    /// <exception cref="ArgumentException"><paramref name="migrations"/> are not versions 1..N in order.</exception>
    public static SchemaMigrator CreateMigrator(IEnumerable<ISchemaMigration>? migrations = null) =>
        new("registry", migrations ?? Migrations, SqliteSchemaVersionStore.Instance, Version1Tables,
            "use a MirrorCa release that knows this version, or restore the backup taken before the upgrade");

    /// <summary>What migrating the registry file would do, read without writing (<c>migrate --dry-run</c>).</summary>
    /// <param name="databasePath">The registry's SQLite file.</param>
    /// <returns>The plan, or null when the file does not exist (a migration would create it at <see cref="LatestVersion"/>).</returns>
    /// <exception cref="ArgumentException"><paramref name="databasePath"/> is empty.</exception>
    /// <exception cref="DatabaseSchemaException">The file is newer than this build, or not a registry.</exception>
    /// <exception cref="SqliteException">The file cannot be read (not SQLite, locked, no permission).</exception>
    public static SchemaPlan? Inspect(string databasePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(databasePath);
        var full = Path.GetFullPath(databasePath);
        if (!File.Exists(full))
        {
            return null;
        }

        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = full, Mode = SqliteOpenMode.ReadOnly, Pooling = false, DefaultTimeout = 30 }.ToString());
        c.Open();
        return CreateMigrator().Plan(c, full);
    }
}
