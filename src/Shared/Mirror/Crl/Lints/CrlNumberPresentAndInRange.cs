using System.Formats.Asn1;
using System.Numerics;
using OfflinePki.Asn1;

namespace OfflinePki.Crl;

/// <summary>RFC 5280 §5.2.3: the cRLNumber extension MUST be present, non-critical, a non-negative INTEGER of at most 20 octets.</summary>
public sealed class CrlNumberPresentAndInRange : ICrlLint
{
    /// <inheritdoc />
    public string Name => "crl_number_present_and_in_range";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.2.3";

    /// <inheritdoc />
    public IEnumerable<string> Check(TbsCertListView tbs, bool fullCrl)
    {
        ArgumentNullException.ThrowIfNull(tbs);
        var ext = tbs.FindExtension(Oids.CrlNumber);
        if (ext is null)
        {
            yield return "cRLNumber is absent";
            yield break;
        }

        if (ext.Critical)
        {
            yield return "cRLNumber is marked critical";
        }

        string? problem;
        try
        {
            var reader = new AsnReader(ext.Value, AsnEncodingRules.DER);
            var bytes = reader.ReadIntegerBytes();
            reader.ThrowIfNotEmpty();
            var value = new BigInteger(bytes.Span, isUnsigned: false, isBigEndian: true);
            problem = value.Sign < 0 ? $"cRLNumber {value} is negative"
                : bytes.Length > 20 ? $"cRLNumber is {bytes.Length} octets, more than 20"
                : null;
        }
        catch (AsnContentException ex)
        {
            problem = "cRLNumber is not a DER INTEGER: " + ex.Message;
        }

        if (problem is not null)
        {
            yield return problem;
        }
    }
}
