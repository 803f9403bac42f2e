using System.Formats.Asn1;
using OfflinePki.Asn1;

namespace OfflinePki.Issuance.Lints;

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
