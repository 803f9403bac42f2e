using System.Numerics;

namespace OfflinePki.Issuance.Lints;

/// <summary>RFC 5280 §4.1.2.1 / IEEE 802.1AR §8.1: a certificate with extensions is v3 (Version value 2).</summary>
public sealed class VersionIsV3Lint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "version_is_v3";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.1.2.1; IEEE 802.1AR §8.1";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context) =>
        tbs.Version == 2 ? null : $"version is {tbs.Version}, expected 2 (v3)";
}

/// <summary>RFC 5280 §4.1.2.2: the serial number MUST be a positive integer.</summary>
public sealed class SerialNumberPositiveLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "serial_number_positive";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.1.2.2";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context) =>
        new BigInteger(tbs.Serial, isUnsigned: false, isBigEndian: true).Sign > 0 ? null : "serial number is zero or negative";
}

/// <summary>RFC 5280 §4.1.2.2: conforming CAs MUST NOT use serial numbers longer than 20 octets.</summary>
public sealed class SerialNumberLengthLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "serial_number_at_most_20_octets";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.1.2.2";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context) =>
        tbs.Serial.Length <= OfflinePki.Asn1.SerialNumber.MaxOctets ? null : $"serial number is {tbs.Serial.Length} octets";
}

/// <summary>
/// CA/Browser Forum Baseline Requirements §7.1 (adopted here for devices): at least 64 bits of CSPRNG output,
/// checked as a serial magnitude of at least 64 bits, i.e. unguessable serials.
/// </summary>
public sealed class SerialNumberEntropyLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "serial_number_at_least_64_bits";
    /// <inheritdoc />
    public string Citation => "CA/B Forum BR §7.1";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        long bits = new BigInteger(tbs.Serial, isUnsigned: false, isBigEndian: true).GetBitLength();
        return bits >= 64 ? null : $"serial number has {bits} significant bits, fewer than 64";
    }
}

/// <summary>RFC 5280 §4.1.2.3: the signature field names the algorithm the issuer's key will sign with.</summary>
public sealed class SignatureAlgorithmMatchesIssuerKeyLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "signature_algorithm_matches_issuer_key";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.1.2.3";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context) =>
        tbs.SignatureAlgorithm.AsSpan().SequenceEqual(context.Issuer.SigningKey.SignatureAlgorithmIdentifier)
            ? null : "TBS signature AlgorithmIdentifier differs from the issuing key's";
}

/// <summary>RFC 5280 §4.1.2.4: issuer equals the issuing CA's subject (byte for byte, so chains build).</summary>
public sealed class IssuerIsCaSubjectLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "issuer_is_ca_subject";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.1.2.4";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context) =>
        tbs.Issuer.AsSpan().SequenceEqual(context.Issuer.SubjectName.Span) ? null : "issuer is not the issuing CA's subject";
}
