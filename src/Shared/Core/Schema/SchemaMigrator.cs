using System.Data.Common;
using System.Globalization;

namespace OfflinePki.Schema;

/// <summary>What <see cref="SchemaMigrator.Plan"/> found: the database's version and the migrations it lacks.</summary>
/// <param name="Database">The database (file path).</param>
/// <param name="CurrentVersion">Its stamped version (0: new, or unversioned).</param>
/// <param name="LatestVersion">The newest version this build knows.</param>
/// <param name="Unversioned">True when the database has this schema's tables but no version stamp: it was made before
/// schema versions existed, and migration 1 completes and stamps it without touching what it holds.</param>
/// <param name="Pending">The migrations that would run, in order (empty when current).</param>
public sealed record SchemaPlan(string Database, int CurrentVersion, int LatestVersion, bool Unversioned, IReadOnlyList<ISchemaMigration> Pending);

/// <summary>What <see cref="SchemaMigrator.Migrate"/> did.</summary>
/// <param name="Database">The database (file path).</param>
/// <param name="FromVersion">The version before (0: new or unversioned).</param>
/// <param name="ToVersion">The version after (the newest known).</param>
/// <param name="Unversioned">True when the database was made before schema versions (see <see cref="SchemaPlan.Unversioned"/>).</param>
/// <param name="Applied">The migrations applied, in order (empty when it was current).</param>
public sealed record SchemaMigrationResult(string Database, int FromVersion, int ToVersion, bool Unversioned, IReadOnlyList<ISchemaMigration> Applied);

/// <summary>
/// Brings a database's schema forward, one <see cref="ISchemaMigration"/> per version, each in its own transaction
/// together with its version stamp. It refuses, before writing anything, a database whose version is newer than the
/// newest migration it has (a newer release made it), and an unversioned database that has tables but none of this
/// schema's (the wrong file). Engine-neutral: the version lives where the <see cref="ISchemaVersionStore"/> keeps it.
/// Two processes migrating at once are safe: each step re-reads the version inside its write transaction.
/// </summary>
public sealed class SchemaMigrator
{
    private readonly ISchemaMigration[] _migrations;
    private readonly ISchemaVersionStore _store;
    private readonly HashSet<string> _ownTables;

    /// <summary>Creates the runner for one schema.</summary>
    /// <param name="schemaName">The schema's name for messages, e.g. "registry" or "factory index".</param>
    /// <param name="migrations">The migrations, versions 1..N in order with no gap.</param>
    /// <param name="store">Where the engine keeps the version.</param>
    /// <param name="ownTables">Tables of this schema at version 1; an unversioned database with any of them is recognised as made before versions.</param>
    /// <param name="newerAdvice">What to tell an operator whose database is newer, e.g. "use the release that wrote it".</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="schemaName"/> or <paramref name="newerAdvice"/> is empty, there is no migration,
    /// the versions are not 1..N in order, or <paramref name="ownTables"/> is empty.</exception>
    public SchemaMigrator(string schemaName, IEnumerable<ISchemaMigration> migrations, ISchemaVersionStore store, IEnumerable<string> ownTables, string newerAdvice)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(schemaName);
        ArgumentNullException.ThrowIfNull(migrations);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(ownTables);
        ArgumentException.ThrowIfNullOrWhiteSpace(newerAdvice);
        _migrations = [.. migrations];
        if (_migrations.Length == 0)
        {
            throw new ArgumentException("a schema needs at least migration 1", nameof(migrations));
        }

        for (int i = 0; i < _migrations.Length; i++)
        {
            if (_migrations[i] is null || _migrations[i].Version != i + 1)
            {
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                    $"{schemaName} migration at position {i} has version {_migrations[i]?.Version.ToString(CultureInfo.InvariantCulture) ?? "null"}; versions must be 1..N in order"), nameof(migrations));
            }
        }

        _ownTables = new HashSet<string>(ownTables, StringComparer.OrdinalIgnoreCase);
        if (_ownTables.Count == 0)
        {
            throw new ArgumentException("the version-1 tables are needed to recognise an unversioned database", nameof(ownTables));
        }

        SchemaName = schemaName;
        NewerAdvice = newerAdvice;
        _store = store;
    }

    /// <summary>The schema's name in messages.</summary>
    public string SchemaName { get; }

    /// <summary>What a refusal of a newer database tells the operator to do.</summary>
    public string NewerAdvice { get; }

    /// <summary>The newest version this runner knows (its last migration's).</summary>
    public int LatestVersion => _migrations.Length;

    /// <summary>The migrations, versions 1..<see cref="LatestVersion"/>.</summary>
    public IReadOnlyList<ISchemaMigration> Migrations => _migrations;

    /// <summary>Reads the database's version and lists what <see cref="Migrate"/> would apply. Writes nothing.</summary>
    /// <param name="connection">An open connection to the database.</param>
    /// <param name="database">The database's name in messages (its file path).</param>
    /// <returns>The plan.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="DatabaseSchemaException"><see cref="SchemaFault.NewerThanKnown"/> or <see cref="SchemaFault.NotThisSchema"/>.</exception>
    /// <exception cref="DbException">The database cannot be read.</exception>
    public SchemaPlan Plan(DbConnection connection, string database)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(database);
        return PlanIn(connection, null, database);
    }

    /// <summary>
    /// Applies every pending migration in order, each in its own transaction with its version stamp. A database that is
    /// current is not written.
    /// </summary>
    /// <param name="connection">An open connection with no active transaction.</param>
    /// <param name="database">The database's name in messages (its file path).</param>
    /// <returns>From and to versions and the migrations applied.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="DatabaseSchemaException"><see cref="SchemaFault.NewerThanKnown"/> or <see cref="SchemaFault.NotThisSchema"/> (nothing
    /// written), or <see cref="SchemaFault.MigrationFailed"/>: that migration was rolled back, the earlier ones of this call stay applied.</exception>
    /// <exception cref="NotSupportedException">A pending migration has no form for the engine's dialect (checked before any is applied).</exception>
    /// <exception cref="DbException">The database cannot be read or locked.</exception>
    public SchemaMigrationResult Migrate(DbConnection connection, string database)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(database);
        var plan = PlanIn(connection, null, database);
        foreach (var m in plan.Pending)
        {
            if (!m.Supports(_store.Dialect))
            {
                throw new NotSupportedException($"{SchemaName} migration {m.Version} ({m.Description}) has no {_store.Dialect} form; {database} was not changed");
            }
        }

        var applied = new List<ISchemaMigration>();
        int version = plan.CurrentVersion;
        foreach (var m in plan.Pending)
        {
            using var tx = connection.BeginTransaction();
            // Re-read under the write lock: another process may have migrated meanwhile.
            var now = PlanIn(connection, tx, database);
            version = now.CurrentVersion;
            if (version >= m.Version)
            {
                continue;
            }

            try
            {
                m.Apply(connection, tx, _store.Dialect);
                _store.WriteVersion(connection, tx, m.Version);
                tx.Commit();
            }
            catch (DbException ex)
            {
                tx.Rollback();
                throw new DatabaseSchemaException(SchemaFault.MigrationFailed, database, version, LatestVersion, string.Create(CultureInfo.InvariantCulture,
                    $"{SchemaName} {database}: migration {m.Version} ({m.Description}) failed and was rolled back; the database stays at schema version {version} (newest known {LatestVersion}): {OneLine(ex.Message)}"), ex);
            }

            version = m.Version;
            applied.Add(m);
        }

        return new SchemaMigrationResult(database, plan.CurrentVersion, Math.Max(version, plan.CurrentVersion), plan.Unversioned, applied);
    }

    private SchemaPlan PlanIn(DbConnection connection, DbTransaction? tx, string database)
    {
        long version = _store.ReadVersion(connection, tx);
        if (version < 0 || version > LatestVersion)
        {
            throw new DatabaseSchemaException(SchemaFault.NewerThanKnown, database, version, LatestVersion, string.Create(CultureInfo.InvariantCulture,
                $"{SchemaName} {database} has schema version {version}, newer than the newest this build knows ({LatestVersion}); refused, nothing was written: {NewerAdvice}"));
        }

        bool unversioned = false;
        if (version == 0)
        {
            var tables = _store.ListTables(connection, tx);
            unversioned = tables.Any(_ownTables.Contains);
            if (tables.Count > 0 && !unversioned)
            {
                throw new DatabaseSchemaException(SchemaFault.NotThisSchema, database, version, LatestVersion,
                    $"{database} is not a {SchemaName}: it has no schema version and none of its tables (it has {string.Join(", ", tables.Take(5))}{(tables.Count > 5 ? ", ..." : string.Empty)}); refused, nothing was written: check the configured path");
            }
        }

        return new SchemaPlan(database, (int)version, LatestVersion, unversioned, _migrations[(int)version..]);
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");
}
