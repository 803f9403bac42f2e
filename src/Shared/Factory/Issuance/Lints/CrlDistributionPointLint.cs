using System.Formats.Asn1;
using OfflinePki.Asn1;

namespace OfflinePki.Issuance.Lints;

/// <summary>RFC 5280 §4.2.1.13: cRLDistributionPoints present, non-critical, naming the profile's URL.</summary>
public sealed class CrlDistributionPointLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "crl_distribution_point_present";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.2.1.13";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var ext = tbs.Find(Oids.CrlDistributionPoints);
        if (ext is null || ext.Critical)
        {
            return "cRLDistributionPoints is missing or critical";
        }

        // CRLDistributionPoints ::= SEQUENCE OF DistributionPoint; DistributionPoint ::= SEQUENCE { distributionPoint [0] ... }
        // DistributionPointName ::= CHOICE { fullName [0] GeneralNames, ... }; uniformResourceIdentifier [6] IA5String
        var ctx0 = new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true);
        var points = new AsnReader(ext.Value, AsnEncodingRules.DER).ReadSequence();
        while (points.HasData)
        {
            var point = points.ReadSequence();
            if (!point.HasData || !point.PeekTag().HasSameClassAndValue(ctx0))
            {
                continue;
            }

            var dpn = point.ReadSequence(ctx0);
            if (!dpn.HasData || !dpn.PeekTag().HasSameClassAndValue(ctx0))
            {
                continue;
            }

            var names = dpn.ReadSequence(ctx0);
            var uriTag = new Asn1Tag(TagClass.ContextSpecific, 6);
            while (names.HasData)
            {
                if (names.PeekTag().HasSameClassAndValue(uriTag)
                    && names.ReadCharacterString(UniversalTagNumber.IA5String, uriTag) == context.Profile.CrlDistributionPointUrl.AbsoluteUri)
                {
                    return null;
                }
                else if (names.HasData)
                {
                    names.ReadEncodedValue();
                }
            }
        }

        return "cRLDistributionPoints does not name the profile's URL";
    }
}
