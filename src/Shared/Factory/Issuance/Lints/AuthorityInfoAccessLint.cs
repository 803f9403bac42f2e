using System.Security.Cryptography.X509Certificates;
using OfflinePki.Asn1;

namespace OfflinePki.Issuance.Lints;

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
