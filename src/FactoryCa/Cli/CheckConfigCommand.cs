using System.CommandLine;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OfflinePki.Journal;
using OfflinePki.Journal.Index;
using OfflinePki.Sync;

namespace OfflinePki.FactoryCa;

/// <summary><c>FactoryCa check-config --config F</c>: validates the config. Exit codes: 0 valid, 2 invalid.</summary>
public static class CheckConfigCommand
{
    /// <summary>The <c>check-config</c> command.</summary>
    public static Command Create()
    {
        var config = FactoryCli.ConfigOption();
        var command = new Command("check-config", "Validate the config file and exit");
        foreach (var option in new Option[] { config })
        {
            command.Options.Add(option);
        }

        command.SetAction((parse, ct) => RunAsync(parse.GetValue(config)!));
        return command;
    }

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
