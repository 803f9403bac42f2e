using System.Diagnostics.Metrics;
using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using OfflinePki.Hosting;
using OfflinePki.Hosting.Telemetry;
using OfflinePki.Journal;
using OfflinePki.Orders;
using OfflinePki.Sync;

namespace OfflinePki.FactoryCa;

/// <summary>"FactoryCa:Metrics": where the Prometheus endpoint listens besides the control socket.</summary>
public sealed class FactoryMetricsOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "FactoryCa:Metrics";

    /// <summary>
    /// Plain-HTTP loopback address for GET /metrics, e.g. "http://127.0.0.1:9464"; empty (default) serves the metrics on
    /// the control socket only. A non-loopback address is refused at startup: the metrics never reach the station LAN.
    /// </summary>
    public string Listen { get; set; } = string.Empty;
}

/// <summary>The factory's metrics (loopback listener and control socket only) and health endpoints.</summary>
public static class FactoryCaMonitoring
{
    /// <summary>Registers the export, the factory's gauges, the health checks and the optional loopback metrics listener.</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static IServiceCollection AddFactoryMonitoring(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<FactoryMetricsOptions>().Bind(configuration.GetSection(FactoryMetricsOptions.SectionName))
            .Validate(o => string.IsNullOrEmpty(o.Listen) || IsLoopback(o.Listen),
                $"{FactoryMetricsOptions.SectionName}:Listen must be an http:// address on loopback (127.0.0.1, [::1] or localhost); the metrics are never served on the station LAN")
            .ValidateOnStart();
        services.AddOfflinePkiMetrics();
        services.AddSingleton<IGaugeSource, FactoryGauges>();
        services.AddOfflinePkiHealth().AddCheck<JournalWritableCheck>("journal", tags: [HealthEndpoints.ReadyTag]);
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<FactoryMetricsOptions>>((kestrel, metrics) =>
        {
            if (!string.IsNullOrEmpty(metrics.Value.Listen) && IsLoopback(metrics.Value.Listen)
                && ListenAddress.TryParse(metrics.Value.Listen, Uri.UriSchemeHttp, out var endpoint, out _))
            {
                kestrel.Listen(endpoint!, l => l.Protocols = HttpProtocols.Http1);
            }
        });
        return services;
    }

    /// <summary>
    /// Maps GET /metrics (control socket or the plain-HTTP loopback listener only; the EST listener, always HTTPS, gets
    /// 404) and GET /health/live, /health/ready; tracks the certificates the factory depends on.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="app"/> is null.</exception>
    public static WebApplication MapFactoryMonitoring(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var export = app.Services.GetRequiredService<MetricsExport>(); // listening from now, not from the first scrape
        var options = app.Services.GetRequiredService<IOptions<FactoryCaOptions>>().Value;
        var board = app.Services.GetRequiredService<CertificateExpiryBoard>();
        board.TrackFile("issuing_ca", options.IssuingCa.Certificate);
        board.TrackFile("journal_signer", options.JournalSigner.Certificate);
        board.TrackFile("tls_server", options.Est.ServerCertificate);
        board.TrackFile("tls_client", app.Services.GetService<IOptions<SyncOptions>>()?.Value.ClientCertificatePath);
        app.MapGet("/metrics", (HttpContext http) => http.Connection.RemoteIpAddress is null
                || (!http.Request.IsHttps && http.Connection.LocalIpAddress is { } local && IPAddress.IsLoopback(local))
                ? export.WriteAsync(http)
                : Results.NotFound().ExecuteAsync(http));
        app.MapOfflinePkiHealth();
        return app;
    }

    private static bool IsLoopback(string listen) =>
        Uri.TryCreate(listen, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttp
        && (uri.IsLoopback || (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip)));
}

/// <summary>Ready only while the journal writer has not failed closed.</summary>
/// <param name="journal">The journal writer.</param>
public sealed class JournalWritableCheck(JournalWriter journal) : IHealthCheck
{
    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(journal.Health.IsHealthy ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy(journal.Health.Failure));
}

/// <summary>The factory's observable gauges: journal head and unconfirmed entries, sync lag, divergence budget, order units.</summary>
internal sealed class FactoryGauges(IServiceProvider services, IOptions<FactoryCaOptions> options) : IGaugeSource
{
    public void Register(Meter meter)
    {
        var factory = new KeyValuePair<string, object?>("factory", options.Value.FactoryId);
        meter.CreateObservableGauge("journal.head.seq", () => new Measurement<long>((long)Divergence().HeadSeq, factory),
            "{entry}", "Seq of the journal head.");
        meter.CreateObservableGauge("journal.unconfirmed.entries", () => new Measurement<long>((long)Divergence().UnconfirmedEntries, factory),
            "{entry}", "Journal entries not yet confirmed by a mirror receipt.");
        meter.CreateObservableGauge("journal.unconfirmed.age", () => new Measurement<double>(Divergence().UnconfirmedAge.TotalSeconds, factory),
            "s", "Age in seconds of the oldest journal entry not yet confirmed by a mirror receipt (0 when all are).");
        meter.CreateObservableGauge("sync.divergence.budget.used", () => new Measurement<double>(BudgetUsed(), factory),
            "1", "Share of the divergence bound used (the larger of unconfirmed entries and age over their maxima); 1 stops or warns.");
        meter.CreateObservableGauge("sync.last_success", LastSuccess,
            "s", "Unix time in seconds of the last successful journal sync to the mirror (absent before the first).");
        meter.CreateObservableGauge("sync.entries.behind", Behind,
            "{entry}", "Journal entries past the seq the mirror applied at the last successful sync (absent before the first).");
        meter.CreateObservableGauge("orders.units.issued", () => Orders(s => s.Issued), "{unit}", "Units issued against each production order.");
        meter.CreateObservableGauge("orders.units.authorized", () => Orders(s => s.Order.Quantity), "{unit}", "Units each production order authorizes.");

        IEnumerable<Measurement<double>> LastSuccess() => services.GetService<JournalSyncClient>()?.LastSuccess is { } last
            ? [new Measurement<double>(last.At.ToUnixTimeMilliseconds() / 1000.0, factory)] : [];

        IEnumerable<Measurement<long>> Behind() => services.GetService<JournalSyncClient>()?.LastSuccess is { } last
            ? [new Measurement<long>((long)(Divergence().HeadSeq - Math.Min(Divergence().HeadSeq, last.AppliedSeq)), factory)] : [];
    }

    private DivergenceStatus Divergence() => services.GetRequiredService<DivergenceGate>().Status();

    private double BudgetUsed()
    {
        var gate = services.GetRequiredService<DivergenceGate>();
        var status = gate.Status();
        double entries = gate.Options.MaxUnconfirmedEntries > 0 ? (double)status.UnconfirmedEntries / gate.Options.MaxUnconfirmedEntries : 0;
        double age = gate.Options.MaxUnconfirmedAge > TimeSpan.Zero ? status.UnconfirmedAge / gate.Options.MaxUnconfirmedAge : 0;
        return Math.Max(entries, age);
    }

    private IEnumerable<Measurement<long>> Orders(Func<OrderStatus, long> value) =>
        services.GetService<OrderBook>()?.Snapshot().Select(s => new Measurement<long>(value(s), new KeyValuePair<string, object?>("order", s.Order.OrderId)))
        ?? [];
}
