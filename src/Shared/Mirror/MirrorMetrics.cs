using System.Diagnostics.Metrics;

namespace OfflinePki.Telemetry;

/// <summary>The mirror's instruments on <see cref="ProductMeter"/>, recorded where the work is done.</summary>
public static class MirrorMetrics
{
    /// <summary><c>ocsp.requests</c>: OCSP requests by response status (RFC 6960 §4.2.1) and cache result (hit, miss, none).</summary>
    public static Counter<long> OcspRequests { get; } = ProductMeter.Meter.CreateCounter<long>("ocsp.requests", "{request}",
        "OCSP requests answered, by response status and cache result.");

    /// <summary><c>ocsp.duration</c>: seconds to answer one OCSP request (parse, look up, sign or cache).</summary>
    public static Histogram<double> OcspDuration { get; } = ProductMeter.Meter.CreateHistogram("ocsp.duration", "s",
        "OCSP answer latency in seconds, by response status and cache result.", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = ProductMeter.LatencyBuckets });

    /// <summary><c>sync.pushes</c>: journal pushes received from factories, by factory and outcome (accepted or the refusal kind: fork, tamper, ...).</summary>
    public static Counter<long> SyncPushes { get; } = ProductMeter.Meter.CreateCounter<long>("sync.pushes", "{push}",
        "Journal pushes received, by factory and outcome; any outcome other than accepted is a refused push.");
}
