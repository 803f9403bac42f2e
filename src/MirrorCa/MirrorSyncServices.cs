using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using OfflinePki.Hosting;
using OfflinePki.Hosting.Grpc;
using OfflinePki.Hosting.Sync;
using OfflinePki.Registry;
using OfflinePki.Sync;
using OfflinePki.Sync.Grpc;

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
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<MirrorCaOptions>>((kestrel, mirror) =>
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
                var serverCert = X509Certificate2.CreateFromPemFile(o.Sync.ServerCertificate, o.Sync.ServerKey);
                kestrel.Listen(sync!, l => l.UseGrpcMutualTls(serverCert));
            }
        });
        services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<MirrorCaOptions>>().Value;
            var root = X509CertificateLoader.LoadCertificateFromFile(o.RootCertificate);
            var sink = sp.GetRequiredService<IJournalSink>(); // opens (and creates) the registry file first
            var applierOptions = new SyncApplierOptions { Alerts = new MirrorAlertStore(o.RegistryPath), TimeProvider = sp.GetRequiredService<TimeProvider>() };
            return new SyncApplier(sink, root, applierOptions, sp.GetRequiredService<ILogger<SyncApplier>>());
        });
        services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<MirrorCaOptions>>().Value;
            var clientCa = X509CertificateLoader.LoadCertificateFromFile(o.Sync.ClientCaCertificate);
            var allowed = o.Factories.ToDictionary(f => f.SyncClientSubjectCn, f => f.FactoryId, StringComparer.Ordinal);
            return new CallerIdentityPolicy(JournalSyncEndpoints.ServiceName, clientCa, allowed, sp.GetRequiredService<TimeProvider>());
        });
        return services;
    }

    /// <summary>Maps the sync service when MirrorCa:Sync:Listen is set (only reachable with a client certificate over HTTP/2).</summary>
    public static WebApplication MapMirrorSync(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var o = app.Services.GetRequiredService<IOptions<MirrorCaOptions>>().Value;
        if (SyncEnabled(o))
        {
            app.MapJournalSync(app.Services.GetRequiredService<SyncApplier>(), app.Services.GetRequiredService<CallerIdentityPolicy>(),
                new GrpcServerOptions
                {
                    MaxReceiveMessageBytes = o.Sync.MaxMessageBytes,
                    TimeProvider = app.Services.GetRequiredService<TimeProvider>(),
                });
        }

        return app;
    }

    /// <summary>True when MirrorCa:Sync:Listen is configured.</summary>
    public static bool SyncEnabled(MirrorCaOptions options) => !string.IsNullOrWhiteSpace(options?.Sync.Listen);
}
