using System.CommandLine;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OfflinePki.Journal;
using OfflinePki.Journal.Index;
using OfflinePki.Sync;

namespace OfflinePki.FactoryCa;

/// <summary>What the FactoryCa verbs (Cli/*Command.cs) share: the config option and file, the control-socket call. Exit codes: 0 ok, 1 operation failed, 2 bad config or usage.</summary>
public static class FactoryCli
{
    /// <summary>The <c>--config</c> option of the verbs (a new instance per verb).</summary>
    internal static Option<string> ConfigOption() => new("--config") { Description = "JSON config file with a FactoryCa section", Required = true };

    /// <summary>A verb whose only option is <c>--config</c>.</summary>
    /// <param name="name">The verb.</param>
    /// <param name="description">Its help text.</param>
    /// <param name="run">Runs it with the config path; returns the exit code.</param>
    internal static Command ConfigCommand(string name, string description, Func<string, CancellationToken, Task<int>> run)
    {
        var config = ConfigOption();
        var command = new Command(name, description);
        command.Options.Add(config);
        command.SetAction((parse, ct) => run(parse.GetValue(config)!, ct));
        return command;
    }

    /// <summary>Calls the daemon's control socket and prints the answer. Exit codes: 0 success, 1 error answer or no daemon.</summary>
    internal static async Task<int> CallAsync(Func<Task<HttpResponseMessage>> call, string what)
    {
        try
        {
            using var response = await call().ConfigureAwait(false);
            string body = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                Console.Error.Write(body);
                return 1;
            }

            Console.WriteLine(body);
            return 0;
        }
        catch (HttpRequestException ex) when (ex.InnerException is SocketException || ex.HttpRequestError == HttpRequestError.ConnectionError)
        {
            Console.Error.WriteLine($"{what}: the FactoryCa daemon is not running (no control socket): {ex.Message}");
            return 1;
        }
    }

    /// <summary>The FactoryCa options of a config file, with paths resolved like the daemon resolves them (not validated).</summary>
    internal static FactoryCaOptions LoadOptions(string configPath)
    {
        string full = Path.GetFullPath(configPath);
        var configuration = new ConfigurationBuilder().AddJsonFile(full, optional: false).AddEnvironmentVariables("OFFLINEPKI_").Build();
        var o = new FactoryCaOptions();
        configuration.GetSection(FactoryCaOptions.SectionName).Bind(o);
        o.ResolvePaths(Path.GetDirectoryName(full)!);
        return o;
    }

    /// <summary>FactoryCa:DataDirectory of a config file, resolved like the daemon resolves it.</summary>
    internal static string DataDirectoryOf(string configPath)
    {
        string full = Path.GetFullPath(configPath);
        var configuration = new ConfigurationBuilder().AddJsonFile(full, optional: false).AddEnvironmentVariables("OFFLINEPKI_").Build();
        string data = configuration[FactoryCaOptions.SectionName + ":DataDirectory"]
            ?? throw new OptionsValidationException(FactoryCaOptions.SectionName, typeof(FactoryCaOptions), ["FactoryCa:DataDirectory is required"]);
        return Path.GetFullPath(data, Path.GetDirectoryName(full)!);
    }

    /// <summary>Prints the failures of a config and returns exit code 2.</summary>
    internal static int ConfigError(OptionsValidationException ex)
    {
        foreach (var failure in ex.Failures)
        {
            Console.Error.WriteLine("config error: " + failure);
        }

        return 2;
    }

    /// <summary>True when a FactoryCa daemon answers on the control socket of <paramref name="dataDirectory"/> (a stale socket file is not a daemon).</summary>
    internal static async Task<bool> DaemonRunningAsync(string dataDirectory, CancellationToken cancellationToken)
    {
        if (!File.Exists(ControlEndpoints.SocketPath(dataDirectory)))
        {
            return false;
        }

        using var probe = ControlEndpoints.CreateClient(dataDirectory);
        try
        {
            using var r = await probe.GetAsync(new Uri("control/status", UriKind.Relative), cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (HttpRequestException)
        {
            return false; // a stale socket file of a stopped daemon
        }
    }
}
