using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using OfflinePki.Asn1;

namespace OfflinePki.Issuance.Lints;

/// <summary>RFC 5280 §4.2.1.9: an end-entity certificate is not a CA; basicConstraints is present, critical, cA FALSE.</summary>
public sealed class BasicConstraintsNotCaLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "basic_constraints_end_entity";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.2.1.9";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var ext = tbs.Find(Oids.BasicConstraints);
        if (ext is null || !ext.Critical)
        {
            return "basicConstraints is missing or not critical";
        }

        return new X509BasicConstraintsExtension(new AsnEncodedData(Oids.BasicConstraints, ext.Value), true).CertificateAuthority
            ? "basicConstraints says cA TRUE for a device certificate" : null;
    }
}

/// <summary>
/// RFC 5280 §4.2.1.3 (SHOULD be critical) and IEEE 802.1AR §8.10.3: keyUsage is present, critical, and is
/// digitalSignature (optionally keyAgreement/keyEncipherment) but never keyCertSign or cRLSign.
/// </summary>
public sealed class KeyUsageCriticalDigitalSignatureLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "key_usage_critical_digital_signature";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.2.1.3; IEEE 802.1AR §8.10.3";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var ext = tbs.Find(Oids.KeyUsage);
        if (ext is null)
        {
            return "keyUsage is missing";
        }

        if (!ext.Critical)
        {
            return "keyUsage is not critical";
        }

        var ku = new X509KeyUsageExtension(new AsnEncodedData(Oids.KeyUsage, ext.Value), true).KeyUsages;
        if (!ku.HasFlag(X509KeyUsageFlags.DigitalSignature))
        {
            return "keyUsage lacks digitalSignature";
        }

        return (ku & (X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign)) != 0 ? "keyUsage grants keyCertSign or cRLSign" : null;
    }
}

/// <summary>RFC 5280 §4.2.1.1 / IEEE 802.1AR §8.10.1: authorityKeyIdentifier present, non-critical, keyIdentifier = the CA's SKI.</summary>
public sealed class AuthorityKeyIdentifierLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "authority_key_identifier_matches_issuer";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.2.1.1; IEEE 802.1AR §8.10.1";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var ext = tbs.Find(Oids.AuthorityKeyIdentifier);
        if (ext is null || ext.Critical)
        {
            return "authorityKeyIdentifier is missing or critical";
        }

        var aki = new X509AuthorityKeyIdentifierExtension(ext.Value, false).KeyIdentifier;
        return aki is { } k && k.Span.SequenceEqual(context.Issuer.SubjectKeyIdentifier) ? null : "authorityKeyIdentifier.keyIdentifier is not the issuing CA's key identifier";
    }
}

/// <summary>RFC 5280 §4.2.1.2 / IEEE 802.1AR §8.10.2: subjectKeyIdentifier present, non-critical, method 1 over the subject key.</summary>
public sealed class SubjectKeyIdentifierLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "subject_key_identifier_method_1";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.2.1.2; IEEE 802.1AR §8.10.2";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var ext = tbs.Find(Oids.SubjectKeyIdentifier);
        if (ext is null || ext.Critical)
        {
            return "subjectKeyIdentifier is missing or critical";
        }

        var ski = new AsnReader(ext.Value, AsnEncodingRules.DER).ReadOctetString();
        return ski.AsSpan().SequenceEqual(IssuingAuthority.ComputeKeyIdentifier(tbs.SubjectPublicKeyInfo))
            ? null : "subjectKeyIdentifier is not SHA-1 of the subjectPublicKey";
    }
}

/// <summary>RFC 5280 §4.2.1.13: cRLDistributionPoints present, non-critical, naming the profile's URL.</summary>
public sealed class CrlDistributionPointLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "crl_distribution_point_present";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.2.1.13";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var ext = tbs.Find(Oids.CrlDistributionPoints);
        if (ext is null || ext.Critical)
        {
            return "cRLDistributionPoints is missing or critical";
        }

        // CRLDistributionPoints ::= SEQUENCE OF DistributionPoint; DistributionPoint ::= SEQUENCE { distributionPoint [0] ... }
        // DistributionPointName ::= CHOICE { fullName [0] GeneralNames, ... }; uniformResourceIdentifier [6] IA5String
        var ctx0 = new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true);
        var points = new AsnReader(ext.Value, AsnEncodingRules.DER).ReadSequence();
        while (points.HasData)
        {
            var point = points.ReadSequence();
            if (!point.HasData || !point.PeekTag().HasSameClassAndValue(ctx0))
            {
                continue;
            }

            var dpn = point.ReadSequence(ctx0);
            if (!dpn.HasData || !dpn.PeekTag().HasSameClassAndValue(ctx0))
            {
                continue;
            }

            var names = dpn.ReadSequence(ctx0);
            var uriTag = new Asn1Tag(TagClass.ContextSpecific, 6);
            while (names.HasData)
            {
                if (names.PeekTag().HasSameClassAndValue(uriTag)
                    && names.ReadCharacterString(UniversalTagNumber.IA5String, uriTag) == context.Profile.CrlDistributionPointUrl.AbsoluteUri)
                {
                    return null;
                }
                else if (names.HasData)
                {
                    names.ReadEncodedValue();
                }
            }
        }

        return "cRLDistributionPoints does not name the profile's URL";
    }
}

/// <summary>RFC 5280 §4.2.2.1: authorityInfoAccess present, non-critical, with id-ad-ocsp and id-ad-caIssuers URLs.</summary>
public sealed class AuthorityInfoAccessLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "authority_info_access_ocsp_and_ca_issuers";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.2.2.1";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var ext = tbs.Find(Oids.AuthorityInfoAccess);
        if (ext is null || ext.Critical)
        {
            return "authorityInfoAccess is missing or critical (RFC 5280 §4.2.2.1: MUST be non-critical)";
        }

        var aia = new X509AuthorityInformationAccessExtension(ext.Value, false);
        bool ocsp = aia.EnumerateUris(Oids.AdOcsp).Contains(context.Profile.OcspUrl.AbsoluteUri);
        bool ca = aia.EnumerateUris(Oids.AdCaIssuers).Contains(context.Profile.CaIssuersUrl.AbsoluteUri);
        return ocsp && ca ? null : "authorityInfoAccess lacks the profile's OCSP or caIssuers URL";
    }
}

/// <summary>RFC 5280 §4.2: a certificate MUST NOT include more than one instance of a particular extension.</summary>
public sealed class NoDuplicateExtensionsLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "no_duplicate_extensions";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.2";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var dup = tbs.Extensions.GroupBy(e => e.Oid).FirstOrDefault(g => g.Count() > 1);
        return dup is null ? null : $"extension {dup.Key} appears {dup.Count()} times";
    }
}
