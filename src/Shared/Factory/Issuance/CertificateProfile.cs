using System.Formats.Asn1;
using System.Text.RegularExpressions;
using OfflinePki.Asn1;
using OfflinePki.Revocation;

namespace OfflinePki.Issuance;

/// <summary>What kind of certificate a profile makes; each kind has its own TBS layout and lint set.</summary>
public enum CertificateProfileKind
{
    /// <summary>IEEE 802.1AR IDevID: subject O, CN, serialNumber; SAN hardwareModuleName (RFC 4108 §5); config "idevid".</summary>
    IDevId,

    /// <summary>A generic device TLS client: EKU id-kp-clientAuth, keyUsage digitalSignature, SAN optional, finite validity; config "tls-client".</summary>
    TlsClient,

    /// <summary>
    /// A Matter Device Attestation Certificate (Matter Core Specification §6.2.2): subject carries the Matter vendor
    /// and product id attributes (§6.5.6.1), ECDSA P-256 with SHA-256 only (§6.1), basicConstraints cA FALSE and
    /// keyUsage digitalSignature only, both critical, no EKU, notAfter 99991231235959Z; config "matter-dac".
    /// </summary>
    MatterDac,
}

/// <summary>
/// An immutable certificate profile: what every device certificate of one kind looks like apart from its serial,
/// times, device serial and key. Built once from options and validated at startup (<see cref="EnsureValid"/>).
/// One issuing CA serves several profiles (<see cref="CertificateProfileSet"/>).
/// </summary>
public sealed class CertificateProfile
{
    /// <summary>The key types a device key may be, as named by <c>CsrIntake.ClassifyKey</c> ("RSA" stands for RSA 2048..16384).</summary>
    public static IReadOnlyList<string> AllKeyTypes { get; } = ["P-256", "P-384", "RSA"];

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

    /// <summary>The kind of certificate; <see cref="CertificateProfileKind.IDevId"/> by default.</summary>
    public CertificateProfileKind Kind { get; init; } = CertificateProfileKind.IDevId;

    /// <summary>
    /// Matter vendor id (matter-dac only), written as the 1.3.6.1.4.1.37244.2.1 subject attribute in 4 upper-case
    /// hex digits (Matter Core Specification §6.5.6.1). Null for other kinds.
    /// </summary>
    public ushort? MatterVendorId { get; init; }

    /// <summary>Matter product id (matter-dac only), the 1.3.6.1.4.1.37244.2.2 subject attribute (Matter §6.5.6.1). Null for other kinds.</summary>
    public ushort? MatterProductId { get; init; }

    /// <summary>True when EST serverkeygen (RFC 7030 §4.4) may be used with this profile (the station must allow it too).</summary>
    public bool AllowServerKeyGen { get; init; }

    /// <summary>
    /// tls-client only: also write the SAN otherName hardwareModuleName (RFC 4108 §5). IDevID profiles always carry
    /// it, Matter DACs never do.
    /// </summary>
    public bool IncludeHardwareModuleName
    {
        get => Kind switch { CertificateProfileKind.IDevId => true, CertificateProfileKind.MatterDac => false, _ => _includeHw };
        init => _includeHw = value;
    }

    private readonly bool _includeHw;

    /// <summary>
    /// The device key types accepted (subset of <see cref="AllKeyTypes"/>, in preference order: the first is the
    /// one csrattrs advertises and serverkeygen makes). Default: P-256 only for matter-dac (Matter §6.1), else all.
    /// </summary>
    public IReadOnlyList<string> AllowedKeyTypes
    {
        get => _keyTypes ?? (Kind == CertificateProfileKind.MatterDac ? ["P-256"] : AllKeyTypes);
        init => _keyTypes = value is { Count: > 0 } ? value.ToArray() : null;
    }

    private readonly IReadOnlyList<string>? _keyTypes;

    /// <summary>True when a device key classified as <paramref name="keyDescription"/> ("P-256", "P-384", "RSA-n") is allowed.</summary>
    /// <param name="keyDescription">The key as named by the CSR intake.</param>
    public bool AllowsKey(string keyDescription)
    {
        ArgumentNullException.ThrowIfNull(keyDescription);
        string type = keyDescription.StartsWith("RSA-", StringComparison.Ordinal) ? "RSA" : keyDescription;
        return AllowedKeyTypes.Contains(type, StringComparer.Ordinal);
    }

    /// <summary>
    /// Checks the rules that tie the fields to <see cref="Kind"/>: tls-client needs a finite validity; matter-dac needs
    /// a vendor and product id, notAfter 99991231235959Z (no validity) and P-256 keys only; key types are known.
    /// </summary>
    /// <returns>This profile.</returns>
    /// <exception cref="ArgumentException">A rule fails; ParamName is the configuration key (Validity, VendorId, ProductId, KeyTypes).</exception>
    public CertificateProfile EnsureValid()
    {
        foreach (var k in AllowedKeyTypes)
        {
            if (!AllKeyTypes.Contains(k, StringComparer.Ordinal))
            {
                throw new ArgumentException($"key type '{k}' is not one of {string.Join(", ", AllKeyTypes)}", "KeyTypes");
            }
        }

        switch (Kind)
        {
            case CertificateProfileKind.TlsClient when Validity is null:
                throw new ArgumentException("a tls-client profile needs a finite validity (a TimeSpan such as 825.00:00:00)", "Validity");
            case CertificateProfileKind.MatterDac:
                if (MatterVendorId is null)
                {
                    throw new ArgumentException("a matter-dac profile needs a vendor id: 4 hex digits, e.g. FFF1 (Matter Core §6.5.6.1)", "VendorId");
                }

                if (MatterProductId is null)
                {
                    throw new ArgumentException("a matter-dac profile needs a product id: 4 hex digits, e.g. 8000 (Matter Core §6.5.6.1)", "ProductId");
                }

                if (Validity is not null)
                {
                    throw new ArgumentException("a matter-dac profile has notAfter 99991231235959Z: set Validity to NoWellDefinedExpiration (Matter Core §6.2.2)", "Validity");
                }

                if (AllowedKeyTypes is not ["P-256"])
                {
                    throw new ArgumentException("a matter-dac profile allows P-256 keys only (Matter Core §6.1)", "KeyTypes");
                }

                break;
            case CertificateProfileKind.IDevId or CertificateProfileKind.TlsClient:
                if (MatterVendorId is not null || MatterProductId is not null)
                {
                    throw new ArgumentException("VendorId and ProductId apply to matter-dac profiles only", MatterVendorId is not null ? "VendorId" : "ProductId");
                }

                break;
        }

        return this;
    }

    /// <summary>Parses a configuration kind: "idevid", "tls-client" or "matter-dac" (case-insensitive).</summary>
    /// <param name="value">The configured text.</param>
    /// <exception cref="ArgumentException">Another value; ParamName is "Kind".</exception>
    public static CertificateProfileKind ParseKind(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "idevid" => CertificateProfileKind.IDevId,
        "tls-client" => CertificateProfileKind.TlsClient,
        "matter-dac" => CertificateProfileKind.MatterDac,
        _ => throw new ArgumentException($"'{value}' is not a profile kind: use idevid, tls-client or matter-dac", "Kind"),
    };

    /// <summary>The configuration name of a kind ("idevid", "tls-client", "matter-dac").</summary>
    /// <param name="kind">The kind.</param>
    public static string KindName(CertificateProfileKind kind) => kind switch
    {
        CertificateProfileKind.TlsClient => "tls-client",
        CertificateProfileKind.MatterDac => "matter-dac",
        _ => "idevid",
    };

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
