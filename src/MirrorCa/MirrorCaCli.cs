using System.CommandLine;
using Spectre.Console;
using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using OfflinePki.Asn1;
using OfflinePki.Registry;
using OfflinePki.Revocation;
using OfflinePki.Schema;

namespace OfflinePki.MirrorCa;

/// <summary>The MirrorCa command line: assembles the verbs of <c>Cli/</c> (<c>serve</c>, <c>revoke</c>, <c>release-hold</c>, <c>status</c>, <c>audit verify|list</c>, <c>import</c>, <c>order</c>, <c>report</c>, <c>migrate</c>) and holds what they share.</summary>
public static class MirrorCaCli
{
    /// <summary>Builds the root command. Verbs write to the invocation's Output/Error writers.</summary>
    public static RootCommand Create()
    {
        var root = new RootCommand("OfflinePki MirrorCa: journal registry, revocation, CRL and OCSP");
        root.Subcommands.Add(Cli.ServeCommand.Create());
        root.Subcommands.Add(Cli.RevokeCommand.Create());
        root.Subcommands.Add(Cli.StatusCommand.Create());
        root.Subcommands.Add(Cli.ReleaseHoldCommand.Create());
        root.Subcommands.Add(Cli.AuditCommand.Create());
        root.Subcommands.Add(Cli.ImportCommand.Create());
        root.Subcommands.Add(Cli.OrderCommand.Create());
        root.Subcommands.Add(Cli.ReportCommand.Create());
        root.Subcommands.Add(Cli.MigrateCommand.Create());
        return root;
    }

    /// <summary>Loads, resolves and validates the "MirrorCa" section without starting the host (for CLI verbs).</summary>
    /// <exception cref="FileNotFoundException">The config file does not exist.</exception>
    /// <exception cref="OptionsValidationException">The configuration is invalid; the messages name the keys.</exception>
    public static MirrorCaOptions LoadOptions(string configPath)
    {
        var full = Path.GetFullPath(configPath);
        if (!File.Exists(full))
        {
            throw new FileNotFoundException($"config file '{full}' not found", full);
        }

        var config = new ConfigurationBuilder().AddJsonFile(full, optional: false).AddEnvironmentVariables("OFFLINEPKI_").Build();
        var options = new MirrorCaOptions();
        config.GetSection(MirrorCaOptions.SectionName).Bind(options);
        options.ResolvePaths(Path.GetDirectoryName(full)!);
        var result = new MirrorCaOptionsValidator().Validate(null, options);
        if (result.Failed)
        {
            throw new OptionsValidationException(MirrorCaOptions.SectionName, typeof(MirrorCaOptions), result.Failures);
        }

        return options;
    }

    /// <summary>The <c>--config</c> option every verb takes (a new instance per verb).</summary>
    internal static Option<string> ConfigOption() => new("--config") { Required = true, Description = "Path of mirrorca.json" };

    /// <summary>The hex SHA-1 issuer key hash of the configured factory <paramref name="issuer"/>, else <paramref name="issuer"/> as given (null: every issuer).</summary>
    internal static string? ResolveIssuer(MirrorCaOptions options, string? issuer)
    {
        if (issuer is not null && options.Factories.FirstOrDefault(f => f.FactoryId == issuer) is { } configured)
        {
            using var ca = X509CertificateLoader.LoadCertificateFromFile(configured.IssuingCa.Certificate);
            return Convert.ToHexString(IssuerHashes.KeyHash(ca));
        }

        return issuer;
    }
}
