using System.Security.Cryptography.X509Certificates;
using OfflinePki.Asn1;

namespace OfflinePki.Issuance.Lints;

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
