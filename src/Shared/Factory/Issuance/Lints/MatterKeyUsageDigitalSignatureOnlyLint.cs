using System.Security.Cryptography.X509Certificates;
using OfflinePki.Asn1;

namespace OfflinePki.Issuance.Lints;

/// <summary>Matter Core Specification §6.2.2 (matter-dac profile): keyUsage is critical and is digitalSignature only.</summary>
public sealed class MatterKeyUsageDigitalSignatureOnlyLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "matter_key_usage_digital_signature_only";
    /// <inheritdoc />
    public string Citation => "Matter Core Specification §6.2.2";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var ext = tbs.Find(Oids.KeyUsage);
        if (ext is null || !ext.Critical)
        {
            return "keyUsage is missing or not critical";
        }

        var ku = new X509KeyUsageExtension(new System.Security.Cryptography.AsnEncodedData(Oids.KeyUsage, ext.Value), true).KeyUsages;
        return ku == X509KeyUsageFlags.DigitalSignature ? null : $"keyUsage is {ku}; a Matter DAC has digitalSignature only";
    }
}
