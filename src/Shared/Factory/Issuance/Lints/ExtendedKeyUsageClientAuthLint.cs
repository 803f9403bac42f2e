using System.Security.Cryptography.X509Certificates;
using OfflinePki.Asn1;

namespace OfflinePki.Issuance.Lints;

/// <summary>RFC 5280 §4.2.1.12 (tls-client profile): extendedKeyUsage is present, non-critical, and names id-kp-clientAuth.</summary>
public sealed class ExtendedKeyUsageClientAuthLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "eku_client_auth";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.2.1.12";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var ext = tbs.Find(Oids.ExtendedKeyUsage);
        if (ext is null)
        {
            return "extendedKeyUsage is missing (a TLS client certificate needs id-kp-clientAuth)";
        }

        if (ext.Critical)
        {
            return "extendedKeyUsage is critical; the profile writes it non-critical";
        }

        var ekus = new X509EnhancedKeyUsageExtension(new System.Security.Cryptography.AsnEncodedData(Oids.ExtendedKeyUsage, ext.Value), false).EnhancedKeyUsages;
        return ekus.Cast<System.Security.Cryptography.Oid>().Any(o => o.Value == Oids.ClientAuthEku) ? null : "extendedKeyUsage lacks id-kp-clientAuth";
    }
}
