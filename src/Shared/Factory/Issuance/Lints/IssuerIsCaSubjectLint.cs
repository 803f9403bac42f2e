namespace OfflinePki.Issuance.Lints;

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
