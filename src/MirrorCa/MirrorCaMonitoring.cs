using System.Diagnostics.Metrics;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using OfflinePki.Hosting.Telemetry;
using OfflinePki.Registry;
using Microsoft.Extensions.Hosting;

namespace OfflinePki.MirrorCa;

/// <summary>The mirror's metrics (admin listener, role Auditor) and health endpoints.</summary>
public static class MirrorCaMonitoring
{
    /// <summary>Registers the export, the CRL gauges and the health checks (keys, registry, CRL freshness).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> is null.</exception>
    public static IServiceCollection AddMirrorMonitoring(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOfflinePkiMetrics();
        services.AddSingleton<IGaugeSource, MirrorGauges>();
        services.AddOfflinePkiHealth()
            .AddCheck<RegistryReachableCheck>("registry", tags: [HealthEndpoints.ReadyTag])
            .AddCheck<CrlFreshCheck>("crl", tags: [HealthEndpoints.ReadyTag]);
        return services;
    }

    /// <summary>
    /// Maps GET /metrics on the admin listener only (mTLS, role Auditor or above; elsewhere 404) and GET /health/live,
    /// /health/ready on every listener; tracks the certificates the mirror depends on.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="app"/> is null.</exception>
    public static IEndpointRouteBuilder MapMirrorMonitoring(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        // The export and the tracked certificates need the registry (through the factories' OCSP state), so they are
        // resolved once the host has started: mapping the endpoints must not open the registry, whose schema check
        // belongs to start-up (a newer registry stops StartAsync with its one-line error).
        var sp = app.ServiceProvider;
        sp.GetRequiredService<IHostApplicationLifetime>().ApplicationStarted.Register(() =>
        {
            _ = sp.GetRequiredService<MetricsExport>(); // listening from now, not from the first scrape
            var o = sp.GetRequiredService<IOptions<MirrorCaOptions>>().Value;
            var board = sp.GetRequiredService<CertificateExpiryBoard>();
            foreach (var f in sp.GetRequiredService<MirrorFactories>().All)
            {
                board.Track("issuing_ca", f.IssuingCa);
                board.Track("ocsp_responder", System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(f.Ocsp.ResponderCertificate));
            }

            board.TrackFile("receipt", o.ReceiptSigner.Certificate);
            board.TrackFile("tls_server", o.Sync.ServerCertificate);
            board.TrackFile("tls_server", o.Admin.ServerCertificate);
        });
        app.MapGet("/metrics", (HttpContext http) => http.RequestServices.GetRequiredService<MetricsExport>().WriteAsync(http))
            .AddEndpointFilter(MirrorAdminApi.Require(AdminRole.Auditor));
        app.MapOfflinePkiHealth();
        return app;
    }
}

/// <summary>Ready only while the registry answers a summary query.</summary>
/// <param name="registry">The registry.</param>
public sealed class RegistryReachableCheck(MirrorRegistry registry) : IHealthCheck
{
    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            _ = registry.GetSummary();
            return Task.FromResult(HealthCheckResult.Healthy());
        }
        catch (Exception ex) when (ex is Microsoft.Data.Sqlite.SqliteException or InvalidOperationException or ObjectDisposedException)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("registry unreachable: " + ex.Message));
        }
    }
}

/// <summary>Ready only while every factory's full CRL can be served and its nextUpdate is in the future.</summary>
/// <param name="factories">The configured factories.</param>
/// <param name="time">The clock.</param>
public sealed class CrlFreshCheck(MirrorFactories factories, TimeProvider time) : IHealthCheck
{
    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        foreach (var f in factories.All)
        {
            try
            {
                if (f.Crl.GetCurrent().NextUpdate <= now)
                {
                    return Task.FromResult(HealthCheckResult.Unhealthy($"the CRL of {f.FactoryId} is past its nextUpdate"));
                }
            }
            catch (Exception ex) when (ex is Crl.CrlLintException or Keys.SigningKeyUnavailableException or Microsoft.Data.Sqlite.SqliteException)
            {
                return Task.FromResult(HealthCheckResult.Unhealthy($"the CRL of {f.FactoryId} cannot be built: {ex.Message}"));
            }
        }

        return Task.FromResult(HealthCheckResult.Healthy());
    }
}

/// <summary>CRL number, age and seconds to nextUpdate per factory.</summary>
internal sealed class MirrorGauges(MirrorFactories factories, TimeProvider time) : IGaugeSource
{
    public void Register(Meter meter)
    {
        meter.CreateObservableGauge("crl.number", () => Crls((f, c) => (double)c.CrlNumber), "{crl}", "CRLNumber (RFC 5280 §5.2.3) of the current full CRL, per factory.");
        meter.CreateObservableGauge("crl.age", () => Crls((f, c) => (time.GetUtcNow() - c.ThisUpdate).TotalSeconds), "s", "Seconds since thisUpdate of the current full CRL.");
        meter.CreateObservableGauge("crl.next_update.remaining", () => Crls((f, c) => (c.NextUpdate - time.GetUtcNow()).TotalSeconds), "s",
            "Seconds from now to nextUpdate of the current full CRL (negative once stale).");
    }

    private IEnumerable<Measurement<double>> Crls(Func<LoadedFactory, Crl.SignedCrl, double> value)
    {
        var list = new List<Measurement<double>>();
        foreach (var f in factories.All)
        {
            try
            {
                list.Add(new Measurement<double>(value(f, f.Crl.GetCurrent()), new KeyValuePair<string, object?>("factory", f.FactoryId)));
            }
            catch (Exception ex) when (ex is Crl.CrlLintException or Keys.SigningKeyUnavailableException or Microsoft.Data.Sqlite.SqliteException)
            {
                // No current CRL: the series is absent (alert on absent()); the health check says why.
            }
        }

        return list;
    }
}
