using System.Formats.Asn1;
using System.Numerics;
using OfflinePki.Asn1;

namespace OfflinePki.Crl;

/// <summary>
/// RFC 5280 §5.2.4: a delta CRL carries the critical deltaCRLIndicator, whose BaseCRLNumber is less than the delta's own
/// cRLNumber (both from one sequence, §5.2.3); a full CRL never carries it.
/// </summary>
public sealed class CrlDeltaIndicatorCriticalWithOlderBase : ICrlLint
{
    /// <inheritdoc />
    public string Name => "crl_delta_indicator_critical_with_older_base";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.2.4";

    /// <inheritdoc />
    public IEnumerable<string> Check(TbsCertListView tbs, bool fullCrl)
    {
        ArgumentNullException.ThrowIfNull(tbs);
        var ext = tbs.FindExtension(Oids.DeltaCrlIndicator);
        if (fullCrl)
        {
            if (ext is not null)
            {
                yield return "a full CRL carries deltaCRLIndicator";
            }

            yield break;
        }

        if (ext is null)
        {
            yield return "a delta CRL lacks deltaCRLIndicator";
            yield break;
        }

        if (!ext.Critical)
        {
            yield return "deltaCRLIndicator is not marked critical";
        }

        BigInteger? baseNumber = ReadInteger(ext.Value);
        BigInteger? number = tbs.FindExtension(Oids.CrlNumber) is { } n ? ReadInteger(n.Value) : null;
        if (baseNumber is null || baseNumber.Value.Sign < 0)
        {
            yield return "BaseCRLNumber is not a non-negative DER INTEGER";
        }
        else if (number is { } own && baseNumber.Value >= own)
        {
            yield return $"BaseCRLNumber {baseNumber} is not less than the delta's cRLNumber {own}";
        }
    }

    private static BigInteger? ReadInteger(ReadOnlyMemory<byte> value)
    {
        try
        {
            var reader = new AsnReader(value, AsnEncodingRules.DER);
            var v = reader.ReadInteger();
            reader.ThrowIfNotEmpty();
            return v;
        }
        catch (AsnContentException)
        {
            return null;
        }
    }
}
