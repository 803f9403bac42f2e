using System.Collections.Concurrent;
using System.Threading.RateLimiting;
using OfflinePki.Enrollment;
using OfflinePki.Factory;

namespace OfflinePki.Policy;

/// <summary>
/// The station limits of the registration authority, as one <see cref="IEnrollmentPolicy"/>: a locally revoked
/// station certificate (<see cref="EnrollmentError.StationCertificateRevoked"/>, 403), a suspended station
/// (<see cref="EnrollmentError.StationSuspended"/>, 403), and the per-station rate limit
/// (<see cref="EnrollmentError.StationRateLimited"/>, 429 with Retry-After). The rate limit is a token bucket per
/// station (<see cref="ClockedTokenBucketRateLimiter"/>: one minute's worth of tokens, one more every
/// 60 s / RateLimitPerMinute) refilled from the injected <see cref="TimeProvider"/>, not a timer, so that tests move
/// time instead of sleeping. Reserves nothing; a spent token is not given back when a later rule refuses.
/// </summary>
public sealed class StationLimitsPolicy : IEnrollmentPolicy, IDisposable
{
    private readonly IRevokedStations _revoked;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<(string Station, int PerMinute), Bucket> _buckets = new();

    /// <summary>Creates the policy.</summary>
    /// <param name="revoked">The locally revoked station certificates.</param>
    /// <param name="time">Clock for token replenishment.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public StationLimitsPolicy(IRevokedStations revoked, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(revoked);
        ArgumentNullException.ThrowIfNull(time);
        _revoked = revoked;
        _time = time;
    }

    /// <inheritdoc />
    /// <exception cref="EnrollmentRejectedException">The station certificate is revoked, the station is suspended, or it is over its rate.</exception>
    /// <exception cref="EnrollmentUnavailableException">The revocation list cannot be read (fail closed, HTTP 503).</exception>
    public IEnrollmentAdmission Admit(EnrollmentContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var station = context.Station;
        bool revoked;
        try
        {
            revoked = _revoked.IsRevoked(station.CertificateSha256);
        }
        catch (Exception ex) when (ex is FormatException or IOException or UnauthorizedAccessException)
        {
            // Fail closed: without a readable revocation list no station is trusted.
            throw new EnrollmentUnavailableException("the station revocation list cannot be read: " + ex.Message, ex);
        }

        if (revoked)
        {
            throw new EnrollmentRejectedException(EnrollmentError.StationCertificateRevoked,
                $"station CN={station.SubjectCn}: its certificate sha256={station.CertificateSha256} is revoked on this factory (FactoryCa revoke-station); issue the station a new certificate");
        }

        if (station.Suspended)
        {
            throw new EnrollmentRejectedException(EnrollmentError.StationSuspended,
                $"station CN={station.SubjectCn} is suspended (FactoryCa:Stations, Id {station.Id}: Suspended)");
        }

        if (station.RateLimitPerMinute > 0)
        {
            var bucket = _buckets.GetOrAdd((station.Id, station.RateLimitPerMinute), k => new Bucket(k.PerMinute, _time));
            if (!bucket.TryTake(out var retryAfter))
            {
                throw new EnrollmentRejectedException(EnrollmentError.StationRateLimited,
                    $"station CN={station.SubjectCn} exceeded {station.RateLimitPerMinute} enrollments per minute (FactoryCa:Stations, Id {station.Id}: RateLimitPerMinute); retry in {Math.Ceiling(retryAfter.TotalSeconds)} s")
                {
                    RetryAfter = retryAfter,
                };
            }
        }

        return NoReservation.Instance;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var b in _buckets.Values)
        {
            b.Dispose();
        }

        _buckets.Clear();
    }

    /// <summary>One station's bucket and its last lease's Retry-After.</summary>
    private sealed class Bucket(int perMinute, TimeProvider time) : IDisposable
    {
        private readonly ClockedTokenBucketRateLimiter _limiter = new(perMinute, TimeSpan.FromMinutes(1) / perMinute, time);

        public bool TryTake(out TimeSpan retryAfter)
        {
            using var lease = _limiter.AttemptAcquire(1);
            retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var r) ? r : TimeSpan.Zero;
            return lease.IsAcquired;
        }

        public void Dispose() => _limiter.Dispose();
    }
}

/// <summary>
/// A token bucket (System.Threading.RateLimiting <see cref="RateLimiter"/>) refilled from a <see cref="TimeProvider"/>:
/// <paramref name="tokenLimit"/> tokens, one more every <paramref name="tokenPeriod"/>, no queue. The stock
/// <see cref="TokenBucketRateLimiter"/> reads <c>Stopwatch</c> even when replenished by hand, so a test could not move
/// its time; this one has the same semantics on an injected clock. A refused lease carries
/// <see cref="MetadataName.RetryAfter"/> (time until the next token). Thread safe.
/// </summary>
/// <param name="tokenLimit">Bucket size (≥ 1).</param>
/// <param name="tokenPeriod">Time to earn one token (positive).</param>
/// <param name="time">The clock.</param>
public sealed class ClockedTokenBucketRateLimiter(int tokenLimit, TimeSpan tokenPeriod, TimeProvider time) : RateLimiter
{
    private readonly int _limit = tokenLimit >= 1 ? tokenLimit : throw new ArgumentOutOfRangeException(nameof(tokenLimit), tokenLimit, "at least 1");
    private readonly TimeSpan _period = tokenPeriod > TimeSpan.Zero ? tokenPeriod : throw new ArgumentOutOfRangeException(nameof(tokenPeriod), tokenPeriod, "must be positive");
    private readonly TimeProvider _time = time ?? throw new ArgumentNullException(nameof(time));
    private readonly Lock _lock = new();
    private double _tokens = tokenLimit;
    private DateTimeOffset _last = (time ?? TimeProvider.System).GetUtcNow();
    private long _failed;
    private long _succeeded;

    /// <inheritdoc />
    public override TimeSpan? IdleDuration
    {
        get
        {
            lock (_lock)
            {
                Refill();
                return _tokens >= _limit ? _time.GetUtcNow() - _last : null;
            }
        }
    }

    /// <inheritdoc />
    public override RateLimiterStatistics? GetStatistics()
    {
        lock (_lock)
        {
            Refill();
            return new RateLimiterStatistics
            {
                CurrentAvailablePermits = (long)_tokens, CurrentQueuedCount = 0, TotalFailedLeases = _failed, TotalSuccessfulLeases = _succeeded,
            };
        }
    }

    /// <inheritdoc />
    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(permitCount);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(permitCount, _limit);
        lock (_lock)
        {
            Refill();
            if (_tokens >= permitCount)
            {
                _tokens -= permitCount;
                _succeeded++;
                return Lease.Acquired;
            }

            _failed++;
            return new Lease(false, TimeSpan.FromTicks((long)Math.Ceiling((permitCount - _tokens) * _period.Ticks)));
        }
    }

    /// <inheritdoc />
    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken) =>
        new(AttemptAcquireCore(permitCount));

    private void Refill()
    {
        var now = _time.GetUtcNow();
        if (now > _last)
        {
            _tokens = Math.Min(_limit, _tokens + ((now - _last).Ticks / (double)_period.Ticks));
            _last = now;
        }
    }

    private sealed class Lease(bool acquired, TimeSpan? retryAfter) : RateLimitLease
    {
        public static Lease Acquired { get; } = new(true, null);

        public override bool IsAcquired => acquired;

        public override IEnumerable<string> MetadataNames => retryAfter is null ? [] : [MetadataName.RetryAfter.Name];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            if (retryAfter is { } r && metadataName == MetadataName.RetryAfter.Name)
            {
                metadata = r;
                return true;
            }

            metadata = null;
            return false;
        }
    }
}
