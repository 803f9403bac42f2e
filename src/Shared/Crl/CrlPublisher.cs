using OfflinePki.Asn1;
using OfflinePki.Keys;
using OfflinePki.Revocation;

namespace OfflinePki.Crl;

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
    private volatile Snapshot? _current;

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
    {
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
    }

    /// <summary>The current CRL, building a new one (with a new CRL number) if revocations changed or it is due.</summary>
    /// <exception cref="CrlLintException">The CRL failed a lint.</exception>
    /// <exception cref="SigningKeyUnavailableException">The key cannot sign.</exception>
    public SignedCrl GetCurrent()
    {
        long version = _source.GetRevocationVersion(_issuer.IssuerKeyHash);
        var now = _time.GetUtcNow();
        var current = _current;
        if (current is not null && current.Version == version && now < current.Crl.ThisUpdate + _refreshAfter)
        {
            return current.Crl;
        }

        lock (_gate)
        {
            current = _current;
            version = _source.GetRevocationVersion(_issuer.IssuerKeyHash);
            now = _time.GetUtcNow();
            if (current is not null && current.Version == version && now < current.Crl.ThisUpdate + _refreshAfter)
            {
                return current.Crl;
            }

            var thisUpdate = DerTime.Truncate(now);
            var number = _source.NextCrlNumber(_issuer.IssuerKeyHash);
            var crl = _builder.Build(_issuer, _signer, number, thisUpdate, thisUpdate + _validity, _source.EnumerateRevoked(_issuer.IssuerKeyHash));
            _current = new Snapshot(crl, version);
            return crl;
        }
    }

    private sealed record Snapshot(SignedCrl Crl, long Version);
}
