using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Options;
using OfflinePki.Asn1;
using OfflinePki.Registry;
using OfflinePki.Revocation;
using OfflinePki.Schema;

namespace OfflinePki.MirrorCa.Cli;

/// <summary><c>MirrorCa release-hold</c>: releases a certificateHold.</summary>
public static class ReleaseHoldCommand
{
    /// <summary>The <c>release-hold</c> command.</summary>
    public static Command Create()
    {
        var config = MirrorCaCli.ConfigOption();
        var serial = new Option<string>("--serial") { Required = true, Description = "Serial (hex) of a certificate revoked with certificateHold" };
        var factory = new Option<string?>("--factory") { Description = "Factory id; needed only if the serial exists under several issuers" };
        var actor = new Option<string?>("--actor") { Description = "Who releases (recorded); default cli:$USER" };
        var cmd = new Command("release-hold", "Release a certificateHold: the certificate is valid again and appears in the next delta CRL as removeFromCRL");
        foreach (var o in new Option[] { config, serial, factory, actor })
        {
            cmd.Options.Add(o);
        }

        cmd.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var err = parseResult.InvocationConfiguration.Error;
            byte[] serialBytes;
            var serialText = parseResult.GetRequiredValue(serial);
            try
            {
                serialBytes = SerialNumber.FromHex(serialText);
            }
            catch (Exception ex) when (ex is FormatException or ArgumentException)
            {
                err.WriteLine($"error: --serial '{serialText}' is not a positive hex serial of at most 20 octets: {ex.Message}");
                return 2;
            }

            try
            {
                var options = MirrorCaCli.LoadOptions(parseResult.GetRequiredValue(config));
                using var registry = new MirrorRegistry(options.RegistryPath, TimeProvider.System);
                var result = registry.ReleaseHold(MirrorCaCli.ResolveIssuer(options, parseResult.GetValue(factory)), serialBytes, parseResult.GetValue(actor) ?? "cli:" + Environment.UserName);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"OK released hold: serial {SerialNumber.ToHex(result.Serial)} factory {result.FactoryId ?? "?"} device {result.DeviceId} at {result.ReleasedAt:yyyy-MM-ddTHH:mm:ssZ}"));
                return 0;
            }
            catch (Exception ex) when (ex is RevocationException or ArgumentException or DatabaseSchemaException or OptionsValidationException or FileNotFoundException)
            {
                err.WriteLine("error: " + ex.Message);
                return 1;
            }
        });
        return cmd;
    }
}
