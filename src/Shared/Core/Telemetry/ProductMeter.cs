using System.Diagnostics.Metrics;

namespace OfflinePki.Telemetry;

/// <summary>
/// The product's one <see cref="Meter"/> ("OfflinePki"). Each part declares its instruments on it next to the code that
/// counts (FactoryMetrics, MirrorMetrics); the hosts choose the exporter (docs/decisions/0011-metrics-exporter.md).
/// Instrument names are dotted lower case without a product prefix (the meter supplies it), durations in seconds
/// (unit "s"); Prometheus sees "offlinepki_" + the name with "_" for "." (docs/operations/monitoring.md).
/// </summary>
public static class ProductMeter
{
    /// <summary>The meter name every OfflinePki instrument is created under.</summary>
    public const string Name = "OfflinePki";

    /// <summary>The process-wide meter for counters and histograms recorded by the core libraries.</summary>
    public static Meter Meter { get; } = new(Name, typeof(ProductMeter).Assembly.GetName().Version?.ToString());

    /// <summary>Histogram bucket boundaries in seconds for latencies from 50 µs to 10 s.</summary>
    public static IReadOnlyList<double> LatencyBuckets { get; } =
        [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
}
