using System.CommandLine;
using Microsoft.Extensions.Options;
using OfflinePki.Asn1;
using OfflinePki.Registry;
using OfflinePki.Revocation;
using OfflinePki.Schema;

namespace OfflinePki.MirrorCa.Cli;

/// <summary><c>MirrorCa serve --config mirrorca.json</c>: runs the mirror (HTTP CRL/CA/OCSP endpoints and the sync endpoint).</summary>
public static class ServeCommand
{
    /// <summary>The <c>serve</c> command.</summary>
    public static Command Create()
    {
        var config = MirrorCaCli.ConfigOption();
        var cmd = new Command("serve", "Run the mirror: HTTP CRL/CA/OCSP endpoints (and the sync endpoint once wired)");
        cmd.Options.Add(config);
        cmd.SetAction(async (parseResult, ct) =>
        {
            var err = parseResult.InvocationConfiguration.Error;
            try
            {
                await using var app = MirrorCaApp.Build(parseResult.GetRequiredValue(config));
                await app.RunAsync(ct).ConfigureAwait(false);
                return 0;
            }
            catch (Exception ex) when (ex is DatabaseSchemaException or OptionsValidationException or FileNotFoundException)
            {
                await err.WriteLineAsync("error: " + ex.Message).ConfigureAwait(false);
                return 1;
            }
        });
        return cmd;
    }
}
