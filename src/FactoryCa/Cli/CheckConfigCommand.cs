using System.CommandLine;
using Microsoft.Extensions.Options;

namespace OfflinePki.FactoryCa;

/// <summary><c>FactoryCa check-config --config F</c>: validates the config. Exit codes: 0 valid, 2 invalid.</summary>
public static class CheckConfigCommand
{
    /// <summary>The <c>check-config</c> command.</summary>
    public static Command Create() => FactoryCli.ConfigCommand("check-config", "Validate the config file and exit", (config, _) => RunAsync(config));

    /// <summary>check-config: builds the host (validating every option) and exits.</summary>
    public static async Task<int> RunAsync(string configPath)
    {
        try
        {
            await using var app = FactoryCaApp.Build(configPath);
            Console.WriteLine("config ok");
            return 0;
        }
        catch (OptionsValidationException ex)
        {
            return FactoryCli.ConfigError(ex);
        }
    }
}
