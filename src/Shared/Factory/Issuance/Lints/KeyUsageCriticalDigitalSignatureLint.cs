using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using OfflinePki.Asn1;

namespace OfflinePki.Issuance.Lints;

/// <summary>
/// RFC 5280 §4.2.1.3 (SHOULD be critical) and IEEE 802.1AR §8.10.3: keyUsage is present, critical, and is
/// digitalSignature (optionally keyAgreement/keyEncipherment) but never keyCertSign or cRLSign.
/// </summary>
public sealed class KeyUsageCriticalDigitalSignatureLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "key_usage_critical_digital_signature";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.2.1.3; IEEE 802.1AR §8.10.3";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var ext = tbs.Find(Oids.KeyUsage);
        if (ext is null)
        {
            return "keyUsage is missing";
        }

        if (!ext.Critical)
        {
            return "keyUsage is not critical";
        }

        var ku = new X509KeyUsageExtension(new AsnEncodedData(Oids.KeyUsage, ext.Value), true).KeyUsages;
        if (!ku.HasFlag(X509KeyUsageFlags.DigitalSignature))
        {
            return "keyUsage lacks digitalSignature";
        }

        return (ku & (X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign)) != 0 ? "keyUsage grants keyCertSign or cRLSign" : null;
    }
}
