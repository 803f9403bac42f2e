using System.CommandLine;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using OfflinePki.Registry;
using OfflinePki.Registry.Schema;
using OfflinePki.Schema;

namespace OfflinePki.MirrorCa.Cli;

/// <summary>
/// <c>MirrorCa migrate --config mirrorca.json [--dry-run]</c>: brings the configured registry's schema forward to the
/// newest version this build knows and prints the from and to versions. <c>--dry-run</c> lists the migrations that
/// would run and writes nothing (it does not even create a missing file). A registry newer than this build is refused
/// with exit code 1 and one line naming the file, its version and the newest known version. <c>serve</c> migrates the
/// embedded SQLite registry the same way at start and logs it (<see cref="OpenRegistryForServe"/>).
/// </summary>
public static class MigrateCommand
{
    /// <summary>Builds the verb.</summary>
    public static Command Create()
    {
        var config = new Option<string>("--config") { Required = true, Description = "Path of mirrorca.json" };
        var dryRun = new Option<bool>("--dry-run") { Description = "List the migrations that would run; write nothing" };
        var cmd = new Command("migrate", "Apply pending schema migrations to the registry and print the from/to versions (serve does this at start)");
        cmd.Options.Add(config);
        cmd.Options.Add(dryRun);
        cmd.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var err = parseResult.InvocationConfiguration.Error;
            string? path = null;
            try
            {
                path = MirrorCaCli.LoadOptions(parseResult.GetRequiredValue(config)).RegistryPath;
                if (parseResult.GetValue(dryRun))
                {
                    WritePlan(output, path, RegistrySchema.Inspect(path));
                    return 0;
                }

                using var registry = new MirrorRegistry(path, TimeProvider.System);
                WriteResult(output, registry.SchemaMigration);
                return 0;
            }
            catch (Exception ex) when (ex is DatabaseSchemaException or OptionsValidationException or FileNotFoundException or NotSupportedException)
            {
                err.WriteLine("error: " + ex.Message);
                return 1;
            }
            catch (SqliteException ex)
            {
                err.WriteLine($"error: registry {path}: {ex.Message}");
                return 1;
            }
        });
        return cmd;
    }

    /// <summary>
    /// Opens the registry for <c>serve</c>: migrates an older schema forward and logs from and to versions; a newer
    /// schema is refused (the exception stops the start).
    /// </summary>
    /// <param name="path">The registry file.</param>
    /// <param name="time">The clock.</param>
    /// <param name="logger">Where the migration is logged.</param>
    /// <exception cref="DatabaseSchemaException">The registry is newer than this build, not a registry, or a migration failed.</exception>
    internal static MirrorRegistry OpenRegistryForServe(string path, TimeProvider time, ILogger logger)
    {
        var registry = new MirrorRegistry(path, time);
        var m = registry.SchemaMigration;
        if (m.Applied.Count > 0)
        {
            RegistrySchemaLog.Migrated(logger, m.Database, Describe(m.FromVersion, m.Unversioned), m.ToVersion, string.Join("; ", m.Applied.Select(Line)));
        }

        return registry;
    }

    private static void WritePlan(TextWriter output, string path, SchemaPlan? plan)
    {
        if (plan is null)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"registry {path} does not exist: migrate would create it at schema version {RegistrySchema.LatestVersion}"));
            foreach (var m in RegistrySchema.Migrations)
            {
                output.WriteLine("  would apply " + Line(m));
            }
        }
        else if (plan.Pending.Count == 0)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"registry {plan.Database}: schema version {plan.CurrentVersion} is current; nothing to do"));
        }
        else
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"registry {plan.Database}: schema version {Describe(plan.CurrentVersion, plan.Unversioned)} -> {plan.LatestVersion} would apply:"));
            foreach (var m in plan.Pending)
            {
                output.WriteLine("  would apply " + Line(m));
            }
        }

        output.WriteLine("dry run: nothing written");
    }

    private static void WriteResult(TextWriter output, SchemaMigrationResult result)
    {
        if (result.Applied.Count == 0)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"registry {result.Database}: schema version {result.ToVersion} is current; nothing to do"));
            return;
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"registry {result.Database}: schema version {Describe(result.FromVersion, result.Unversioned)} -> {result.ToVersion}"));
        foreach (var m in result.Applied)
        {
            output.WriteLine("  applied " + Line(m));
        }
    }

    private static string Describe(int version, bool unversioned) =>
        unversioned ? "0 (unversioned: made before schema versions)" : version.ToString(CultureInfo.InvariantCulture);

    private static string Line(ISchemaMigration m) => string.Create(CultureInfo.InvariantCulture, $"{m.Version}: {m.Description}");
}

/// <summary>The registry schema's log lines.</summary>
internal static partial class RegistrySchemaLog
{
    [LoggerMessage(Level = LogLevel.Information, Message = "registry {Path}: schema migrated from version {From} to {To} ({Applied})")]
    public static partial void Migrated(ILogger logger, string path, string from, int to, string applied);
}
