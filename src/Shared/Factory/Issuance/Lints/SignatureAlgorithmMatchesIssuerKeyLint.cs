namespace OfflinePki.Issuance.Lints;

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
