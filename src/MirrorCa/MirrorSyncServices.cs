using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OfflinePki.Hosting;
using OfflinePki.Hosting.Sync;
using OfflinePki.Registry;
using OfflinePki.Sync;

namespace OfflinePki.MirrorCa;

/// <summary>
/// The mirror's listeners and the journal sync service: plain HTTP (MirrorCa:Http:Listen) for CRLs and OCSP, and
/// gRPC over HTTP/2 with mTLS (MirrorCa:Sync:Listen) for factories. Each factory's sync client certificate CN
/// (MirrorCa:Factories[i]:SyncClientSubjectCn) maps to the one factory whose journal it may push.
/// </summary>
public static class MirrorSyncServices
{
    /// <summary>Registers the Kestrel listeners, the <see cref="SyncApplier"/> and the caller policy.</summary>
    public static IServiceCollection AddMirrorListenersAndSync(this IServiceCollection services)
    {
        services.TryAddSingleton<OfflinePki.Keys.KeyHealthBoard>();
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<MirrorCaOptions>, OfflinePki.Keys.KeyHealthBoard>((kestrel, mirror, health) =>
        {
            var o = mirror.Value;
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = o.Http.MaxRequestBytes + 1;
            if (ListenAddress.TryParse(o.Http.Listen, Uri.UriSchemeHttp, out var http, out _))
            {
                kestrel.Listen(http!, l => l.Protocols = HttpProtocols.Http1);
            }

            if (SyncEnabled(o) && ListenAddress.TryParse(o.Sync.Listen, Uri.UriSchemeHttps, out var sync, out _))
            {
                var tls = Keys.TlsCertificateSource.Load($"{MirrorCaOptions.SectionName}:Sync:ServerKey", o.Sync.ServerCertificate, o.Sync.ServerKey);
                health.Track($"{MirrorCaOptions.SectionName}:Sync:ServerKey", tls, o.Sync.ServerKey);
                kestrel.Listen(sync!, l => l.UseGrpcMutualTls(tls));
            }
        });
        services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<MirrorCaOptions>>().Value;
            var root = X509CertificateLoader.LoadCertificateFromFile(o.RootCertificate);
            var sink = sp.GetRequiredService<IJournalSink>(); // opens (and creates) the registry file first
            var applierOptions = new SyncApplierOptions { Alerts = new MirrorAlertStore(o.RegistryPath), TimeProvider = sp.GetRequiredService<TimeProvider>() };
            return new SyncApplier(sink, root, applierOptions, sp.GetRequiredService<ILogger<SyncApplier>>())
            {
                ReceiptSigner = CreateReceiptSigner(o, sp.GetRequiredService<TimeProvider>(), sp.GetService<OfflinePki.Keys.KeyHealthBoard>()),
                Orders = sp.GetService<IOrderOutbox>(),
            };
        });
        services.AddSingleton(sp => CreateImporter(sp.GetRequiredService<IOptions<MirrorCaOptions>>().Value, sp.GetRequiredService<SyncApplier>(),
            sp.GetRequiredService<IJournalSink>(), sp.GetRequiredService<ILoggerFactory>()));
        services.AddHostedService<PendingBundleService>();
        services.AddJournalSyncService(
            sp =>
            {
                var o = sp.GetRequiredService<IOptions<MirrorCaOptions>>().Value;
                var clientCa = X509CertificateLoader.LoadCertificateFromFile(o.Sync.ClientCaCertificate);
                var allowed = o.Factories.ToDictionary(f => f.SyncClientSubjectCn, f => f.FactoryId, StringComparer.Ordinal);
                return new CallerIdentityPolicy(JournalSyncEndpoints.ServiceName, clientCa, allowed, sp.GetRequiredService<TimeProvider>());
            },
            (sync, sp) => sync.MaxReceiveMessageBytes = sp.GetRequiredService<IOptions<MirrorCaOptions>>().Value.Sync.MaxMessageBytes);
        return services;
    }

    /// <summary>Maps the sync service when MirrorCa:Sync:Listen is set (only reachable with a client certificate over HTTP/2).</summary>
    public static WebApplication MapMirrorSync(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var o = app.Services.GetRequiredService<IOptions<MirrorCaOptions>>().Value;
        if (SyncEnabled(o))
        {
            app.MapJournalSync();
        }

        return app;
    }

    /// <summary>
    /// The air-gap importer over <paramref name="registry"/>, with its own <see cref="SyncApplier"/> (same root, same receipt
    /// signer as the network path); pending bundles live in MirrorCa:DataDirectory/pending-bundles.
    /// </summary>
    public static BundleImporter CreateImporter(MirrorCaOptions options, OfflinePki.Registry.IJournalSink registry, TimeProvider time, ILoggerFactory? loggers)
    {
        ArgumentNullException.ThrowIfNull(options);
        var root = X509CertificateLoader.LoadCertificateFromFile(options.RootCertificate);
        var applier = new SyncApplier(registry, root, new SyncApplierOptions { Alerts = new MirrorAlertStore(options.RegistryPath), TimeProvider = time }, loggers?.CreateLogger<SyncApplier>()) { ReceiptSigner = CreateReceiptSigner(options, time) };
        return CreateImporter(options, applier, registry, loggers);
    }

    /// <summary>The importer over an existing applier (the daemon's).</summary>
    public static BundleImporter CreateImporter(MirrorCaOptions options, SyncApplier applier, OfflinePki.Registry.IJournalSink registry, ILoggerFactory? loggers)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new BundleImporter(applier, registry, PendingDirectory(options), options.Factories.Select(f => f.FactoryId).ToHashSet(StringComparer.Ordinal),
            loggers?.CreateLogger<BundleImporter>());
    }

    /// <summary>MirrorCa:DataDirectory/pending-bundles: bundles held until their missing range arrives.</summary>
    public static string PendingDirectory(MirrorCaOptions options) => Path.Combine(options?.DataDirectory ?? string.Empty, "pending-bundles");

    /// <summary>The receipt signer from MirrorCa:ReceiptSigner, or null when it is not configured.</summary>
    /// <exception cref="ArgumentException">The certificate lacks the mirror-receipt EKU or does not match the key.</exception>
    public static MirrorReceiptSigner? CreateReceiptSigner(MirrorCaOptions options, TimeProvider time, OfflinePki.Keys.KeyHealthBoard? health = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var r = options.ReceiptSigner;
        if (string.IsNullOrWhiteSpace(r.Certificate))
        {
            return null;
        }

        var cert = X509CertificateLoader.LoadCertificateFromFile(r.Certificate);
        OfflinePki.Keys.ISigningKey key;
        if (r.Key.IsPkcs11)
        {
            // In the mirror token like the other mirror keys; fails closed (sync answers UNAVAILABLE) while the token is away.
            key = OfflinePki.Keys.SigningKeyLoader.Load($"{MirrorCaOptions.SectionName}:ReceiptSigner:Key", r.Key, cert, time);
            health?.Track($"{MirrorCaOptions.SectionName}:ReceiptSigner:Key", key, r.Key);
        }
        else
        {
            string? passphrase = r.Key.PassphraseEnvironmentVariable is { Length: > 0 } v ? System.Environment.GetEnvironmentVariable(v) : null;
            key = OfflinePki.Keys.SoftwareKeyLoader.Load(r.Key.File, passphrase);
        }

        return new MirrorReceiptSigner(cert, key, time);
    }

    /// <summary>True when MirrorCa:Sync:Listen is configured.</summary>
    public static bool SyncEnabled(MirrorCaOptions options) => !string.IsNullOrWhiteSpace(options?.Sync.Listen);
}

/// <summary>Every 5 s, applies held air-gap bundles whose missing range has arrived (by network sync or import).</summary>
public sealed class PendingBundleService(BundleImporter importer, IOptions<MirrorCaOptions> options, TimeProvider time, ILogger<PendingBundleService> logger) : BackgroundService
{
    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(5), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                if (!Directory.Exists(MirrorSyncServices.PendingDirectory(options.Value)))
                {
                    continue;
                }

                try
                {
                    await importer.ApplyPendingAsync(null, stoppingToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is IOException or ExportBundleException or Microsoft.Data.Sqlite.SqliteException)
                {
                    logger.LogWarning("pending bundles: {Reason}", ex.Message);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
