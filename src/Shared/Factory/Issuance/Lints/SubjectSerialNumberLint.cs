using System.Security.Cryptography.X509Certificates;
using System.Text;
using OfflinePki.Asn1;

namespace OfflinePki.Issuance.Lints;

/// <summary>
/// IEEE 802.1AR §8.6: the subject carries the device serial in serialNumber (2.5.4.5), exactly once, as a
/// PrintableString, equal to the device ID the certificate was prepared for and to the SAN hwSerialNum.
/// </summary>
public sealed class SubjectSerialNumberLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "subject_serial_number_is_device_serial";
    /// <inheritdoc />
    public string Citation => "IEEE 802.1AR §8.6; RFC 4108 §5";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var values = new X500DistinguishedName(tbs.Subject).EnumerateRelativeDistinguishedNames()
            .Where(r => !r.HasMultipleElements && r.GetSingleElementType().Value == Oids.SerialNumberAttribute)
            .Select(r => r.GetSingleElementValue())
            .ToList();
        if (values.Count != 1)
        {
            return $"subject has {values.Count} serialNumber attributes, expected 1";
        }

        if (values[0] != context.Prepared.DeviceId)
        {
            return "subject serialNumber differs from the device ID";
        }

        if (!context.Profile.IncludeHardwareModuleName)
        {
            return null;
        }

        var hw = HardwareModuleNameLint.Read(tbs);
        if (hw is null || !hw.Value.SerialNum.AsSpan().SequenceEqual(Encoding.ASCII.GetBytes(values[0]!)))
        {
            return "subject serialNumber differs from the SAN hardwareModuleName hwSerialNum";
        }

        return null;
    }
}
