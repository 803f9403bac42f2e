using System.Diagnostics.Metrics;

namespace OfflinePki.Telemetry;

/// <summary>The factory's instruments on <see cref="ProductMeter"/>, recorded where the work is done.</summary>
public static class FactoryMetrics
{
    /// <summary><c>issuance.requests</c>: enrollment requests by profile, station and outcome (issued, rejected, lint_failed, unavailable, error).</summary>
    public static Counter<long> IssuanceRequests { get; } = ProductMeter.Meter.CreateCounter<long>("issuance.requests", "{request}",
        "Enrollment requests handled, by profile, station and outcome.");

    /// <summary><c>issuance.duration</c>: seconds from request to answer (CSR checks, signature, journal fsync), by profile, station and outcome.</summary>
    public static Histogram<double> IssuanceDuration { get; } = ProductMeter.Meter.CreateHistogram("issuance.duration", "s",
        "Enrollment latency in seconds, by profile, station and outcome.", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = ProductMeter.LatencyBuckets });

    /// <summary><c>journal.fsync.duration</c>: seconds per journal fsync/fdatasync.</summary>
    public static Histogram<double> JournalFsyncDuration { get; } = ProductMeter.Meter.CreateHistogram("journal.fsync.duration", "s",
        "Journal fsync latency in seconds.", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = ProductMeter.LatencyBuckets });

    /// <summary><c>journal.fsync.entries</c>: journal entries made durable by one fsync (group commit size).</summary>
    public static Histogram<long> JournalFsyncEntries { get; } = ProductMeter.Meter.CreateHistogram("journal.fsync.entries", "{entry}",
        "Journal entries appended per fsync.", advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] });

    /// <summary><c>sync.runs</c>: journal sync runs to the mirror by outcome (success, fork, error).</summary>
    public static Counter<long> SyncRuns { get; } = ProductMeter.Meter.CreateCounter<long>("sync.runs", "{run}",
        "Journal sync runs to the mirror, by outcome.");
}
