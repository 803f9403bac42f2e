using System.CommandLine;
using Microsoft.Extensions.Options;
using OfflinePki.FactoryCa;

var config = new Option<string>("--config") { Description = "JSON config file with a FactoryCa section", Required = true };

var serve = new Command("serve", "Run the EST enrollment service");
serve.Options.Add(config);
serve.SetAction(async (parse, ct) =>
{
    try
    {
        await using var app = FactoryCaApp.Build(parse.GetValue(config)!);
        await app.RunAsync(ct).ConfigureAwait(false);
        return 0;
    }
    catch (OptionsValidationException ex)
    {
        foreach (var failure in ex.Failures)
        {
            await Console.Error.WriteLineAsync("config error: " + failure).ConfigureAwait(false);
        }

        return 2;
    }
});

var check = new Command("check-config", "Validate the config file and exit");
check.Options.Add(config);
check.SetAction(async (parse, ct) =>
{
    try
    {
        await using var app = FactoryCaApp.Build(parse.GetValue(config)!);
        Console.WriteLine("config ok");
        return 0;
    }
    catch (OptionsValidationException ex)
    {
        foreach (var failure in ex.Failures)
        {
            await Console.Error.WriteLineAsync("config error: " + failure).ConfigureAwait(false);
        }

        return 2;
    }
});

var root = new RootCommand("OfflinePki FactoryCa: offline factory CA for IEEE 802.1AR device identity");
root.Subcommands.Add(serve);
root.Subcommands.Add(check);
return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
