using OfflinePki.Asn1;

namespace OfflinePki.Issuance.Lints;

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
