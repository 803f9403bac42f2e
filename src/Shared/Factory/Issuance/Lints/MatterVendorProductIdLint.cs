using System.Formats.Asn1;
using System.Globalization;
using OfflinePki.Asn1;

namespace OfflinePki.Issuance.Lints;

/// <summary>
/// Matter Core Specification §6.5.6.1 (matter-dac profile): the subject carries exactly one vendor id
/// (1.3.6.1.4.1.37244.2.1) and one product id (1.3.6.1.4.1.37244.2.2), each a UTF8String of 4 upper-case hex digits,
/// equal to the profile's.
/// </summary>
public sealed class MatterVendorProductIdLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "matter_subject_vendor_and_product_id";
    /// <inheritdoc />
    public string Citation => "Matter Core Specification §6.5.6.1";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var found = new Dictionary<string, List<(UniversalTagNumber Tag, string Value)>>(StringComparer.Ordinal)
        {
            [Oids.MatterVendorId] = [], [Oids.MatterProductId] = [],
        };

        // Name ::= SEQUENCE OF RelativeDistinguishedName; RDN ::= SET OF AttributeTypeAndValue
        var rdns = new AsnReader(tbs.Subject, AsnEncodingRules.DER).ReadSequence();
        while (rdns.HasData)
        {
            var set = rdns.ReadSetOf();
            while (set.HasData)
            {
                var atv = set.ReadSequence();
                string type = atv.ReadObjectIdentifier();
                if (found.TryGetValue(type, out var list))
                {
                    var tag = (UniversalTagNumber)atv.PeekTag().TagValue;
                    list.Add((tag, atv.ReadCharacterString(tag)));
                }
            }
        }

        foreach (var (oid, expected, what) in new[]
        {
            (Oids.MatterVendorId, context.Profile.MatterVendorId, "vendor id"),
            (Oids.MatterProductId, context.Profile.MatterProductId, "product id"),
        })
        {
            var values = found[oid];
            if (values.Count != 1)
            {
                return $"subject has {values.Count} Matter {what} ({oid}) attributes, expected 1";
            }

            var (tag, value) = values[0];
            if (tag != UniversalTagNumber.UTF8String || value.Length != 4 || !value.All(c => char.IsAsciiDigit(c) || c is >= 'A' and <= 'F'))
            {
                return $"Matter {what} '{value}' is not a UTF8String of 4 upper-case hex digits";
            }

            if (expected is not { } e || ushort.Parse(value, NumberStyles.HexNumber, CultureInfo.InvariantCulture) != e)
            {
                return $"Matter {what} {value} differs from the profile's {expected:X4}";
            }
        }

        return null;
    }
}
