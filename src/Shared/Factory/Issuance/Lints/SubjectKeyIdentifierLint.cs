using System.Formats.Asn1;
using OfflinePki.Asn1;

namespace OfflinePki.Issuance.Lints;

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
