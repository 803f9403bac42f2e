using System.Formats.Asn1;
using OfflinePki.Asn1;

namespace OfflinePki.Issuance.Lints;

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
