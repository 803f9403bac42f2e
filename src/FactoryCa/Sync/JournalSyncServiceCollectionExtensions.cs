using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OfflinePki.Journal;
using OfflinePki.Keys;
using OfflinePki.Sync;

namespace OfflinePki.Hosting.Sync;

/// <summary>DI wiring of the factory-side sync (the host's Program.cs calls <see cref="AddJournalSyncClient"/>).</summary>
public static class JournalSyncServiceCollectionExtensions
{
    /// <summary>
    /// Binds <see cref="SyncOptions"/> from <paramref name="section"/> (validated on start with
    /// <see cref="SyncOptionsValidator"/>), and registers the mTLS gRPC channel to the mirror (<see cref="JournalSyncChannel"/>), the
    /// <see cref="JournalSyncClient"/>, and the <see cref="JournalSyncWorker"/> as a hosted service (also resolvable
    /// to call <see cref="JournalSyncWorker.RequestSync"/>). Requires <see cref="IJournalReader"/> and
    /// <see cref="IJournalAppender"/> to be registered, and <see cref="TimeProvider"/> (System when absent). When a
    /// <see cref="MirrorReceiptBook"/> is registered, mirror receipts are verified and stored.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="section">The "Sync" configuration section.</param>
    /// <returns><paramref name="services"/>.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static IServiceCollection AddJournalSyncClient(this IServiceCollection services, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(section);
        services.AddOptions<SyncOptions>().Bind(section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<SyncOptions>, SyncOptionsValidator>();
        services.AddSingleton<JournalSyncClient>(sp =>
        {
            var o = sp.GetRequiredService<IOptions<SyncOptions>>().Value;
            var time = sp.GetService<TimeProvider>() ?? TimeProvider.System;
            var clientTls = TlsCertificateSource.Load(string.IsNullOrWhiteSpace(o.ClientKeyPath) ? "Sync:ClientKey" : "Sync:ClientKeyPath",
                o.ClientCertificatePath, o.EffectiveClientKey, time);
            sp.GetService<KeyHealthBoard>()?.Track(string.IsNullOrWhiteSpace(o.ClientKeyPath) ? "Sync:ClientKey" : "Sync:ClientKeyPath", clientTls, o.EffectiveClientKey);
            var anchor = X509CertificateLoader.LoadCertificateFromFile(o.ServerTrustAnchorPath);
            var handler = JournalSyncChannel.CreateTlsHandler(new Uri(o.MirrorUrl), clientTls.Current, anchor, time);
            if (clientTls.IsPkcs11)
            {
                // Per connection, so the key is probed and reopened after a failure (docs/hsm.md); no TLS resumption, so no
                // cached SSL_CTX keeps the engine key of before an outage.
                handler.SslOptions.LocalCertificateSelectionCallback = (_, _, _, _, _) => clientTls.Current;
                handler.SslOptions.AllowTlsResume = false;
            }

            var channel = JournalSyncChannel.Create(new Uri(o.MirrorUrl), handler);
            return new JournalSyncClient(channel, sp.GetRequiredService<IJournalReader>(), sp.GetRequiredService<IJournalAppender>(), o, time,
                sp.GetRequiredService<ILogger<JournalSyncClient>>())
            {
                Receipts = sp.GetService<MirrorReceiptBook>(),
                Orders = sp.GetService<OfflinePki.Orders.IOrderInbox>(),
            };
        });
        services.AddSingleton(sp => new JournalSyncWorker(sp.GetRequiredService<JournalSyncClient>(), sp.GetRequiredService<IOptions<SyncOptions>>(),
            sp.GetService<TimeProvider>() ?? TimeProvider.System, sp.GetRequiredService<ILogger<JournalSyncWorker>>()));
        services.AddHostedService(sp => sp.GetRequiredService<JournalSyncWorker>());
        return services;
    }
}
