using System.Formats.Asn1;
using OfflinePki.Asn1;

namespace OfflinePki.Crl;

/// <summary>
/// RFC 5280 §5.2.5: issuingDistributionPoint is critical; at most one of onlyContainsUserCerts, onlyContainsCACerts and
/// onlyContainsAttributeCerts is TRUE; and a partition names its distributionPoint so relying parties can match it with
/// the certificate's cRLDistributionPoints.
/// </summary>
public sealed class CrlIssuingDistributionPointConsistent : ICrlLint
{
    /// <inheritdoc />
    public string Name => "crl_issuing_distribution_point_consistent";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.2.5";

    /// <inheritdoc />
    public IEnumerable<string> Check(TbsCertListView tbs, bool fullCrl)
    {
        ArgumentNullException.ThrowIfNull(tbs);
        var ext = tbs.FindExtension(Oids.IssuingDistributionPoint);
        if (ext is null)
        {
            yield break;
        }

        if (!ext.Critical)
        {
            yield return "issuingDistributionPoint is not marked critical";
        }

        string? problem = null;
        try
        {
            var seq = new AsnReader(ext.Value, AsnEncodingRules.DER).ReadSequence();
            bool hasPoint = false;
            int onlyFlags = 0;
            while (seq.HasData)
            {
                var tag = seq.PeekTag();
                if (tag.TagClass == TagClass.ContextSpecific && tag.TagValue == 0)
                {
                    hasPoint = true;
                    seq.ReadEncodedValue();
                }
                else if (tag.TagClass == TagClass.ContextSpecific && tag.TagValue is 1 or 2 or 5)
                {
                    if (seq.ReadBoolean(new Asn1Tag(TagClass.ContextSpecific, tag.TagValue)))
                    {
                        onlyFlags++;
                    }
                    else
                    {
                        problem = $"[{tag.TagValue}] is encoded as FALSE; DER omits a DEFAULT FALSE value";
                    }
                }
                else
                {
                    seq.ReadEncodedValue();
                }
            }

            if (!hasPoint)
            {
                problem ??= "issuingDistributionPoint names no distributionPoint";
            }

            if (onlyFlags > 1)
            {
                problem ??= "more than one of onlyContainsUserCerts, onlyContainsCACerts, onlyContainsAttributeCerts is TRUE";
            }
        }
        catch (AsnContentException ex)
        {
            problem = "issuingDistributionPoint is not valid DER: " + ex.Message;
        }

        if (problem is not null)
        {
            yield return problem;
        }
    }
}
