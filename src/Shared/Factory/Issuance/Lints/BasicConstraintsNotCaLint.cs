using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using OfflinePki.Asn1;

namespace OfflinePki.Issuance.Lints;

/// <summary>RFC 5280 §4.2.1.9: an end-entity certificate is not a CA; basicConstraints is present, critical, cA FALSE.</summary>
public sealed class BasicConstraintsNotCaLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "basic_constraints_end_entity";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.2.1.9";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var ext = tbs.Find(Oids.BasicConstraints);
        if (ext is null || !ext.Critical)
        {
            return "basicConstraints is missing or not critical";
        }

        return new X509BasicConstraintsExtension(new AsnEncodedData(Oids.BasicConstraints, ext.Value), true).CertificateAuthority
            ? "basicConstraints says cA TRUE for a device certificate" : null;
    }
}
