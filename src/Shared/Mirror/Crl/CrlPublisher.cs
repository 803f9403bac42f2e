using OfflinePki.Asn1;
using OfflinePki.Keys;
using OfflinePki.Revocation;

namespace OfflinePki.Crl;

/// <summary>Delta CRL settings of a <see cref="CrlPublisher"/> (RFC 5280 §5.2.4, §5.2.6).</summary>
/// <param name="Changes">The registry's change feed.</param>
/// <param name="Validity">Delta nextUpdate - thisUpdate; positive, at most the full CRL validity.</param>
/// <param name="RefreshAfter">Rebuild the delta once it is this old even without changes; positive, less than <paramref name="Validity"/>.</param>
/// <param name="DeltaUrl">The delta's public http URL, written as freshestCRL in the full CRL; null to omit it.</param>
public sealed record DeltaCrlSettings(IRevocationChangeSource Changes, TimeSpan Validity, TimeSpan RefreshAfter, string? DeltaUrl);

/// <summary>One partition of an issuer's CRLs (RFC 5280 §5.2.5); see <see cref="CrlPartitioning"/>.</summary>
/// <param name="Index">This partition, 0..<paramref name="Count"/>-1.</param>
/// <param name="Count">Number of partitions, 2..<see cref="CrlPartitioning.MaxPartitions"/>.</param>
/// <param name="DistributionPointUrl">The partition's URL: the issuingDistributionPoint of its CRLs and the certificates' cRLDistributionPoints.</param>
public sealed record CrlPartition(int Index, int Count, string DistributionPointUrl);

/// <summary>
/// Keeps the current signed CRL of one issuer and rebuilds it when the registry's revocations change or when
/// it is older than the refresh interval. Thread-safe; at most one build runs at a time per issuer.
/// </summary>
public sealed class CrlPublisher
{
    private readonly CrlIssuer _issuer;
    private readonly ISigningKey _signer;
    private readonly IRevocationSource _source;
    private readonly TimeProvider _time;
    private readonly TimeSpan _validity;
    private readonly TimeSpan _refreshAfter;
    private readonly CrlBuilder _builder;
    private readonly Lock _gate = new();
    private readonly DeltaCrlSettings? _delta;
    private readonly CrlPartition? _partition;
    private volatile Snapshot? _current;
    private volatile Snapshot? _currentDelta;

    /// <summary>Creates a publisher.</summary>
    /// <param name="issuer">The issuing CA.</param>
    /// <param name="signer">The issuing CA key clone.</param>
    /// <param name="source">The registry.</param>
    /// <param name="timeProvider">Clock.</param>
    /// <param name="validity">nextUpdate - thisUpdate; positive.</param>
    /// <param name="refreshAfter">Rebuild a CRL once it is this old even without changes; positive, less than <paramref name="validity"/>.</param>
    /// <param name="builder">Builder (default lints when null).</param>
    /// <exception cref="ArgumentOutOfRangeException">A duration is not positive, or <paramref name="refreshAfter"/> is not less than <paramref name="validity"/>.</exception>
    public CrlPublisher(CrlIssuer issuer, ISigningKey signer, IRevocationSource source, TimeProvider timeProvider,
        TimeSpan validity, TimeSpan refreshAfter, CrlBuilder? builder = null)
        : this(issuer, signer, source, timeProvider, validity, refreshAfter, null, builder)
    {
    }

    /// <summary>
    /// Creates a publisher that also makes delta CRLs. With deltas, a revocation no longer rebuilds the full CRL (it
    /// is rebuilt every <paramref name="refreshAfter"/>); it rebuilds the much smaller delta instead.
    /// </summary>
    /// <param name="issuer">The issuing CA.</param>
    /// <param name="signer">The issuing CA key clone.</param>
    /// <param name="source">The registry.</param>
    /// <param name="timeProvider">Clock.</param>
    /// <param name="validity">Full CRL nextUpdate - thisUpdate; positive.</param>
    /// <param name="refreshAfter">Full CRL rebuild age; positive, less than <paramref name="validity"/>.</param>
    /// <param name="delta">Delta settings, or null for full CRLs only (rebuilt on every revocation).</param>
    /// <param name="builder">Builder (default lints when null).</param>
    /// <exception cref="ArgumentOutOfRangeException">A duration is not positive, or a refresh age is not less than its validity.</exception>
    public CrlPublisher(CrlIssuer issuer, ISigningKey signer, IRevocationSource source, TimeProvider timeProvider,
        TimeSpan validity, TimeSpan refreshAfter, DeltaCrlSettings? delta, CrlBuilder? builder = null)
        : this(issuer, signer, source, timeProvider, validity, refreshAfter, delta, null, builder)
    {
    }

    /// <summary>Creates a publisher for one partition of the issuer's CRLs (full CRLs only; no deltas).</summary>
    /// <param name="issuer">The issuing CA.</param>
    /// <param name="signer">The issuing CA key clone.</param>
    /// <param name="source">The registry.</param>
    /// <param name="timeProvider">Clock.</param>
    /// <param name="validity">nextUpdate - thisUpdate; positive.</param>
    /// <param name="refreshAfter">Rebuild age; positive, less than <paramref name="validity"/>.</param>
    /// <param name="delta">Delta settings; must be null when <paramref name="partition"/> is set.</param>
    /// <param name="partition">The partition, or null for the whole issuer.</param>
    /// <param name="builder">Builder (default lints when null).</param>
    /// <exception cref="ArgumentException">Both <paramref name="delta"/> and <paramref name="partition"/> are set, or the partition is out of range.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A duration is not positive, or a refresh age is not less than its validity.</exception>
    public CrlPublisher(CrlIssuer issuer, ISigningKey signer, IRevocationSource source, TimeProvider timeProvider,
        TimeSpan validity, TimeSpan refreshAfter, DeltaCrlSettings? delta, CrlPartition? partition, CrlBuilder? builder = null)
    {
        if (partition is not null)
        {
            if (delta is not null)
            {
                throw new ArgumentException("partitioned CRLs have no deltas here; enable one or the other", nameof(partition));
            }

            if (partition.Count is < 2 or > CrlPartitioning.MaxPartitions || partition.Index < 0 || partition.Index >= partition.Count)
            {
                throw new ArgumentException($"partition {partition.Index} of {partition.Count} is out of range", nameof(partition));
            }
        }

        _partition = partition;
        ArgumentNullException.ThrowIfNull(issuer);
        ArgumentNullException.ThrowIfNull(signer);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(validity, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(refreshAfter, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(refreshAfter, validity);
        _issuer = issuer;
        _signer = signer;
        _source = source;
        _time = timeProvider;
        _validity = validity;
        _refreshAfter = refreshAfter;
        _builder = builder ?? new CrlBuilder();
        if (delta is not null)
        {
            ArgumentNullException.ThrowIfNull(delta.Changes);
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(delta.Validity, TimeSpan.Zero);
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(delta.RefreshAfter, TimeSpan.Zero);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(delta.RefreshAfter, delta.Validity);
        }

        _delta = delta;
    }

    /// <summary>True when this publisher makes delta CRLs.</summary>
    public bool DeltasEnabled => _delta is not null;

    /// <summary>
    /// The current full CRL, building a new one (with a new CRL number) when it is due, or, without deltas, when
    /// revocations changed.
    /// </summary>
    /// <exception cref="CrlLintException">The CRL failed a lint.</exception>
    /// <exception cref="SigningKeyUnavailableException">The key cannot sign.</exception>
    public SignedCrl GetCurrent() => GetFullSnapshot().Crl;

    /// <summary>
    /// The current delta CRL (RFC 5280 §5.2.4) against the current full CRL: every certificate revoked, or released
    /// from hold (removeFromCRL), since the full CRL was built. Rebuilt when revocations change, when the full CRL
    /// changes, or when it is due.
    /// </summary>
    /// <exception cref="InvalidOperationException">Deltas are not enabled for this publisher.</exception>
    /// <exception cref="CrlLintException">The CRL failed a lint.</exception>
    /// <exception cref="SigningKeyUnavailableException">The key cannot sign.</exception>
    public SignedCrl GetCurrentDelta()
    {
        var delta = _delta ?? throw new InvalidOperationException("delta CRLs are not enabled (MirrorCa:Crl:Deltas:Enabled)");
        var full = GetFullSnapshot();
        long version = _source.GetRevocationVersion(_issuer.IssuerKeyHash);
        var now = _time.GetUtcNow();
        var current = _currentDelta;
        if (IsFreshDelta(current, full, version, now, delta))
        {
            return current!.Crl;
        }

        lock (_gate)
        {
            full = GetFullSnapshotLocked();
            current = _currentDelta;
            version = _source.GetRevocationVersion(_issuer.IssuerKeyHash);
            now = _time.GetUtcNow();
            if (IsFreshDelta(current, full, version, now, delta))
            {
                return current!.Crl;
            }

            var thisUpdate = DerTime.Truncate(now);
            var nextUpdate = thisUpdate + delta.Validity;
            if (nextUpdate > full.Crl.NextUpdate)
            {
                // A delta never outlives its base (a relying party could not find the base any more).
                nextUpdate = full.Crl.NextUpdate;
            }

            var number = _source.NextCrlNumber(_issuer.IssuerKeyHash);
            var entries = delta.Changes.EnumerateChangesSince(_issuer.IssuerKeyHash, full.Watermark)
                .Select(c => c.Current ?? new RevokedEntry(c.Serial, c.ChangedAt, CrlReason.RemoveFromCrl, null));
            SignedCrl crl;
            try
            {
                crl = _builder.Build(_issuer, _signer, number, thisUpdate, nextUpdate, entries, new CrlExtras(DeltaBaseCrlNumber: full.Crl.CrlNumber, DeltaBaseCrl: full.Crl.Der));
            }
            catch (SigningKeyUnavailableException ex) when (current is not null && current.BaseNumber == full.Crl.CrlNumber && now < current.Crl.NextUpdate)
            {
                NoteRefreshFailure(ex);
                return current.Crl;
            }

            var snapshot = new Snapshot(crl, version, full.Watermark, full.Crl.CrlNumber);
            _currentDelta = snapshot;
            return crl;
        }
    }

    private static bool IsFreshDelta(Snapshot? current, Snapshot full, long version, DateTimeOffset now, DeltaCrlSettings delta) =>
        current is not null && current.Version == version && current.BaseNumber == full.Crl.CrlNumber && now < current.Crl.ThisUpdate + delta.RefreshAfter;

    private bool IsFreshFull(Snapshot? current, long version, DateTimeOffset now) =>
        current is not null && (_delta is not null || current.Version == version) && now < current.Crl.ThisUpdate + _refreshAfter;

    private Snapshot GetFullSnapshot()
    {
        long version = _source.GetRevocationVersion(_issuer.IssuerKeyHash);
        var current = _current;
        if (IsFreshFull(current, version, _time.GetUtcNow()))
        {
            return current!;
        }

        lock (_gate)
        {
            return GetFullSnapshotLocked();
        }
    }

    private Snapshot GetFullSnapshotLocked()
    {
        var current = _current;
        long version = _source.GetRevocationVersion(_issuer.IssuerKeyHash);
        var now = _time.GetUtcNow();
        if (IsFreshFull(current, version, now))
        {
            return current!;
        }

        // Read the watermark before the entries: a revocation racing with the build then lands in the next delta too
        // (listed twice is harmless; missing it would not be).
        long watermark = _delta?.Changes.GetRevocationWatermark(_issuer.IssuerKeyHash) ?? 0;
        var thisUpdate = DerTime.Truncate(now);
        var number = _source.NextCrlNumber(_issuer.IssuerKeyHash);
        var entries = _source.EnumerateRevoked(_issuer.IssuerKeyHash);
        if (_partition is { } p)
        {
            entries = entries.Where(e => CrlPartitioning.PartitionOf(e.Serial, p.Count) == p.Index);
        }

        SignedCrl crl;
        try
        {
            crl = _builder.Build(_issuer, _signer, number, thisUpdate, thisUpdate + _validity, entries,
                new CrlExtras(FreshestCrlUrl: _delta?.DeltaUrl, IssuingDistributionPointUrl: _partition?.DistributionPointUrl));
        }
        catch (SigningKeyUnavailableException ex) when (current is not null && now < current.Crl.NextUpdate)
        {
            // The key is in a token that is away: skip this refresh and keep serving the CRL we have while it is valid
            // (RFC 5280 §5.1.2.5: relying parties may use it until nextUpdate). The CRL number drawn above stays unused.
            NoteRefreshFailure(ex);
            return current;
        }

        LastRefreshFailure = null;
        var snapshot = new Snapshot(crl, version, watermark, null);
        _current = snapshot;
        return snapshot;
    }

    /// <summary>Logs CRL refreshes skipped because the signing key is unavailable (null: not logged).</summary>
    public Microsoft.Extensions.Logging.ILogger? Logger { get; init; }

    /// <summary>
    /// Why the last due refresh was skipped while the previous CRL kept being served (the signing key was unavailable;
    /// no secrets), or null once a refresh succeeded.
    /// </summary>
    public string? LastRefreshFailure { get; private set; }

    private void NoteRefreshFailure(SigningKeyUnavailableException ex)
    {
        bool first = LastRefreshFailure is null;
        LastRefreshFailure = ex.Message;
        if (first && Logger is not null)
        {
            Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(Logger,
                "CRL refresh for issuer key {IssuerKeyId} skipped, the previous CRL is still served until its nextUpdate: {Reason}", Convert.ToHexStringLower(_issuer.KeyIdentifier), ex.Message);
        }
    }

    private sealed record Snapshot(SignedCrl Crl, long Version, long Watermark, System.Numerics.BigInteger? BaseNumber);
}
