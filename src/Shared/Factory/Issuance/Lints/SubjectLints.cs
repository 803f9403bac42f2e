using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using OfflinePki.Asn1;
using OfflinePki.Enrollment;
using OfflinePki.Factory;

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

/// <summary>
/// RFC 4108 §5 / IEEE 802.1AR §8.10.4: subjectAltName carries an otherName hardwareModuleName with the
/// profile's hwType; the extension is non-critical because the subject is not empty (RFC 5280 §4.2.1.6).
/// </summary>
public sealed class HardwareModuleNameLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "san_hardware_module_name";
    /// <inheritdoc />
    public string Citation => "RFC 4108 §5; IEEE 802.1AR §8.10.4; RFC 5280 §4.2.1.6";

    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var ext = tbs.Find(Oids.SubjectAltName);
        if (!context.Profile.IncludeHardwareModuleName)
        {
            // Profiles without it (tls-client by choice, matter-dac always) must not carry one either.
            return Read(tbs) is null ? null : "subjectAltName carries a hardwareModuleName the profile does not ask for";
        }

        if (ext is null)
        {
            return "subjectAltName is missing";
        }

        if (ext.Critical)
        {
            return "subjectAltName is critical although the subject is not empty";
        }

        var hw = Read(tbs);
        if (hw is null)
        {
            return "subjectAltName has no otherName hardwareModuleName (1.3.6.1.5.5.7.8.4)";
        }

        if (hw.Value.Type != context.Profile.HardwareModuleType)
        {
            return $"hwType is {hw.Value.Type}, profile says {context.Profile.HardwareModuleType}";
        }

        return hw.Value.SerialNum.Length == 0 ? "hwSerialNum is empty" : null;
    }

    /// <summary>Reads the first hardwareModuleName otherName of the SAN, or null.</summary>
    /// <exception cref="AsnContentException">The SAN does not decode.</exception>
    internal static (string Type, byte[] SerialNum)? Read(TbsCertificateView tbs)
    {
        var ext = tbs.Find(Oids.SubjectAltName);
        if (ext is null)
        {
            return null;
        }

        var names = new AsnReader(ext.Value, AsnEncodingRules.DER).ReadSequence();
        var otherNameTag = new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true);
        while (names.HasData)
        {
            if (!names.PeekTag().HasSameClassAndValue(otherNameTag))
            {
                names.ReadEncodedValue();
                continue;
            }

            var other = names.ReadSequence(otherNameTag);
            if (other.ReadObjectIdentifier() != Oids.HardwareModuleName)
            {
                continue;
            }

            var hw = other.ReadSequence(otherNameTag).ReadSequence();
            return (hw.ReadObjectIdentifier(), hw.ReadOctetString());
        }

        return null;
    }
}

/// <summary>
/// IEEE 802.1AR §8.7 (as profiled here): the device key is P-256, P-384 or RSA of 2048 to 16384 bits, and one of
/// the profile's key types (<see cref="CertificateProfile.AllowedKeyTypes"/>).
/// </summary>
public sealed class AllowedSubjectKeyLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "subject_key_allowed";
    /// <inheritdoc />
    public string Citation => "IEEE 802.1AR §8.7; RFC 5480 §2.1.1";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        try
        {
            // Structure only (algorithm, curve, modulus size): the key itself was validated by the CSR signature check.
            string key = CsrIntake.ClassifyKey(tbs.SubjectPublicKeyInfo, importKey: false);
            return context.Profile.AllowsKey(key) ? null
                : $"{key} key is not allowed by profile {context.Profile.Name} ({string.Join(", ", context.Profile.AllowedKeyTypes)})";
        }
        catch (EnrollmentRejectedException ex)
        {
            return ex.Message;
        }
    }
}
