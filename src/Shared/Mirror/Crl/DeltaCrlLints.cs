using System.Formats.Asn1;
using System.Numerics;
using OfflinePki.Asn1;
using OfflinePki.Revocation;

namespace OfflinePki.Crl;

/// <summary>The standard delta-CRL lints (run by <see cref="CrlBuilder"/> for every delta, after <see cref="CrlLints.All"/>).</summary>
public static class DeltaCrlLints
{
    /// <summary>All lints below, in the order they run.</summary>
    public static IReadOnlyList<IDeltaCrlLint> All { get; } =
    [
        new CrlDeltaBaseIsIssuedCompleteCrl(),
        new CrlDeltaScopeMatchesBase(),
        new CrlDeltaNoEntryOlderThanBase(),
        new CrlRemoveFromCrlOnlyReleasesAHold(),
    ];

    /// <summary>Runs <paramref name="lints"/> and returns the failures, each "name (citation): message".</summary>
    /// <param name="lints">The lints.</param>
    /// <param name="delta">The delta TBSCertList.</param>
    /// <param name="baseCrl">The base's TBSCertList, or null when none is known.</param>
    /// <exception cref="ArgumentNullException"><paramref name="lints"/> or <paramref name="delta"/> is null.</exception>
    public static List<string> Collect(IEnumerable<IDeltaCrlLint> lints, TbsCertListView delta, TbsCertListView? baseCrl)
    {
        ArgumentNullException.ThrowIfNull(lints);
        ArgumentNullException.ThrowIfNull(delta);
        var failures = new List<string>();
        foreach (var lint in lints)
        {
            foreach (var message in lint.Check(delta, baseCrl))
            {
                failures.Add($"{lint.Name} ({lint.Citation}): {message}");
            }
        }

        return failures;
    }

    /// <summary>Runs <paramref name="lints"/> and throws when any fails.</summary>
    /// <param name="lints">The lints.</param>
    /// <param name="delta">The delta TBSCertList.</param>
    /// <param name="baseCrl">The base's TBSCertList, or null when none is known.</param>
    /// <exception cref="ArgumentNullException"><paramref name="lints"/> or <paramref name="delta"/> is null.</exception>
    /// <exception cref="CrlLintException">At least one lint failed.</exception>
    public static void Enforce(IEnumerable<IDeltaCrlLint> lints, TbsCertListView delta, TbsCertListView? baseCrl)
    {
        var failures = Collect(lints, delta, baseCrl);
        if (failures.Count > 0)
        {
            throw new CrlLintException(failures);
        }
    }

    /// <summary>Reads an INTEGER extension value (cRLNumber, BaseCRLNumber), or null when absent or not DER.</summary>
    internal static BigInteger? ReadInteger(ExtensionView? ext)
    {
        if (ext is null)
        {
            return null;
        }

        try
        {
            var reader = new AsnReader(ext.Value, AsnEncodingRules.DER);
            var v = reader.ReadInteger();
            reader.ThrowIfNotEmpty();
            return v;
        }
        catch (AsnContentException)
        {
            return null;
        }
    }

    /// <summary>The reasonCode of an entry (RFC 5280 §5.3.1), <see cref="CrlReason.Unspecified"/> when absent, null when undecodable.</summary>
    internal static CrlReason? ReasonOf(CrlEntryView entry)
    {
        foreach (var ext in entry.Extensions)
        {
            if (ext.Oid != Oids.CrlReasonCode)
            {
                continue;
            }

            try
            {
                var reader = new AsnReader(ext.Value, AsnEncodingRules.DER);
                return reader.ReadEnumeratedValue<CrlReason>();
            }
            catch (AsnContentException)
            {
                return null;
            }
        }

        return CrlReason.Unspecified;
    }

    /// <summary>
    /// Walks the delta's entries beside the base's (both sorted by serial octets, as <see cref="CrlSerialsPositiveAndUnique"/>
    /// demands) and yields each delta entry with the base's entry for the same serial, or null. Linear in both lists; it
    /// stops reading the base once the delta is exhausted.
    /// </summary>
    internal static IEnumerable<(CrlEntryView Delta, CrlEntryView? Base)> Pair(TbsCertListView delta, TbsCertListView baseCrl)
    {
        // The base's entries are skipped over undecoded (serial only); only a base entry the delta also lists is decoded.
        using var baseEntries = baseCrl.RawEntries().GetEnumerator();
        bool more = baseEntries.MoveNext();
        foreach (var d in delta.Entries())
        {
            while (more && baseEntries.Current.Serial.Span.SequenceCompareTo(d.Serial.Span) < 0)
            {
                more = baseEntries.MoveNext();
            }

            yield return (d, more && baseEntries.Current.Serial.Span.SequenceEqual(d.Serial.Span) ? TbsCertListView.ParseEntry(baseEntries.Current.Entry) : null);
        }
    }
}
