namespace OfflinePki.Issuance.Lints;

/// <summary>RFC 5280 §4.1.2.5: the validity period runs from notBefore to notAfter; notBefore must precede notAfter.</summary>
public sealed class ValidityOrderLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "validity_not_before_precedes_not_after";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.1.2.5";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context) =>
        tbs.NotBefore < tbs.NotAfter ? null : $"notBefore {tbs.NotBefore:O} is not before notAfter {tbs.NotAfter:O}";
}
