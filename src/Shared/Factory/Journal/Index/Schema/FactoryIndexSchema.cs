using OfflinePki.Schema;

namespace OfflinePki.Journal.Index.Schema;

/// <summary>
/// The factory index's schema: its own migrations, one per version. <see cref="FactoryIndex.Open"/> migrates an older
/// index forward and refuses a newer one. The index is derived from the journal, so the remedy for a newer or broken
/// index is always <c>FactoryCa rebuild-index</c>.
/// </summary>
public static class FactoryIndexSchema
{
    /// <summary>The migrations, versions 1..<see cref="LatestVersion"/>.</summary>
    public static IReadOnlyList<ISchemaMigration> Migrations { get; } = [new FactoryIndexMigration0001Initial()];

    /// <summary>The newest schema version this build knows.</summary>
    public static int LatestVersion => Migrations.Count;

    /// <summary>The tables of version 1; an unversioned file with either was made by a build before schema versions.</summary>
    public static IReadOnlyList<string> Version1Tables { get; } = ["meta", "issued"];

    /// <summary>The runner for the index's schema.</summary>
    /// <param name="migrations">The migrations to run instead of <see cref="Migrations"/> (tests), or null.</param>
    /// <exception cref="ArgumentException"><paramref name="migrations"/> are not versions 1..N in order.</exception>
    public static SchemaMigrator CreateMigrator(IEnumerable<ISchemaMigration>? migrations = null) =>
        new("factory index", migrations ?? Migrations, SqliteSchemaVersionStore.Instance, Version1Tables,
            "the index is derived from the journal: stop the daemon and run 'FactoryCa rebuild-index', or use the release that wrote it");
}
