using System.Formats.Asn1;
using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using OfflinePki.Asn1;

namespace OfflinePki.Issuance.Lints;

/// <summary>RFC 5280 §4.2.1.12 (tls-client profile): extendedKeyUsage is present, non-critical, and names id-kp-clientAuth.</summary>
public sealed class ExtendedKeyUsageClientAuthLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "eku_client_auth";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.2.1.12";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var ext = tbs.Find(Oids.ExtendedKeyUsage);
        if (ext is null)
        {
            return "extendedKeyUsage is missing (a TLS client certificate needs id-kp-clientAuth)";
        }

        if (ext.Critical)
        {
            return "extendedKeyUsage is critical; the profile writes it non-critical";
        }

        var ekus = new X509EnhancedKeyUsageExtension(new System.Security.Cryptography.AsnEncodedData(Oids.ExtendedKeyUsage, ext.Value), false).EnhancedKeyUsages;
        return ekus.Cast<System.Security.Cryptography.Oid>().Any(o => o.Value == Oids.ClientAuthEku) ? null : "extendedKeyUsage lacks id-kp-clientAuth";
    }
}

/// <summary>
/// RFC 5280 §4.1.2.5 (tls-client profile): the certificate has a finite validity, notAfter = notBefore + the
/// profile's validity, not the 99991231235959Z "no well-defined expiration" value.
/// </summary>
public sealed class FiniteValidityLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "validity_finite";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.1.2.5";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        if (tbs.NotAfter == DerTime.NoWellDefinedExpiration)
        {
            return "notAfter is 99991231235959Z but the profile requires a finite validity";
        }

        return context.Profile.Validity is { } v && tbs.NotAfter == DerTime.Truncate(tbs.NotBefore + v)
            ? null : $"notAfter {tbs.NotAfter:O} is not notBefore + the profile validity";
    }
}

/// <summary>
/// Matter Core Specification §6.2.2 with RFC 5280 §4.1.2.5 (matter-dac profile): a DAC has no well-defined
/// expiration, notAfter is the GeneralizedTime 99991231235959Z.
/// </summary>
public sealed class MatterNotAfterNoExpirationLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "matter_dac_not_after_99991231235959Z";
    /// <inheritdoc />
    public string Citation => "Matter Core Specification §6.2.2; RFC 5280 §4.1.2.5";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context) =>
        tbs.NotAfter == DerTime.NoWellDefinedExpiration && tbs.ValidityTags.NotAfter == UniversalTagNumber.GeneralizedTime
            ? null : $"notAfter is {tbs.NotAfter:O}, expected GeneralizedTime 99991231235959Z";
}

/// <summary>
/// Matter Core Specification §6.1 and §6.2.2 (matter-dac profile): the certificate signature algorithm is
/// ecdsa-with-SHA256 (1.2.840.10045.4.3.2) with absent parameters; no other algorithm is allowed.
/// </summary>
public sealed class MatterSignatureAlgorithmLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "matter_signature_ecdsa_with_sha256";
    /// <inheritdoc />
    public string Citation => "Matter Core Specification §6.1, §6.2.2";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var alg = new AsnReader(tbs.SignatureAlgorithm, AsnEncodingRules.DER).ReadSequence();
        string oid = alg.ReadObjectIdentifier();
        return oid == Oids.EcdsaWithSha256 && !alg.HasData ? null : $"signature algorithm is {oid}; a Matter DAC is signed with ecdsa-with-SHA256 only";
    }
}

/// <summary>Matter Core Specification §6.1 (matter-dac profile): the subject key is id-ecPublicKey on prime256v1 (P-256).</summary>
public sealed class MatterSubjectKeyP256Lint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "matter_subject_key_p256";
    /// <inheritdoc />
    public string Citation => "Matter Core Specification §6.1; RFC 5480 §2.1.1.1";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var alg = new AsnReader(tbs.SubjectPublicKeyInfo, AsnEncodingRules.DER).ReadSequence().ReadSequence();
        string oid = alg.ReadObjectIdentifier();
        string? curve = alg.HasData && alg.PeekTag().HasSameClassAndValue(Asn1Tag.ObjectIdentifier) ? alg.ReadObjectIdentifier() : null;
        return oid == Oids.EcPublicKey && curve == Oids.Secp256r1 ? null : $"subject key is {oid} {curve}; a Matter DAC key is P-256";
    }
}

/// <summary>Matter Core Specification §6.2.2 (matter-dac profile): keyUsage is critical and is digitalSignature only.</summary>
public sealed class MatterKeyUsageDigitalSignatureOnlyLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "matter_key_usage_digital_signature_only";
    /// <inheritdoc />
    public string Citation => "Matter Core Specification §6.2.2";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var ext = tbs.Find(Oids.KeyUsage);
        if (ext is null || !ext.Critical)
        {
            return "keyUsage is missing or not critical";
        }

        var ku = new X509KeyUsageExtension(new System.Security.Cryptography.AsnEncodedData(Oids.KeyUsage, ext.Value), true).KeyUsages;
        return ku == X509KeyUsageFlags.DigitalSignature ? null : $"keyUsage is {ku}; a Matter DAC has digitalSignature only";
    }
}

/// <summary>Matter Core Specification §6.2.2 (matter-dac profile, as profiled here): a DAC carries no extendedKeyUsage.</summary>
public sealed class MatterNoExtendedKeyUsageLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "matter_no_extended_key_usage";
    /// <inheritdoc />
    public string Citation => "Matter Core Specification §6.2.2";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context) =>
        tbs.Find(Oids.ExtendedKeyUsage) is null ? null : "extendedKeyUsage is present in a Matter DAC";
}

/// <summary>
/// Matter Core Specification §6.5.6.1 (matter-dac profile): the subject carries exactly one vendor id
/// (1.3.6.1.4.1.37244.2.1) and one product id (1.3.6.1.4.1.37244.2.2), each a UTF8String of 4 upper-case hex digits,
/// equal to the profile's.
/// </summary>
public sealed class MatterVendorProductIdLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "matter_subject_vendor_and_product_id";
    /// <inheritdoc />
    public string Citation => "Matter Core Specification §6.5.6.1";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var found = new Dictionary<string, List<(UniversalTagNumber Tag, string Value)>>(StringComparer.Ordinal)
        {
            [Oids.MatterVendorId] = [], [Oids.MatterProductId] = [],
        };

        // Name ::= SEQUENCE OF RelativeDistinguishedName; RDN ::= SET OF AttributeTypeAndValue
        var rdns = new AsnReader(tbs.Subject, AsnEncodingRules.DER).ReadSequence();
        while (rdns.HasData)
        {
            var set = rdns.ReadSetOf();
            while (set.HasData)
            {
                var atv = set.ReadSequence();
                string type = atv.ReadObjectIdentifier();
                if (found.TryGetValue(type, out var list))
                {
                    var tag = (UniversalTagNumber)atv.PeekTag().TagValue;
                    list.Add((tag, atv.ReadCharacterString(tag)));
                }
            }
        }

        foreach (var (oid, expected, what) in new[]
        {
            (Oids.MatterVendorId, context.Profile.MatterVendorId, "vendor id"),
            (Oids.MatterProductId, context.Profile.MatterProductId, "product id"),
        })
        {
            var values = found[oid];
            if (values.Count != 1)
            {
                return $"subject has {values.Count} Matter {what} ({oid}) attributes, expected 1";
            }

            var (tag, value) = values[0];
            if (tag != UniversalTagNumber.UTF8String || value.Length != 4 || !value.All(c => char.IsAsciiDigit(c) || c is >= 'A' and <= 'F'))
            {
                return $"Matter {what} '{value}' is not a UTF8String of 4 upper-case hex digits";
            }

            if (expected is not { } e || ushort.Parse(value, NumberStyles.HexNumber, CultureInfo.InvariantCulture) != e)
            {
                return $"Matter {what} {value} differs from the profile's {expected:X4}";
            }
        }

        return null;
    }
}
