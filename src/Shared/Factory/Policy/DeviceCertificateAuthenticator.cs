using System.Security.Cryptography.X509Certificates;
using OfflinePki.Asn1;
using OfflinePki.Issuance;

namespace OfflinePki.Policy;

/// <summary>
/// simplereenroll (RFC 7030 §4.2.2, §3.3.2): the TLS client is a device presenting its current certificate, which must
/// be issued by this factory's issuing CA (chained to the device root), never by the RA/TLS CA that certifies stations.
/// The device becomes the requester: a <see cref="StationIdentity"/> with Id <c>device:&lt;device ID&gt;</c>, allowed
/// only the profile its current certificate was issued under (<see cref="CertificateProfileSet.Matching"/>), every
/// order, no rate limit. "Is this the device's active certificate" is the device policy's rule.
/// </summary>
public sealed class DeviceCertificateAuthenticator
{
    /// <summary>Prefix of the requester id journaled as station_id for a re-enrollment.</summary>
    public const string RequesterPrefix = "device:";

    private readonly IssuingAuthority _authority;
    private readonly CertificateProfileSet _profiles;
    private readonly X509Certificate2 _root;
    private readonly TimeProvider _time;

    /// <summary>Creates the authenticator.</summary>
    /// <param name="authority">The issuing CA (its certificate must be the device certificate's issuer; its chain ends at the root).</param>
    /// <param name="profiles">The profiles the CA serves (a device renews under the profile of its current certificate).</param>
    /// <param name="time">Clock for the chain's verification time.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The authority has no certificate above it (the root).</exception>
    public DeviceCertificateAuthenticator(IssuingAuthority authority, CertificateProfileSet profiles, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentNullException.ThrowIfNull(profiles);
        ArgumentNullException.ThrowIfNull(time);
        _authority = authority;
        _profiles = profiles;
        _root = authority.ChainAboveIssuer.LastOrDefault() ?? throw new ArgumentException("the issuing authority needs its root certificate", nameof(authority));
        _time = time;
    }

    /// <summary>Checks a device certificate presented for re-enrollment.</summary>
    /// <param name="certificate">The TLS client certificate; null when none was presented.</param>
    /// <returns>The requester identity (allowed only <c>Profile</c>), the device ID and the profile of the certificate.</returns>
    /// <exception cref="StationRejectedException">
    /// <see cref="StationError.NoCertificate"/> (none presented) or <see cref="StationError.Untrusted"/> (not issued by the
    /// issuing CA, outside its validity, without a single subject serialNumber, or matching no single configured profile).
    /// </exception>
    public (StationIdentity Requester, string DeviceId, string Profile) Authenticate(X509Certificate2? certificate)
    {
        if (certificate is null)
        {
            throw new StationRejectedException(StationError.NoCertificate,
                "client certificate required: simplereenroll is authenticated by the device's current certificate (RFC 7030 §4.2.2)");
        }

        string subject = certificate.Subject;
        using (var chain = new X509Chain())
        {
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(_root);
            chain.ChainPolicy.ExtraStore.Add(_authority.Certificate);
            foreach (var c in _authority.ChainAboveIssuer)
            {
                chain.ChainPolicy.ExtraStore.Add(c);
            }

            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.VerificationTime = _time.GetUtcNow().UtcDateTime;
            chain.ChainPolicy.VerificationTimeIgnored = false;
            chain.ChainPolicy.DisableCertificateDownloads = true;
            bool ok = chain.Build(certificate);
            if (!ok || chain.ChainElements.Count < 2
                || !chain.ChainElements[1].Certificate.RawDataMemory.Span.SequenceEqual(_authority.Certificate.RawDataMemory.Span))
            {
                var why = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct());
                throw new StationRejectedException(StationError.Untrusted,
                    $"certificate '{subject}' was not issued by the issuing CA '{_authority.Certificate.Subject}': simplereenroll needs the device's current certificate{(why.Length > 0 ? " (" + why + ")" : string.Empty)}");
            }
        }

        var ids = certificate.SubjectName.EnumerateRelativeDistinguishedNames()
            .Where(r => !r.HasMultipleElements && r.GetSingleElementType().Value == Oids.SerialNumberAttribute)
            .Select(r => r.GetSingleElementValue() ?? string.Empty).ToList();
        if (ids.Count != 1 || ids[0].Length == 0)
        {
            throw new StationRejectedException(StationError.Untrusted, $"certificate '{subject}' has no single subject serialNumber (device ID)");
        }

        var matching = _profiles.Matching(certificate);
        if (matching.Count != 1)
        {
            throw new StationRejectedException(StationError.Untrusted,
                $"certificate '{subject}' matches {(matching.Count == 0 ? "no" : "more than one")} configured profile ({string.Join(", ", _profiles.Names)}): cannot tell which profile to renew it under");
        }

        string fingerprint = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(certificate.RawDataMemory.Span));
        var requester = new StationIdentity(RequesterPrefix + ids[0], certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false), fingerprint,
            [matching[0].Name]);
        return (requester, ids[0], matching[0].Name);
    }
}
