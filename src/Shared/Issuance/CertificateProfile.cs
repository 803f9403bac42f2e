using System.Formats.Asn1;
using System.Text.RegularExpressions;
using OfflinePki.Asn1;
using OfflinePki.Crl;

namespace OfflinePki.Issuance;

/// <summary>
/// The immutable IEEE 802.1AR IDevID profile: what every device certificate of this factory looks like apart
/// from its serial, times, device serial and key. Built once from options and validated at startup.
/// </summary>
public sealed class CertificateProfile
{
    /// <summary>Default hwType of the hardwareModuleName otherName (RFC 4108 §5): our arc + ".2.1".</summary>
    public const string DefaultHardwareModuleType = Oids.OfflinePkiArc + ".2.1";

    /// <summary>Creates and validates a profile.</summary>
    /// <param name="name">Profile name, journaled with each certificate (1-64 characters).</param>
    /// <param name="subjectCommonName">Subject CN of every device certificate (1-64 characters, RFC 5280 ub-common-name).</param>
    /// <param name="subjectOrganization">Subject O (1-64 characters, RFC 5280 ub-organization-name).</param>
    /// <param name="validity">Lifetime from notBefore; null means notAfter = 99991231235959Z (RFC 5280 §4.1.2.5, IEEE 802.1AR §8.5). Positive when given.</param>
    /// <param name="crlDistributionPointUrl">http(s) URL of the CRL (RFC 5280 §4.2.1.13).</param>
    /// <param name="ocspUrl">http(s) URL of the OCSP responder (RFC 5280 §4.2.2.1).</param>
    /// <param name="caIssuersUrl">http(s) URL of the issuing CA certificate (RFC 5280 §4.2.2.1).</param>
    /// <param name="hardwareModuleType">Dotted OID for hwType (RFC 4108 §5); null or empty for <see cref="DefaultHardwareModuleType"/>.</param>
    /// <param name="deviceIdPattern">Regular expression a device serial must match; anchored with ^...$ by convention.</param>
    /// <exception cref="ArgumentException">A value is empty, too long, not an http(s) URL, not an OID, or not a valid pattern; the message names the parameter.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="validity"/> is zero or negative.</exception>
    public CertificateProfile(string name, string subjectCommonName, string subjectOrganization, TimeSpan? validity,
        Uri crlDistributionPointUrl, Uri ocspUrl, Uri caIssuersUrl, string? hardwareModuleType, string deviceIdPattern)
    {
        Name = Bounded(name, nameof(name));
        SubjectCommonName = Bounded(subjectCommonName, nameof(subjectCommonName));
        SubjectOrganization = Bounded(subjectOrganization, nameof(subjectOrganization));
        if (validity is { } v && v <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(validity), v, "validity must be positive");
        }

        Validity = validity;
        CrlDistributionPointUrl = HttpUrl(crlDistributionPointUrl, nameof(crlDistributionPointUrl));
        OcspUrl = HttpUrl(ocspUrl, nameof(ocspUrl));
        CaIssuersUrl = HttpUrl(caIssuersUrl, nameof(caIssuersUrl));
        HardwareModuleType = string.IsNullOrEmpty(hardwareModuleType) ? DefaultHardwareModuleType : hardwareModuleType;
        try
        {
            new AsnWriter(AsnEncodingRules.DER).WriteObjectIdentifier(HardwareModuleType);
        }
        catch (ArgumentException)
        {
            throw new ArgumentException($"'{HardwareModuleType}' is not a dotted object identifier", nameof(hardwareModuleType));
        }

        ArgumentException.ThrowIfNullOrEmpty(deviceIdPattern);
        try
        {
            DeviceIdPattern = new Regex(deviceIdPattern, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
        }
        catch (ArgumentException ex)
        {
            throw new ArgumentException($"'{deviceIdPattern}' is not a valid regular expression: {ex.Message}", nameof(deviceIdPattern));
        }
    }

    /// <summary>Profile name (journaled).</summary>
    public string Name { get; }

    /// <summary>Subject CN.</summary>
    public string SubjectCommonName { get; }

    /// <summary>Subject O.</summary>
    public string SubjectOrganization { get; }

    /// <summary>Lifetime; null for the RFC 5280 §4.1.2.5 "no well-defined expiration" value.</summary>
    public TimeSpan? Validity { get; }

    /// <summary>CRL distribution point URL.</summary>
    public Uri CrlDistributionPointUrl { get; }

    /// <summary>
    /// The delta CRL URL written as freshestCRL (RFC 5280 §4.2.1.15) into every certificate, or null (the default) for none.
    /// Set it only when the mirror serves delta CRLs (MirrorCa:Crl:Deltas:Enabled), e.g. "http://mirror/crl/F1-delta.crl".
    /// </summary>
    /// <exception cref="ArgumentException">The value is not an absolute http(s) URL.</exception>
    public Uri? FreshestCrlUrl
    {
        get => _freshestCrlUrl;
        init => _freshestCrlUrl = value is null ? null : HttpUrl(value, nameof(FreshestCrlUrl));
    }

    private readonly Uri? _freshestCrlUrl;

    /// <summary>
    /// Number of CRL partitions (RFC 5280 §5.2.5), 1 (the default) for one CRL. With N &gt; 1 each certificate's
    /// cRLDistributionPoints names its partition's CRL, <see cref="CrlPartitioning.PartitionUrl"/> of
    /// <see cref="CrlDistributionPointUrl"/> for <see cref="CrlPartitioning.PartitionOf"/> of its serial; the mirror must
    /// use the same count (MirrorCa:Crl:Partitions).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside 1..<see cref="CrlPartitioning.MaxPartitions"/>.</exception>
    public int CrlPartitions
    {
        get => _crlPartitions;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1, nameof(CrlPartitions));
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, CrlPartitioning.MaxPartitions, nameof(CrlPartitions));
            _crlPartitions = value;
        }
    }

    private readonly int _crlPartitions = 1;

    /// <summary>The cRLDistributionPoints URL for a certificate with <paramref name="serial"/> (its partition's CRL when partitioned).</summary>
    /// <param name="serial">Normalised serial octets.</param>
    public string CrlDistributionPointFor(ReadOnlySpan<byte> serial) => CrlPartitions == 1
        ? CrlDistributionPointUrl.AbsoluteUri
        : CrlPartitioning.PartitionUrl(CrlDistributionPointUrl.AbsoluteUri, CrlPartitioning.PartitionOf(serial, CrlPartitions));

    /// <summary>OCSP URL.</summary>
    public Uri OcspUrl { get; }

    /// <summary>caIssuers URL.</summary>
    public Uri CaIssuersUrl { get; }

    /// <summary>hwType OID of the hardwareModuleName (RFC 4108 §5).</summary>
    public string HardwareModuleType { get; }

    /// <summary>Pattern for device serials (100 ms match timeout).</summary>
    public Regex DeviceIdPattern { get; }

    private static string Bounded(string value, string param)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(value, param);
        if (value.Length > 64)
        {
            throw new ArgumentException("at most 64 characters (RFC 5280 Appendix A upper bounds)", param);
        }

        return value;
    }

    private static Uri HttpUrl(Uri url, string param)
    {
        ArgumentNullException.ThrowIfNull(url, param);
        if (!url.IsAbsoluteUri || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"'{url}' is not an absolute http(s) URL", param);
        }

        return url;
    }
}
