using System.Collections.Concurrent;
using System.Threading.RateLimiting;
using OfflinePki.Enrollment;

namespace OfflinePki.Policy;

/// <summary>
/// The station limits of the registration authority, as one <see cref="IEnrollmentPolicy"/>: a locally revoked
/// station certificate (<see cref="EnrollmentError.StationCertificateRevoked"/>, 403), a suspended station
/// (<see cref="EnrollmentError.StationSuspended"/>, 403), and the per-station rate limit
/// (<see cref="EnrollmentError.StationRateLimited"/>, 429 with Retry-After). The rate limit is a
/// <see cref="TokenBucketRateLimiter"/> per station (bucket of one minute's worth, one token every
/// 60 s / RateLimitPerMinute) replenished from the injected <see cref="TimeProvider"/>, not a timer, so that
/// tests can move time. Reserves nothing; a spent token is not given back when a later rule refuses.
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
    public IEnrollmentAdmission Admit(EnrollmentContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var station = context.Station;
        if (_revoked.IsRevoked(station.CertificateSha256))
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
            var bucket = _buckets.GetOrAdd((station.Id, station.RateLimitPerMinute), k => new Bucket(k.PerMinute, _time.GetUtcNow()));
            if (!bucket.TryTake(_time.GetUtcNow(), out var retryAfter))
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

    /// <summary>One station's token bucket, replenished by hand from the clock.</summary>
    private sealed class Bucket : IDisposable
    {
        private readonly TokenBucketRateLimiter _limiter;
        private readonly TimeSpan _period;
        private readonly int _limit;
        private readonly Lock _lock = new();
        private DateTimeOffset _last;

        public Bucket(int perMinute, DateTimeOffset now)
        {
            _limit = perMinute;
            _period = TimeSpan.FromMinutes(1) / perMinute;
            _last = now;
            _limiter = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
            {
                TokenLimit = perMinute,
                TokensPerPeriod = 1,
                ReplenishmentPeriod = _period,
                AutoReplenishment = false,
                QueueLimit = 0,
            });
        }

        public bool TryTake(DateTimeOffset now, out TimeSpan retryAfter)
        {
            lock (_lock)
            {
                if (now > _last)
                {
                    long periods = (now - _last).Ticks / _period.Ticks;
                    for (long i = 0; i < Math.Min(periods, _limit); i++)
                    {
                        _limiter.TryReplenish();
                    }

                    _last = periods >= _limit ? now : _last + (_period * periods);
                }

                using var lease = _limiter.AttemptAcquire(1);
                retryAfter = lease.IsAcquired ? TimeSpan.Zero : _period - (now - _last);
                if (retryAfter < TimeSpan.FromSeconds(1) && !lease.IsAcquired)
                {
                    retryAfter = TimeSpan.FromSeconds(1);
                }

                return lease.IsAcquired;
            }
        }

        public void Dispose() => _limiter.Dispose();
    }
}
