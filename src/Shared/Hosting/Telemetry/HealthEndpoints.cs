using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using OfflinePki.Keys;

namespace OfflinePki.Hosting.Telemetry;

/// <summary>
/// Liveness and readiness (ASP.NET Core health checks). <c>/health/live</c> runs no check: the process answers.
/// <c>/health/ready</c> runs the checks tagged <see cref="ReadyTag"/>: every key usable, plus each daemon's own (journal
/// writable; registry reachable and CRL fresh). The answer is only "Healthy" or "Unhealthy" (200 or 503): the reasons,
/// which name key locations, stay in the logs and the daemon's status output.
/// </summary>
public static class HealthEndpoints
{
    /// <summary>The tag of the checks that make up readiness (also the gRPC health status on the mirror's sync port).</summary>
    public const string ReadyTag = "ready";

    /// <summary>Adds the health-check service with the key check; returns the builder for the daemon's own checks.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> is null.</exception>
    public static IHealthChecksBuilder AddOfflinePkiHealth(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        return services.AddHealthChecks().AddCheck<KeyHealthCheck>("keys", tags: [ReadyTag]);
    }

    /// <summary>Maps GET /health/live and GET /health/ready.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="endpoints"/> is null.</exception>
    public static IEndpointRouteBuilder MapOfflinePkiHealth(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        endpoints.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = static _ => false });
        endpoints.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = static r => r.Tags.Contains(ReadyTag) });
        return endpoints;
    }
}

/// <summary>Unhealthy when any tracked key does not sign its probe now (<see cref="KeyHealthBoard"/>).</summary>
/// <param name="board">The daemon's key board.</param>
public sealed class KeyHealthCheck(KeyHealthBoard board) : IHealthCheck
{
    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(board.IsReady(out var reason) ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy(reason));
}
