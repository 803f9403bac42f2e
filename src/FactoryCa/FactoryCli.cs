using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OfflinePki.Journal;
using OfflinePki.Journal.Index;
using OfflinePki.Sync;

namespace OfflinePki.FactoryCa;

/// <summary>The FactoryCa command-line verbs. Exit codes: 0 ok, 1 operation failed, 2 bad config or usage.</summary>
public static class FactoryCli
{
    /// <summary>serve: runs the daemon until SIGTERM/Ctrl-C.</summary>
    public static async Task<int> ServeAsync(string configPath, CancellationToken cancellationToken)
    {
        try
        {
            await using var app = FactoryCaApp.Build(configPath);
            await app.RunAsync(cancellationToken).ConfigureAwait(false);
            return 0;
        }
        catch (OptionsValidationException ex)
        {
            return ConfigError(ex);
        }
        catch (OfflinePki.Schema.DatabaseSchemaException ex)
        {
            // A newer (or foreign) index.db: one line naming the file and versions, and the remedy (rebuild-index).
            Console.Error.WriteLine("error: " + ex.Message);
            return 1;
        }
    }

    /// <summary>check-config: builds the host (validating every option) and exits.</summary>
    public static async Task<int> CheckConfigAsync(string configPath)
    {
        try
        {
            await using var app = FactoryCaApp.Build(configPath);
            Console.WriteLine("config ok");
            return 0;
        }
        catch (OptionsValidationException ex)
        {
            return ConfigError(ex);
        }
    }

    /// <summary>sync-now: POST /control/sync on the daemon's control socket.</summary>
    public static async Task<int> SyncNowAsync(string configPath, CancellationToken cancellationToken)
    {
        using var client = ControlEndpoints.CreateClient(DataDirectoryOf(configPath));
        return await CallAsync(() => client.PostAsync(new Uri("control/sync", UriKind.Relative), null, cancellationToken), "sync").ConfigureAwait(false);
    }

    /// <summary>status: GET /control/status on the daemon's control socket.</summary>
    public static async Task<int> StatusAsync(string configPath, CancellationToken cancellationToken)
    {
        using var client = ControlEndpoints.CreateClient(DataDirectoryOf(configPath));
        return await CallAsync(() => client.GetAsync(new Uri("control/status", UriKind.Relative), cancellationToken), "status").ConfigureAwait(false);
    }

    /// <summary>verify: checks every hash, the chain, genesis against the root, every certificate and checkpoint signature.</summary>
    public static int Verify(string journalPath, string rootPath)
    {
        X509Certificate2 root;
        try
        {
            root = X509CertificateLoader.LoadCertificateFromFile(rootPath);
        }
        catch (Exception ex) when (ex is IOException or System.Security.Cryptography.CryptographicException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"cannot load root certificate '{rootPath}': {ex.Message}");
            return 2;
        }

        try
        {
            var r = JournalFileVerifier.Verify(journalPath, root);
            Console.WriteLine($"journal {Convert.ToHexStringLower(r.JournalId)} of factory {r.FactoryId}: OK");
            Console.WriteLine($"  entries {r.Entries}, certificates issued {r.CertificatesIssued}, checkpoints {r.Checkpoints}");
            Console.WriteLine($"  head seq {r.HeadSeq} hash {Convert.ToHexStringLower(r.HeadHash)}");
            Console.WriteLine($"  last signed checkpoint: entry {r.LastCheckpointSeq}; entries after it (hash-chained, not yet signed): {r.UnverifiedTailEntries}");
            if (r.TornTailBytes > 0)
            {
                Console.WriteLine($"  torn tail: {r.TornTailBytes} bytes after the last complete record (never acknowledged; recovery drops them)");
            }

            return 0;
        }
        catch (JournalVerificationException ex)
        {
            Console.Error.WriteLine("journal verification FAILED: " + ex.Message);
            return 1;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JournalUnavailableException)
        {
            Console.Error.WriteLine($"cannot read journal '{journalPath}': {ex.Message}");
            return 2;
        }
    }

    /// <summary>rebuild-index: deletes the index and replays the journal into a new one. The daemon must be stopped.</summary>
    public static async Task<int> RebuildIndexAsync(string configPath, CancellationToken cancellationToken)
    {
        string data = DataDirectoryOf(configPath);
        using (var probe = ControlEndpoints.CreateClient(data))
        {
            try
            {
                using var r = await probe.GetAsync(new Uri("control/status", UriKind.Relative), cancellationToken).ConfigureAwait(false);
                Console.Error.WriteLine("the FactoryCa daemon is running on this data directory; stop it before rebuilding the index");
                return 1;
            }
            catch (HttpRequestException)
            {
                // Not running: go on.
            }
        }

        var reader = JournalFileReader.Open(Path.Combine(data, "journal", "journal.log"));
        using var index = FactoryIndex.Rebuild(Path.Combine(data, "index.db"), reader);
        Console.WriteLine($"index rebuilt from the journal: applied seq {index.AppliedSeq}, certificates {index.CountIssued()}");
        return 0;
    }

    private static async Task<int> CallAsync(Func<Task<HttpResponseMessage>> call, string what)
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

    /// <summary>
    /// export: writes a signed air-gap bundle of seqs <paramref name="from"/>..<paramref name="to"/> (0: the head),
    /// extended to the next checkpoint. With the daemon running it is first asked (control socket) to checkpoint.
    /// </summary>
    public static async Task<int> ExportAsync(string configPath, ulong from, ulong to, string outPath, CancellationToken cancellationToken)
    {
        var o = LoadOptions(configPath);
        using (var control = ControlEndpoints.CreateClient(o.DataDirectory))
        {
            try
            {
                using var r = await control.PostAsync(new Uri("control/checkpoint", UriKind.Relative), null, cancellationToken).ConfigureAwait(false);
                if (!r.IsSuccessStatusCode)
                {
                    Console.Error.Write(await r.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
                    return 1;
                }
            }
            catch (HttpRequestException)
            {
                // The daemon is not running: read the journal as it is (its shutdown wrote a checkpoint).
            }
        }

        var reader = JournalFileReader.Open(Path.Combine(o.DataDirectory, "journal", "journal.log"));
        string? passphrase = o.JournalSigner.Key.PassphraseEnvironmentVariable is { Length: > 0 } v ? Environment.GetEnvironmentVariable(v) : null;
        using var key = OfflinePki.Keys.SoftwareKeyLoader.Load(o.JournalSigner.Key.File, passphrase);
        using var cert = X509CertificateLoader.LoadCertificateFromFile(o.JournalSigner.Certificate);
        string temp = outPath + ".tmp";
        try
        {
            ExportBundleInfo info;
            using (var output = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            {
                info = ExportBundleWriter.Write(reader, from, to, key, cert.RawData, output, TimeProvider.System);
                output.Flush(flushToDisk: true);
            }

            File.Move(temp, outPath, overwrite: true);
            Console.WriteLine($"exported seqs {info.FirstSeq}..{info.LastSeq} ({info.Entries} entries) to {outPath}");
            return 0;
        }
        catch (ExportBundleException ex)
        {
            File.Delete(temp);
            Console.Error.WriteLine("export failed: " + ex.Message);
            return 1;
        }
    }

    /// <summary>import-receipt: verifies a mirror receipt file and stores it (through the daemon when it runs).</summary>
    public static async Task<int> ImportReceiptAsync(string configPath, string inPath, CancellationToken cancellationToken)
    {
        var o = LoadOptions(configPath);
        var bytes = await File.ReadAllBytesAsync(inPath, cancellationToken).ConfigureAwait(false);
        using (var control = ControlEndpoints.CreateClient(o.DataDirectory))
        {
            try
            {
                using var content = new ByteArrayContent(bytes);
                using var r = await control.PostAsync(new Uri("control/receipt", UriKind.Relative), content, cancellationToken).ConfigureAwait(false);
                string body = await r.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                (r.IsSuccessStatusCode ? Console.Out : Console.Error).WriteLine(body.TrimEnd());
                return r.IsSuccessStatusCode ? 0 : 1;
            }
            catch (HttpRequestException)
            {
                // Not running: store it directly.
            }
        }

        try
        {
            var receipt = OfflinePki.Sync.V1.MirrorReceipt.Parser.ParseFrom(bytes);
            var reader = JournalFileReader.Open(Path.Combine(o.DataDirectory, "journal", "journal.log"));
            var store = new MirrorReceiptStore(Path.Combine(o.DataDirectory, MirrorReceiptStore.FileName));
            var book = new MirrorReceiptBook(new MirrorReceiptVerifier(X509CertificateLoader.LoadCertificateFromFile(o.RootCertificate)), store, reader);
            bool advanced = book.Accept(receipt);
            Console.WriteLine($"receipt for seq {receipt.Seq} {(advanced ? "stored" : "already covered")}; confirmed seq {store.ConfirmedSeq}");
            return 0;
        }
        catch (Exception ex) when (ex is MirrorReceiptException or Google.Protobuf.InvalidProtocolBufferException)
        {
            Console.Error.WriteLine("receipt refused: " + ex.Message);
            return 1;
        }
    }

    /// <summary>import-order: sends a signed production order to the running daemon, which verifies and journals it.</summary>
    public static async Task<int> ImportOrderAsync(string configPath, string orderPath, CancellationToken cancellationToken)
    {
        byte[] bytes;
        try
        {
            bytes = await File.ReadAllBytesAsync(orderPath, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"cannot read order file '{orderPath}': {ex.Message}");
            return 2;
        }

        string data = DataDirectoryOf(configPath);
        if (!await BatchSigner.DaemonRunningAsync(data, cancellationToken).ConfigureAwait(false))
        {
            return await ImportOrderOfflineAsync(configPath, bytes, cancellationToken).ConfigureAwait(false);
        }

        using var client = ControlEndpoints.CreateClient(data);
        using var content = new ByteArrayContent(bytes);
        return await CallAsync(() => client.PostAsync(new Uri("control/order", UriKind.Relative), content, cancellationToken), "import-order").ConfigureAwait(false);
    }

    /// <summary>
    /// import-order with the daemon stopped (an air-gapped factory between shifts): opens the journal itself, verifies
    /// the order and journals OrderAccepted exactly as the daemon would. The journal writer lock keeps a daemon that
    /// starts meanwhile out.
    /// </summary>
    private static async Task<int> ImportOrderOfflineAsync(string configPath, byte[] signedOrder, CancellationToken cancellationToken)
    {
        Microsoft.AspNetCore.Builder.WebApplication app;
        try
        {
            app = FactoryCaApp.Build(configPath, services => services.Configure<Microsoft.Extensions.Logging.LoggerFilterOptions>(
                o => o.MinLevel = Microsoft.Extensions.Logging.LogLevel.Warning));
        }
        catch (OptionsValidationException ex)
        {
            return ConfigError(ex);
        }
        catch (Exception ex) when (ex is FileNotFoundException or JournalUnavailableException or Keys.SigningKeyUnavailableException or IOException)
        {
            Console.Error.WriteLine("import-order: cannot open the factory (is the daemon starting on this data directory?): " + ex.Message);
            return 2;
        }

        await using (app.ConfigureAwait(false))
        {
            try
            {
                var r = await app.Services.GetRequiredService<Orders.OrderBook>().AcceptAsync(signedOrder, "file", cancellationToken).ConfigureAwait(false);
                Console.WriteLine(r.Accepted
                    ? $"OK accepted (daemon stopped, journaled directly): order {r.OrderId} quantity {r.Quantity}, journal seq {r.JournalSeq}"
                    : $"OK already accepted: order {r.OrderId} quantity {r.Quantity}, issued {r.Issued}");
                return 0;
            }
            catch (Orders.OrderRejectedException ex)
            {
                Console.Error.WriteLine($"import-order: order refused ({ex.Fault}): {ex.Message}");
                return 1;
            }
            catch (JournalUnavailableException ex)
            {
                Console.Error.WriteLine("import-order: the journal is unavailable, order not accepted: " + ex.Message);
                return 1;
            }
        }
    }

    /// <summary>orders: lists the running daemon's accepted orders with issued, in-flight and remaining units.</summary>
    public static async Task<int> OrdersAsync(string configPath, CancellationToken cancellationToken)
    {
        using var client = ControlEndpoints.CreateClient(DataDirectoryOf(configPath));
        return await CallAsync(() => client.GetAsync(new Uri("control/orders", UriKind.Relative), cancellationToken), "orders").ConfigureAwait(false);
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

    private static int ConfigError(OptionsValidationException ex)
    {
        foreach (var failure in ex.Failures)
        {
            Console.Error.WriteLine("config error: " + failure);
        }

        return 2;
    }
}
