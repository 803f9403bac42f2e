namespace OfflinePki.Schema;

/// <summary>Why <see cref="SchemaMigrator"/> refused a database or stopped migrating it.</summary>
public enum SchemaFault
{
    /// <summary>The database's version is newer than the newest migration this build knows (or negative). Nothing was written.</summary>
    NewerThanKnown,
    /// <summary>The database is unversioned and has tables, but none of this schema's: it is some other file. Nothing was written.</summary>
    NotThisSchema,
    /// <summary>A migration failed; its transaction was rolled back and the database stays at the version before it.</summary>
    MigrationFailed,
}

/// <summary>
/// A database that the code refuses to open or could not migrate. The message is one line that names the file, its
/// version and the newest version this build knows, and says what to do.
/// </summary>
public sealed class DatabaseSchemaException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="fault">What went wrong.</param>
    /// <param name="database">The database (file path or connection name, no password).</param>
    /// <param name="version">The database's version when the error was raised.</param>
    /// <param name="latestVersion">The newest version this build knows.</param>
    /// <param name="message">The one-line message.</param>
    /// <param name="inner">The engine error of a failed migration, or null.</param>
    public DatabaseSchemaException(SchemaFault fault, string database, long version, int latestVersion, string message, Exception? inner = null)
        : base(message, inner)
    {
        Fault = fault;
        Database = database;
        Version = version;
        LatestVersion = latestVersion;
    }

    /// <summary>What went wrong.</summary>
    public SchemaFault Fault { get; }

    /// <summary>The database (file path).</summary>
    public string Database { get; }

    /// <summary>The database's version when the error was raised.</summary>
    public long Version { get; }

    /// <summary>The newest version this build knows.</summary>
    public int LatestVersion { get; }
}
