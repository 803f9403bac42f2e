using System.Security.Cryptography.X509Certificates;
using OfflinePki.Asn1;

namespace OfflinePki.Policy;

/// <summary>An authenticated RA station: the id from the station list, and its certificate subject CN.</summary>
/// <param name="Id">The station id as configured (FactoryCa:Stations[i]:Id); journaled as station_id.</param>
/// <param name="SubjectCn">The CN of the station's mTLS client certificate.</param>
/// <param name="CertificateSha256">Lower-case hex SHA-256 of the client certificate DER, for logs.</param>
/// <param name="Profiles">Profile names the station may request; null or empty means every profile.</param>
public sealed record StationIdentity(string Id, string SubjectCn, string CertificateSha256, IReadOnlyList<string>? Profiles = null)
{
    /// <summary>Production order ids the station may consume; null or empty means every accepted order.</summary>
    public IReadOnlyList<string>? Orders { get; init; }

    /// <summary>True when the station is suspended by policy (every enrollment is refused).</summary>
    public bool Suspended { get; init; }

    /// <summary>Most enrollments per minute, 0 for no limit.</summary>
    public int RateLimitPerMinute { get; init; }

    /// <summary>True when the station may use EST serverkeygen (RFC 7030 §4.4).</summary>
    public bool AllowServerKeyGen { get; init; }

    /// <summary>True when the station may request <paramref name="profile"/>.</summary>
    public bool MayRequest(string profile) => Profiles is not { Count: > 0 } || Profiles.Contains(profile, StringComparer.Ordinal);

    /// <summary>True when the station may consume order <paramref name="orderId"/>.</summary>
    public bool MayUseOrder(string orderId) => Orders is not { Count: > 0 } || Orders.Contains(orderId, StringComparer.Ordinal);
}

/// <summary>One allowed station.</summary>
/// <param name="Id">Stable station id (journaled).</param>
/// <param name="CertificateSubjectCn">The subject CN its client certificate must carry.</param>
/// <param name="Profiles">Profile names it may request; null or empty means every profile.</param>
public sealed record StationEntry(string Id, string CertificateSubjectCn, IReadOnlyList<string>? Profiles = null)
{
    /// <summary>Production order ids it may consume; null or empty means every accepted order.</summary>
    public IReadOnlyList<string>? Orders { get; init; }

    /// <summary>True to refuse every enrollment from it.</summary>
    public bool Suspended { get; init; }

    /// <summary>Most enrollments per minute, 0 for no limit.</summary>
    public int RateLimitPerMinute { get; init; }

    /// <summary>True when it may use EST serverkeygen.</summary>
    public bool AllowServerKeyGen { get; init; }
}

/// <summary>Why a station was refused.</summary>
public enum StationError
{
    /// <summary>No client certificate was presented (HTTP 401).</summary>
    NoCertificate,
    /// <summary>The certificate does not chain to the RA/TLS CA, or is outside its validity (HTTP 403).</summary>
    Untrusted,
    /// <summary>The certificate lacks the id-kp-clientAuth EKU (RFC 5280 §4.2.1.12) (HTTP 403).</summary>
    NotClientAuth,
    /// <summary>The subject CN is not in the station list (HTTP 403).</summary>
    NotListed,
}

/// <summary>A station's client certificate was refused. The message names the rule that failed.</summary>
public sealed class StationRejectedException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="code">The rule that failed.</param>
    /// <param name="message">Reason, safe to return to the caller.</param>
    public StationRejectedException(StationError code, string message) : base(message)
    {
        Code = code;
    }

    /// <summary>The rule that failed.</summary>
    public StationError Code { get; }
}

/// <summary>Decides who is a station: the one place the EST mTLS identity is enforced.</summary>
public interface IStationAuthorizer
{
    /// <summary>Maps a TLS client certificate to a listed station.</summary>
    /// <param name="clientCertificate">The certificate presented in the TLS handshake; null when none was.</param>
    /// <returns>The station.</returns>
    /// <exception cref="StationRejectedException">No certificate, an untrusted chain, no clientAuth EKU, or an unlisted CN.</exception>
    StationIdentity Authorize(X509Certificate2? clientCertificate);
}

/// <summary>
/// Stations are identified by a client certificate that chains to the RA/TLS CA (a separate hierarchy from
/// device identities), carries clientAuth, and whose subject CN is in the configured list.
/// The RA CA publishes no CRL on the factory LAN: a compromised station certificate is revoked locally
/// (<see cref="RevokedStationStore"/>, enforced per enrollment by <see cref="StationLimitsPolicy"/>) or removed from the list.
/// </summary>
public sealed class StationAuthorizer : IStationAuthorizer
{
    private readonly X509Certificate2 _raCa;
    private readonly Dictionary<string, StationEntry> _byCn;
    private readonly TimeProvider _time;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (StationIdentity Identity, DateTimeOffset Until)> _recent = new(StringComparer.Ordinal);

    /// <summary>How long a successful station decision is reused for the same certificate (never past its notAfter).</summary>
    public static TimeSpan DecisionLifetime { get; } = TimeSpan.FromSeconds(60);

    /// <summary>Creates the authorizer.</summary>
    /// <param name="raCaCertificate">The RA/TLS CA that certifies stations (trust anchor; no other root is trusted).</param>
    /// <param name="stations">The station list; CNs compare ordinally and must be unique.</param>
    /// <param name="time">Clock for the chain's verification time.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">Two entries share a CN, or an entry has an empty id or CN.</exception>
    public StationAuthorizer(X509Certificate2 raCaCertificate, IEnumerable<StationEntry> stations, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(raCaCertificate);
        ArgumentNullException.ThrowIfNull(stations);
        ArgumentNullException.ThrowIfNull(time);
        _raCa = raCaCertificate;
        _time = time;
        _byCn = new Dictionary<string, StationEntry>(StringComparer.Ordinal);
        foreach (var s in stations)
        {
            if (string.IsNullOrWhiteSpace(s.Id) || string.IsNullOrWhiteSpace(s.CertificateSubjectCn))
            {
                throw new ArgumentException("every station needs an Id and a CertificateSubjectCn", nameof(stations));
            }

            if (!_byCn.TryAdd(s.CertificateSubjectCn, s))
            {
                throw new ArgumentException($"station CN={s.CertificateSubjectCn} is listed twice", nameof(stations));
            }
        }
    }

    /// <inheritdoc />
    public StationIdentity Authorize(X509Certificate2? clientCertificate)
    {
        if (clientCertificate is null)
        {
            throw new StationRejectedException(StationError.NoCertificate, "client certificate required: present the station's TLS client certificate issued by the RA CA");
        }

        // A station reuses one certificate for many requests: remember a successful decision for a short while
        // (never past the certificate's notAfter), so the chain is not rebuilt on every enrollment.
        var now = _time.GetUtcNow();
        string thumbprint = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(clientCertificate.RawDataMemory.Span));
        if (_recent.TryGetValue(thumbprint, out var cached) && now < cached.Until)
        {
            return cached.Identity;
        }

        string cn = clientCertificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
        string who = $"station CN={cn}";

        using (var chain = new X509Chain())
        {
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(_raCa);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.VerificationTime = _time.GetUtcNow().UtcDateTime;
            chain.ChainPolicy.VerificationTimeIgnored = false;
            chain.ChainPolicy.DisableCertificateDownloads = true;
            bool ok = chain.Build(clientCertificate);
            if (!ok || chain.ChainElements.Count < 2 || !chain.ChainElements[^1].Certificate.RawDataMemory.Span.SequenceEqual(_raCa.RawDataMemory.Span))
            {
                var why = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct());
                throw new StationRejectedException(StationError.Untrusted,
                    $"{who} does not chain to the RA CA '{_raCa.Subject}' (FactoryCa:Est:RaCaCertificate){(why.Length > 0 ? ": " + why : string.Empty)}");
            }
        }

        bool clientAuth = clientCertificate.Extensions.OfType<X509EnhancedKeyUsageExtension>()
            .Any(e => e.EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>().Any(o => o.Value == Oids.ClientAuthEku));
        if (!clientAuth)
        {
            throw new StationRejectedException(StationError.NotClientAuth, $"{who} lacks the clientAuth extended key usage (RFC 5280 §4.2.1.12)");
        }

        if (!_byCn.TryGetValue(cn, out var entry))
        {
            throw new StationRejectedException(StationError.NotListed, $"{who} is not in the station list (FactoryCa:Stations)");
        }

        var identity = new StationIdentity(entry.Id, cn, thumbprint, entry.Profiles)
        {
            Orders = entry.Orders, Suspended = entry.Suspended, RateLimitPerMinute = entry.RateLimitPerMinute, AllowServerKeyGen = entry.AllowServerKeyGen,
        };
        var until = now + DecisionLifetime;
        var notAfter = new DateTimeOffset(clientCertificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        if (_recent.Count > 4096)
        {
            _recent.Clear();
        }

        _recent[thumbprint] = (identity, until < notAfter ? until : notAfter);
        return identity;
    }
}
