using System.Formats.Asn1;
using OfflinePki.Asn1;

namespace OfflinePki.Issuance.Lints;

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
