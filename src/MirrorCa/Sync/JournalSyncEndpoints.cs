using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using OfflinePki.Sync;

namespace OfflinePki.Hosting.Sync;

/// <summary>Registers and maps the mirror's offlinepki.sync.v1.JournalSync service and the standard health service.</summary>
public static class JournalSyncEndpoints
{
    /// <summary>The gRPC service name.</summary>
    public const string ServiceName = JournalSyncService.ServiceName;

    /// <summary>
    /// Registers grpc-dotnet, the <see cref="JournalSyncService"/> with its interceptors (<see cref="SyncErrorInterceptor"/>
    /// first, then <see cref="CallerAuthorizationInterceptor"/> with the policy from <paramref name="callers"/>: client CN →
    /// factory id), and the standard health service (<c>grpc.health.v1.Health</c>; "" and "offlinepki.sync.v1.JournalSync"
    /// report SERVING while every registered health check is healthy). Requires a <see cref="SyncApplier"/> in the container.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="callers">Builds the policy of allowed sync clients (once, from the root provider).</param>
    /// <param name="configure">Adjusts the limits; defaults when null (4 MiB messages, 10 min per call).</param>
    /// <returns><paramref name="services"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> or <paramref name="callers"/> is null.</exception>
    public static IServiceCollection AddJournalSyncService(this IServiceCollection services, Func<IServiceProvider, CallerIdentityPolicy> callers,
        Action<JournalSyncServiceOptions, IServiceProvider>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(callers);
        var options = services.AddOptions<JournalSyncServiceOptions>();
        if (configure is not null)
        {
            options.Configure<IServiceProvider>(configure);
        }

        services.AddGrpc(o => o.EnableDetailedErrors = false);
        services.AddOptions<GrpcServiceOptions<JournalSyncService>>().Configure<IOptions<JournalSyncServiceOptions>, IServiceProvider>((grpc, sync, sp) =>
        {
            grpc.MaxReceiveMessageSize = sync.Value.MaxReceiveMessageBytes;
            grpc.Interceptors.Add<SyncErrorInterceptor>();
            grpc.Interceptors.Add<CallerAuthorizationInterceptor>(callers(sp));
        });
        services.AddGrpcHealthChecks(o =>
        {
            // SERVING only while the daemon is ready (checks tagged "ready": keys, registry, CRL), run at each call.
            o.UseHealthChecksCache = false;
            o.Services.Map(string.Empty, static r => r.Name == "journal-sync" || r.Tags.Contains(Telemetry.HealthEndpoints.ReadyTag));
            o.Services.Map(ServiceName, static r => r.Name == "journal-sync" || r.Tags.Contains(Telemetry.HealthEndpoints.ReadyTag));
        }).AddCheck("journal-sync", static () => HealthCheckResult.Healthy());
        return services;
    }

    /// <summary>
    /// Maps <c>/offlinepki.sync.v1.JournalSync/GetHead</c>, <c>/offlinepki.sync.v1.JournalSync/PushEntries</c> and the health
    /// service. Only the sync methods require a client certificate; the health service answers any TLS client.
    /// </summary>
    /// <param name="endpoints">The route builder (the mirror's mTLS listener).</param>
    /// <returns><paramref name="endpoints"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="endpoints"/> is null.</exception>
    public static IEndpointRouteBuilder MapJournalSync(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        endpoints.MapGrpcService<JournalSyncService>();
        endpoints.MapGrpcHealthChecksService();
        return endpoints;
    }
}
