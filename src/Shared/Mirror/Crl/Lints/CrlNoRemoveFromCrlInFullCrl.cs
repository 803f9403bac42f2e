using System.Formats.Asn1;
using OfflinePki.Asn1;
using OfflinePki.Revocation;

namespace OfflinePki.Crl;

/// <summary>RFC 5280 §5.3.1: removeFromCRL (8) is only for delta CRLs; a full CRL never carries it.</summary>
public sealed class CrlNoRemoveFromCrlInFullCrl : ICrlLint
{
    /// <inheritdoc />
    public string Name => "crl_no_remove_from_crl_in_full_crl";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.3.1";

    /// <inheritdoc />
    public IEnumerable<string> Check(TbsCertListView tbs, bool fullCrl)
    {
        ArgumentNullException.ThrowIfNull(tbs);
        if (!fullCrl)
        {
            yield break;
        }

        foreach (var entry in tbs.Entries())
        {
            foreach (var ext in entry.Extensions)
            {
                if (ext.Oid != Oids.CrlReasonCode)
                {
                    continue;
                }

                int? code;
                try
                {
                    var reader = new AsnReader(ext.Value, AsnEncodingRules.DER);
                    code = reader.ReadEnumeratedValue<CrlReason>() is var v ? (int)v : null;
                }
                catch (AsnContentException)
                {
                    code = null;
                }

                if (code is null)
                {
                    yield return $"serial {Convert.ToHexString(entry.Serial.Span)} has an undecodable reasonCode";
                }
                else if (code == (int)CrlReason.RemoveFromCrl)
                {
                    yield return $"serial {Convert.ToHexString(entry.Serial.Span)} has reason removeFromCRL in a full CRL";
                }
            }
        }
    }
}
