using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using OfflinePki.Orders;
using OfflinePki.Registry;
using OfflinePki.Schema;

namespace OfflinePki.MirrorCa.Cli;

/// <summary><c>MirrorCa report orders</c> and <c>report order ID</c>: per-order reports from the registry.</summary>
public static class ReportCommand
{
    /// <summary><c>report orders</c> and <c>report order ID --format csv|json [--out FILE]</c>.</summary>
    public static Command Create()
    {
        var cmd = new Command("report", "Per-order reports from the registry");
        var config1 = new Option<string>("--config") { Required = true, Description = "Path of mirrorca.json" };
        var orders = new Command("orders", "Per order: authorized, issued, re-issued (rework, reenroll), revoked; and certificates outside every order");
        orders.Options.Add(config1);
        orders.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            try
            {
                var options = MirrorCaCli.LoadOptions(parseResult.GetRequiredValue(config1));
                using var registry = new MirrorRegistry(options.RegistryPath, TimeProvider.System);
                var report = registry.ReportOrders(new ProductionOrderVerifier(X509CertificateLoader.LoadCertificateFromFile(options.RootCertificate), null, TimeProvider.System));
                output.WriteLine("order\tsku\tprofile\tfactories\tauthorized\tissued\treissued\trevoked");
                foreach (var l in report.Orders)
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{l.OrderId}\t{l.Sku ?? "?"}\t{l.Profile ?? "?"}\t{(l.Factories.Count == 0 ? "-" : string.Join(",", l.Factories))}\t{(l.Authorized is { } a ? a.ToString(CultureInfo.InvariantCulture) : "?")}\t{l.Issued}\t{l.Reissued}\t{l.Revoked}"));
                }

                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"outside every order: {report.OutsideCertificates} certificate(s), {report.OutsideRevoked} revoked{(report.UnknownBatchIds.Count > 0 ? "; unknown batch ids: " + string.Join(", ", report.UnknownBatchIds) : string.Empty)}"));
                foreach (var l in report.Orders.Where(l => l.Problem is not null))
                {
                    output.WriteLine($"ALERT order {l.OrderId}: {l.Problem}");
                }

                foreach (var l in report.Orders.Where(l => l.Authorized is { } a && l.Issued > a))
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ALERT order {l.OrderId}: {l.Issued} issued exceeds the authorized {l.Authorized}"));
                }

                return 0;
            }
            catch (Exception ex) when (ex is DatabaseSchemaException or OptionsValidationException or FileNotFoundException)
            {
                parseResult.InvocationConfiguration.Error.WriteLine("error: " + ex.Message);
                return 1;
            }
        });

        var config2 = new Option<string>("--config") { Required = true, Description = "Path of mirrorca.json" };
        var id = new Argument<string>("id") { Description = "Order id" };
        var format = new Option<string>("--format") { DefaultValueFactory = _ => "csv", Description = "csv (RFC 4180) or json" };
        var outFile = new Option<string?>("--out") { Description = "File to write (default: standard output)" };
        var order = new Command("order", "Batch report of one order: device ID, serial, SHA-256, MAC, station, operator, time, kind");
        order.Options.Add(config2);
        order.Options.Add(format);
        order.Options.Add(outFile);
        order.Arguments.Add(id);
        order.SetAction(parseResult =>
        {
            var err = parseResult.InvocationConfiguration.Error;
            string fmt = parseResult.GetValue(format)!.ToLowerInvariant();
            if (fmt is not ("csv" or "json"))
            {
                err.WriteLine($"error: --format '{fmt}' must be csv or json");
                return 2;
            }

            string orderId = parseResult.GetRequiredValue(id);
            try
            {
                var options = MirrorCaCli.LoadOptions(parseResult.GetRequiredValue(config2));
                using var registry = new MirrorRegistry(options.RegistryPath, TimeProvider.System);
                var known = registry.ReportOrders();
                if (!known.Orders.Any(l => l.OrderId == orderId) && !known.UnknownBatchIds.Contains(orderId, StringComparer.Ordinal))
                {
                    err.WriteLine($"error: order '{orderId}' is unknown to the registry (see 'MirrorCa report orders')");
                    return 1;
                }

                string? path = parseResult.GetValue(outFile);
                long n;
                if (path is null)
                {
                    using var buffer = new MemoryStream();
                    n = Write(buffer, fmt, orderId, registry);
                    parseResult.InvocationConfiguration.Output.Write(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
                    if (fmt == "json")
                    {
                        parseResult.InvocationConfiguration.Output.WriteLine();
                    }
                }
                else
                {
                    string temp = path + ".tmp";
                    using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
                    {
                        n = Write(file, fmt, orderId, registry);
                        file.Flush(flushToDisk: true);
                    }

                    File.Move(temp, path, overwrite: true);
                    parseResult.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {n} certificate(s) of order {orderId} to {path}"));
                }

                return 0;
            }
            catch (Exception ex) when (ex is DatabaseSchemaException or OptionsValidationException or FileNotFoundException or IOException or UnauthorizedAccessException)
            {
                err.WriteLine("error: " + ex.Message);
                return 1;
            }
        });
        cmd.Subcommands.Add(orders);
        cmd.Subcommands.Add(order);
        return cmd;
    }

    private static long Write(Stream output, string format, string orderId, MirrorRegistry registry) => format == "csv"
        ? BatchReport.WriteCsv(output, registry.BatchReportRows(orderId))
        : BatchReport.WriteJson(output, orderId, registry.BatchReportRows(orderId));
}
