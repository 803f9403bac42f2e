using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using OfflinePki.Orders;
using OfflinePki.Registry;
using OfflinePki.Schema;

namespace OfflinePki.MirrorCa.Cli;

/// <summary><c>MirrorCa order add FILE</c>: OEM production orders held by the mirror and delivered to factories in sync responses.</summary>
public static class OrderCommand
{
    /// <summary><c>order add FILE</c>: verifies an OEM-signed order and stores it for delivery to its factory at the next sync.</summary>
    public static Command Create()
    {
        var cmd = new Command("order", "OEM production orders held by the mirror and delivered to factories in sync responses");
        var config = new Option<string>("--config") { Required = true, Description = "Path of mirrorca.json" };
        var actor = new Option<string?>("--actor") { Description = "Who adds it (recorded); default cli:$USER" };
        var file = new Argument<string>("file") { Description = "Signed order (DER CMS SignedData, see ops/sign-order.sh)" };
        var add = new Command("add", "Verify a signed order (signature, chain to the root, order-signing EKU, schema, factory) and store it");
        add.Options.Add(config);
        add.Options.Add(actor);
        add.Arguments.Add(file);
        add.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var err = parseResult.InvocationConfiguration.Error;
            try
            {
                var options = MirrorCaCli.LoadOptions(parseResult.GetRequiredValue(config));
                byte[] bytes;
                string path = parseResult.GetRequiredValue(file);
                try
                {
                    bytes = File.ReadAllBytes(path);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    err.WriteLine($"error: cannot read order file '{path}': {ex.Message}");
                    return 2;
                }

                var root = X509CertificateLoader.LoadCertificateFromFile(options.RootCertificate);
                var order = new ProductionOrderVerifier(root, null, TimeProvider.System).Verify(bytes);
                var factories = options.Factories.Select(f => f.FactoryId).ToList();
                if (order.FactoryId is not null && !factories.Contains(order.FactoryId, StringComparer.Ordinal))
                {
                    err.WriteLine($"error: order {order.OrderId} is for factory {order.FactoryId}, which is not in MirrorCa:Factories ({string.Join(", ", factories)})");
                    return 1;
                }

                using var registry = new MirrorRegistry(options.RegistryPath, TimeProvider.System);
                var outcome = registry.AddOrder(order, parseResult.GetValue(actor) ?? "cli:" + Environment.UserName);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{(outcome == OrderAddOutcome.Added ? "OK stored" : "OK already stored")}: order {order.OrderId} sku {order.Sku} profile {order.Profile} quantity {order.Quantity} for {order.FactoryId ?? "any factory"}, valid {order.NotBefore:yyyy-MM-ddTHH:mm:ssZ}..{order.NotAfter:yyyy-MM-ddTHH:mm:ssZ}; delivered at the next sync"));
                return 0;
            }
            catch (OrderRejectedException ex)
            {
                err.WriteLine($"error: order refused ({ex.Fault}): {ex.Message}");
                return 1;
            }
            catch (Exception ex) when (ex is DatabaseSchemaException or OptionsValidationException or FileNotFoundException)
            {
                err.WriteLine("error: " + ex.Message);
                return 1;
            }
        });
        cmd.Subcommands.Add(add);
        return cmd;
    }
}
