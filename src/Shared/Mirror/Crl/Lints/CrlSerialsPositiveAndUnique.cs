using OfflinePki.Asn1;

namespace OfflinePki.Crl;

/// <summary>
/// RFC 5280 §5.1.2.6 with §4.1.2.2: each userCertificate is a positive INTEGER of at most 20 octets, and a serial
/// appears once. Entries are written in ascending octet order, so a duplicate or an out-of-order entry is caught
/// by comparing neighbours (linear time, constant memory).
/// </summary>
public sealed class CrlSerialsPositiveAndUnique : ICrlLint
{
    /// <inheritdoc />
    public string Name => "crl_serials_positive_and_unique";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.1.2.6, §4.1.2.2";

    /// <inheritdoc />
    public IEnumerable<string> Check(TbsCertListView tbs, bool fullCrl)
    {
        ArgumentNullException.ThrowIfNull(tbs);
        ReadOnlyMemory<byte> previous = default;
        bool first = true;
        if (tbs.HasRevokedCertificates && !tbs.Entries().Any())
        {
            yield return "revokedCertificates is present but empty (it MUST be absent when there are no entries)";
        }

        foreach (var entry in tbs.Entries())
        {
            foreach (var message in CheckOne(first ? null : previous, entry.Serial))
            {
                yield return message;
            }

            previous = entry.Serial;
            first = false;
        }
    }

    private static List<string> CheckOne(ReadOnlyMemory<byte>? previous, ReadOnlyMemory<byte> serial)
    {
        var list = new List<string>(0);
        var s = serial.Span;
        if (s.IsEmpty || (s[0] & 0x80) != 0 || s.IndexOfAnyExcept((byte)0) < 0)
        {
            list.Add($"serial {Convert.ToHexString(s)} is not positive");
        }
        else if (s.Length > SerialNumber.MaxOctets)
        {
            list.Add($"serial {Convert.ToHexString(s)} is longer than {SerialNumber.MaxOctets} octets");
        }

        if (previous is { } p)
        {
            int cmp = p.Span.SequenceCompareTo(s);
            if (cmp == 0)
            {
                list.Add($"serial {Convert.ToHexString(s)} appears more than once");
            }
            else if (cmp > 0)
            {
                list.Add($"serial {Convert.ToHexString(s)} is out of order; entries must be sorted so duplicates can be detected");
            }
        }

        return list;
    }
}
