using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using System.Diagnostics.Metrics;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection.Extensions;
using OfflinePki.Keys;
using OfflinePki.Telemetry;
using Prometheus;

namespace OfflinePki.Hosting.Telemetry;

/// <summary>A daemon's observable gauges: registered on the daemon's own meter when <see cref="MetricsExport"/> starts.</summary>
public interface IGaugeSource
{
    /// <summary>Creates observable instruments on <paramref name="meter"/> (named "OfflinePki", scoped to this daemon).</summary>
    void Register(Meter meter);
}

/// <summary>
/// Publishes the "OfflinePki" meter in the Prometheus text format through prometheus-net's meter adapter
/// (docs/decisions/0011-metrics-exporter.md). One registry per daemon: it sees the process-wide core instruments
/// (<see cref="ProductMeter"/>) and the gauges of this daemon's <see cref="IMeterFactory"/> only, so two daemons in one
/// process (tests) do not export each other's gauges. Where it is reachable is the host's decision.
/// </summary>
public sealed class MetricsExport : IDisposable
{
    private readonly IDisposable _adapter;
    private readonly Meter _meter;

    /// <summary>Starts listening to the instruments and registers every <see cref="IGaugeSource"/>.</summary>
    /// <param name="meterFactory">This daemon's meter factory (its meters carry it as their scope).</param>
    /// <param name="gauges">The daemon's gauge sources.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public MetricsExport(IMeterFactory meterFactory, IEnumerable<IGaugeSource> gauges)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        ArgumentNullException.ThrowIfNull(gauges);
        Registry = Metrics.NewCustomRegistry();
        _adapter = MeterAdapter.StartListening(new MeterAdapterOptions
        {
            Registry = Registry,
            MetricFactory = Metrics.WithCustomRegistry(Registry),
            InstrumentFilterPredicate = i => i.Meter.Name == ProductMeter.Name && (i.Meter.Scope is null || ReferenceEquals(i.Meter.Scope, meterFactory)),
            ResolveHistogramBuckets = i => i.Unit == "s" ? [.. ProductMeter.LatencyBuckets] : [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
        });
        _meter = meterFactory.Create(ProductMeter.Name);
        foreach (var source in gauges)
        {
            source.Register(_meter);
        }
    }

    /// <summary>The prometheus-net registry holding this daemon's series.</summary>
    public CollectorRegistry Registry { get; }

    /// <summary>Writes every series in the Prometheus text exposition format 0.0.4.</summary>
    /// <param name="http">The request (GET /metrics).</param>
    /// <exception cref="ArgumentNullException"><paramref name="http"/> is null.</exception>
    public async Task WriteAsync(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        http.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        await Registry.CollectAndExportAsTextAsync(http.Response.Body, http.RequestAborted).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _adapter.Dispose();
        _meter.Dispose();
    }
}

/// <summary>The certificates a daemon depends on, by role, for the seconds-to-notAfter gauge.</summary>
public sealed class CertificateExpiryBoard : IGaugeSource
{
    private readonly Lock _gate = new();
    private readonly List<(string Role, X509Certificate2 Certificate)> _certificates = [];
    private readonly TimeProvider _time;

    /// <summary>Creates an empty board reading the time from <paramref name="time"/>.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="time"/> is null.</exception>
    public CertificateExpiryBoard(TimeProvider time) => _time = time ?? throw new ArgumentNullException(nameof(time));

    /// <summary>Tracks <paramref name="certificate"/> under <paramref name="role"/> (issuing_ca, ocsp_responder, tls_server, tls_client, journal_signer, receipt, station).</summary>
    /// <exception cref="ArgumentException"><paramref name="role"/> is null or empty.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="certificate"/> is null.</exception>
    public void Track(string role, X509Certificate2 certificate)
    {
        ArgumentException.ThrowIfNullOrEmpty(role);
        ArgumentNullException.ThrowIfNull(certificate);
        lock (_gate)
        {
            _certificates.Add((role, certificate));
        }
    }

    /// <summary>Tracks the first certificate of a PEM or DER file; a missing or unreadable file is skipped (the daemon's own loading reports it).</summary>
    /// <param name="role">The role label.</param>
    /// <param name="path">The file, or null/empty to skip.</param>
    public void TrackFile(string role, string? path)
    {
        if (string.IsNullOrEmpty(path) || !File.Exists(path))
        {
            return;
        }

        try
        {
            Track(role, X509CertificateLoader.LoadCertificateFromFile(path));
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            // Not a certificate file: nothing to watch; startup validation names the key.
        }
    }

    /// <inheritdoc />
    public void Register(Meter meter)
    {
        ArgumentNullException.ThrowIfNull(meter);
        meter.CreateObservableGauge("certificate.expiry", Observe, "s",
            "Seconds from now to the notAfter of each certificate the daemon depends on, by role and subject (negative once expired).");
    }

    private IEnumerable<Measurement<double>> Observe()
    {
        List<(string Role, X509Certificate2 Certificate)> all;
        lock (_gate)
        {
            all = [.. _certificates];
        }

        var now = _time.GetUtcNow();
        return all.Select(c => new Measurement<double>((new DateTimeOffset(c.Certificate.NotAfter.ToUniversalTime()) - now).TotalSeconds,
            new KeyValuePair<string, object?>("role", c.Role), new KeyValuePair<string, object?>("subject", c.Certificate.Subject),
            new KeyValuePair<string, object?>("serial", c.Certificate.SerialNumber)));
    }
}

/// <summary><c>offlinepki.key.available</c>: 1 when a key signs its probe now, else 0, per configuration key (from <see cref="KeyHealthBoard"/>).</summary>
/// <param name="board">The daemon's key board.</param>
public sealed class KeyAvailabilityGauge(KeyHealthBoard board) : IGaugeSource
{
    /// <inheritdoc />
    public void Register(Meter meter)
    {
        ArgumentNullException.ThrowIfNull(meter);
        meter.CreateObservableGauge("key.available",
            () => board.Check().Select(k => new Measurement<int>(k.Available ? 1 : 0, new KeyValuePair<string, object?>("key", k.ConfigKey),
                new KeyValuePair<string, object?>("backend", k.Backend))),
            "1", "1 when the signing or TLS key signs its probe now, else 0.");
    }
}

/// <summary>Registers the metrics export, the certificate board and the key gauge.</summary>
public static class MetricsServiceCollectionExtensions
{
    /// <summary>Adds <see cref="MetricsExport"/>, <see cref="CertificateExpiryBoard"/> and <see cref="KeyAvailabilityGauge"/>.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> is null.</exception>
    public static IServiceCollection AddOfflinePkiMetrics(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddMetrics();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<KeyHealthBoard>();
        services.TryAddSingleton<MetricsExport>();
        services.TryAddSingleton<CertificateExpiryBoard>();
        services.AddSingleton<IGaugeSource>(sp => sp.GetRequiredService<CertificateExpiryBoard>());
        services.AddSingleton<IGaugeSource, KeyAvailabilityGauge>();
        return services;
    }
}
