using System.CommandLine;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OfflinePki.Enrollment;
using OfflinePki.Factory;
using OfflinePki.Issuance;
using OfflinePki.Journal;
using OfflinePki.Journal.Index;
using OfflinePki.Journal.V1;
using OfflinePki.Orders;
using OfflinePki.Policy;

namespace OfflinePki.FactoryCa;

/// <summary><c>FactoryCa sign-batch</c>: signs a folder of CSRs under a production order, offline (<see cref="BatchSigner"/>).</summary>
public static class SignBatchCommand
{
    /// <summary>The <c>sign-batch</c> command.</summary>
    public static Command Create()
    {
        var config = FactoryCli.ConfigOption();
        var batchOrder = new Option<string>("--order") { Description = "accepted production order id the certificates consume", Required = true };
        var csrDir = new Option<string>("--csr-dir") { Description = "folder of *.csr, *.pem, *.der, *.req PKCS#10 files (PEM or DER)", Required = true };
        var batchOut = new Option<string>("--out") { Description = "output folder: <basename>.crt, chain.pem, refused.csv, batch-report.csv/.json", Required = true };
        var batchOperator = new Option<string?>("--operator") { Description = "operator id journaled with each certificate" };
        var batchProfile = new Option<string?>("--profile") { Description = "certificate profile (default: the order's)" };
        var command = new Command("sign-batch", "Offline: sign a folder of CSRs under a production order (daemon stopped; station batch-signer); exit 1 if any was refused");
        foreach (var option in new Option[] { config, batchOrder, csrDir, batchOut, batchOperator, batchProfile })
        {
            command.Options.Add(option);
        }

        command.SetAction((parse, ct) => RunAsync(parse.GetValue(config)!, parse.GetValue(batchOrder)!, parse.GetValue(csrDir)!, parse.GetValue(batchOut)!,
            parse.GetValue(batchOperator), parse.GetValue(batchProfile), ct));
        return command;
    }

    /// <summary>The batch signer over a built FactoryCa host's services (<see cref="FactoryCaApp.Build"/>).</summary>
    /// <param name="services">The host's service provider.</param>
    /// <returns>The signer.</returns>
    /// <exception cref="InvalidOperationException">A required FactoryCa service is not registered.</exception>
    internal static BatchSigner Signer(IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(services);
        return new BatchSigner(services.GetRequiredService<IEnrollmentService>(), services.GetRequiredService<OrderBook>(),
            services.GetService<DevicePolicy>(), services.GetRequiredService<FactoryIndex>(), services.GetRequiredService<IJournalReader>(),
            services.GetRequiredService<CertificateProfileSet>(), services.GetRequiredService<IssuingAuthority>(), services.GetRequiredService<TimeProvider>());
    }

    /// <summary>
    /// The <c>sign-batch</c> verb: refuses when the daemon runs on the data directory, builds the FactoryCa services
    /// without starting Kestrel, signs the batch, prints one line per file and the summary.
    /// Exit codes: 0 every CSR issued or already issued; 1 at least one refused, or the batch stopped early (journal or
    /// CA key unavailable); 2 nothing signed (bad config or arguments, unknown order, the daemon running).
    /// </summary>
    /// <param name="configPath">The FactoryCa config file.</param>
    /// <param name="orderId">The order id (--order).</param>
    /// <param name="csrDirectory">The CSR folder (--csr-dir).</param>
    /// <param name="outputDirectory">The output folder (--out).</param>
    /// <param name="operatorId">--operator, or null.</param>
    /// <param name="profileName">--profile, or null for the order's profile.</param>
    /// <param name="cancellationToken">Ctrl-C.</param>
    /// <returns>The exit code.</returns>
    public static async Task<int> RunAsync(string configPath, string orderId, string csrDirectory, string outputDirectory, string? operatorId, string? profileName,
        CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(configPath);
        string data;
        try
        {
            data = FactoryCli.DataDirectoryOf(configPath);
        }
        catch (Exception ex) when (ex is OptionsValidationException or FileNotFoundException or IOException or InvalidDataException)
        {
            Console.Error.WriteLine("config error: " + ex.Message);
            return 2;
        }

        if (await FactoryCli.DaemonRunningAsync(data, cancellationToken).ConfigureAwait(false))
        {
            Console.Error.WriteLine($"sign-batch: the FactoryCa daemon is running on this data directory ({data}); stop it, or sign through it over EST "
                + "(only one process may write the journal). Nothing was signed.");
            return 2;
        }

        WebApplication app;
        try
        {
            app = FactoryCaApp.Build(configPath, services => services.Configure<LoggerFilterOptions>(o => o.MinLevel = LogLevel.Warning));
        }
        catch (OptionsValidationException ex)
        {
            foreach (var failure in ex.Failures)
            {
                Console.Error.WriteLine("config error: " + failure);
            }

            return 2;
        }
        catch (JournalUnavailableException ex) when (ex.InnerException is JournalInUseException)
        {
            // The daemon started after the probe, or its control socket is gone: the writer lock still says so.
            Console.Error.WriteLine($"sign-batch: the FactoryCa daemon is running on this data directory ({data}) (the journal writer lock is held); stop it, "
                + "or sign through it over EST. Nothing was signed.");
            return 2;
        }
        catch (Exception ex) when (ex is FileNotFoundException or JournalUnavailableException or Keys.SigningKeyUnavailableException or IOException)
        {
            Console.Error.WriteLine("sign-batch: cannot open the factory (is the daemon running on this data directory?): " + ex.Message);
            return 2;
        }

        await using (app.ConfigureAwait(false))
        {
            BatchResult result;
            try
            {
                result = await Signer(app.Services)
                    .SignAsync(orderId, csrDirectory, outputDirectory, operatorId, profileName, cancellationToken).ConfigureAwait(false);
            }
            catch (BatchSigningException ex)
            {
                Console.Error.WriteLine("sign-batch: " + ex.Message + " Nothing was signed.");
                return 2;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine("sign-batch: cannot write the output: " + ex.Message + " (re-run the same folder: nothing is issued twice)");
                return 1;
            }

            foreach (var i in result.Items)
            {
                Console.WriteLine(i.Outcome switch
                {
                    BatchOutcome.Issued => $"{i.File}: issued {i.DeviceId} serial {i.Row!.SerialHex}",
                    BatchOutcome.AlreadyIssued => $"{i.File}: already issued {i.DeviceId} serial {i.Row!.SerialHex}",
                    _ => $"{i.File}: refused {i.Code}: {i.Message}",
                });
            }

            Console.WriteLine(result.Summary);
            if (result.StoppedBy is not null)
            {
                Console.Error.WriteLine("sign-batch stopped: " + result.StoppedBy);
            }

            return result.Refused > 0 || result.StoppedBy is not null ? 1 : 0;
        }
    }
}
