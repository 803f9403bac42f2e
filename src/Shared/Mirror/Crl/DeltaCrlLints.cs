using System.Formats.Asn1;
using System.Numerics;
using OfflinePki.Asn1;
using OfflinePki.Revocation;

namespace OfflinePki.Crl;

/// <summary>
/// One rule a delta CRL must satisfy against the complete CRL it names as its base (RFC 5280 §5.2.4), checked before
/// the delta is signed. Each implementation checks one rule and cites its RFC section.
/// </summary>
public interface IDeltaCrlLint
{
    /// <summary>Short rule name, e.g. "crl_delta_scope_matches_base".</summary>
    string Name { get; }

    /// <summary>Where the rule comes from, e.g. "RFC 5280 §5.2.4".</summary>
    string Citation { get; }

    /// <summary>Checks the delta's TBSCertList against its base and yields one message per violation (nothing when it passes).</summary>
    /// <param name="delta">The encoded delta TBSCertList about to be signed.</param>
    /// <param name="baseCrl">
    /// The TBSCertList of the complete CRL the mirror issued and that the delta names as its base; null when the caller
    /// gave none (or it could not be parsed), which <see cref="CrlDeltaBaseIsIssuedCompleteCrl"/> refuses and the other
    /// rules skip.
    /// </param>
    IEnumerable<string> Check(TbsCertListView delta, TbsCertListView? baseCrl);
}

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

/// <summary>
/// RFC 5280 §5.2.4: "The referenced base CRL is a CRL that was explicitly issued as a CRL that is complete for a given
/// scope", by the same issuer with the same key. Checked: a base is given (the complete CRL this mirror issued); it carries
/// no deltaCRLIndicator; its cRLNumber equals the delta's BaseCRLNumber and is less than the delta's own cRLNumber; its
/// issuer Name and authorityKeyIdentifier equal the delta's; and its thisUpdate is not after the delta's (no delta whose
/// base is newer than itself).
/// </summary>
public sealed class CrlDeltaBaseIsIssuedCompleteCrl : IDeltaCrlLint
{
    /// <inheritdoc />
    public string Name => "crl_delta_base_is_issued_complete_crl";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.2.4";

    /// <inheritdoc />
    public IEnumerable<string> Check(TbsCertListView delta, TbsCertListView? baseCrl)
    {
        ArgumentNullException.ThrowIfNull(delta);
        var baseNumber = DeltaCrlLints.ReadInteger(delta.FindExtension(Oids.DeltaCrlIndicator));
        var ownNumber = DeltaCrlLints.ReadInteger(delta.FindExtension(Oids.CrlNumber));
        if (baseCrl is null)
        {
            yield return $"BaseCRLNumber {baseNumber?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"} names no complete CRL this mirror issued (no base CRL was given to check it against)";
            yield break;
        }

        if (baseCrl.FindExtension(Oids.DeltaCrlIndicator) is not null)
        {
            yield return "the base is itself a delta CRL; a delta's base must be a complete CRL";
        }

        var issuedNumber = DeltaCrlLints.ReadInteger(baseCrl.FindExtension(Oids.CrlNumber));
        if (issuedNumber is null)
        {
            yield return "the base CRL has no readable cRLNumber";
        }
        else if (baseNumber != issuedNumber)
        {
            yield return $"BaseCRLNumber {baseNumber?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"} does not name the issued complete CRL, whose cRLNumber is {issuedNumber}";
        }
        else if (ownNumber is { } own && issuedNumber >= own)
        {
            yield return $"the base CRL's number {issuedNumber} is not less than the delta's cRLNumber {own}";
        }

        if (!baseCrl.Issuer.Span.SequenceEqual(delta.Issuer.Span))
        {
            yield return "the base CRL has another issuer Name than the delta";
        }

        var baseAki = baseCrl.FindExtension(Oids.AuthorityKeyIdentifier)?.Value ?? ReadOnlyMemory<byte>.Empty;
        var deltaAki = delta.FindExtension(Oids.AuthorityKeyIdentifier)?.Value ?? ReadOnlyMemory<byte>.Empty;
        if (!baseAki.Span.SequenceEqual(deltaAki.Span))
        {
            yield return "the base CRL has another authorityKeyIdentifier than the delta (the same key must sign both)";
        }

        if (baseCrl.ThisUpdate > delta.ThisUpdate)
        {
            yield return $"the base CRL's thisUpdate {baseCrl.ThisUpdate:O} is after the delta's thisUpdate {delta.ThisUpdate:O}";
        }
    }
}

/// <summary>
/// RFC 5280 §5.2.4: "the scope of the delta CRL MUST be the same as the scope of the complete CRL referenced as the base.
/// The referenced base CRL and the delta CRL MUST omit the issuing distribution point extension or contain identical
/// issuing distribution point extensions."
/// </summary>
public sealed class CrlDeltaScopeMatchesBase : IDeltaCrlLint
{
    /// <inheritdoc />
    public string Name => "crl_delta_scope_matches_base";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.2.4";

    /// <inheritdoc />
    public IEnumerable<string> Check(TbsCertListView delta, TbsCertListView? baseCrl)
    {
        ArgumentNullException.ThrowIfNull(delta);
        if (baseCrl is null)
        {
            yield break;
        }

        var d = delta.FindExtension(Oids.IssuingDistributionPoint);
        var b = baseCrl.FindExtension(Oids.IssuingDistributionPoint);
        if (d is null && b is null)
        {
            yield break;
        }

        if (d is null || b is null)
        {
            yield return d is null
                ? "the base CRL is partitioned (issuingDistributionPoint) but the delta is not"
                : "the delta carries an issuingDistributionPoint but its base CRL has none";
        }
        else if (d.Critical != b.Critical || !d.Value.Span.SequenceEqual(b.Value.Span))
        {
            yield return "the delta's issuingDistributionPoint differs from its base CRL's (another partition)";
        }
    }
}

/// <summary>
/// RFC 5280 §5.2.4: the base plus the delta "is equivalent to a complete CRL ... at the time of publication of the delta",
/// so the delta carries only what changed after the base was built. Checked, by a linear walk of both entry lists: every
/// delta entry absent from the base has a revocationDate (for removeFromCRL, the release time) not before the base's
/// thisUpdate (an older revocation missing from the base means the base was not complete, or is not this delta's base);
/// and a delta entry also listed in the base is not older than the base's entry. The mirror makes this exact: a revocation
/// takes its time under the registry's write lock, and a full CRL reads its thisUpdate before it takes that lock to read
/// the change watermark.
/// </summary>
public sealed class CrlDeltaNoEntryOlderThanBase : IDeltaCrlLint
{
    /// <inheritdoc />
    public string Name => "crl_delta_no_entry_older_than_base";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.2.4";

    /// <inheritdoc />
    public IEnumerable<string> Check(TbsCertListView delta, TbsCertListView? baseCrl)
    {
        ArgumentNullException.ThrowIfNull(delta);
        if (baseCrl is null)
        {
            yield break;
        }

        foreach (var (d, b) in DeltaCrlLints.Pair(delta, baseCrl))
        {
            var when = d.RevocationDate;
            if (b is null && when < baseCrl.ThisUpdate)
            {
                yield return $"serial {Convert.ToHexString(d.Serial.Span)} changed at {when:O}, before the base's thisUpdate {baseCrl.ThisUpdate:O}, but the base does not list it (the base was not complete, or is not this delta's base)";
            }
            else if (b is not null && when < b.RevocationDate)
            {
                yield return $"serial {Convert.ToHexString(d.Serial.Span)} has revocationDate {when:O}, older than the base's entry {b.RevocationDate:O}";
            }
        }
    }
}

/// <summary>
/// RFC 5280 §5.3.1: removeFromCRL "is for use with delta CRLs ... only and indicates that an existing CRL entry should now
/// be removed owing to certificate expiration or hold release". A delta that lists removeFromCRL for a serial its base
/// lists with a final reason (anything but certificateHold) would un-revoke a certificate: refused. (A full CRL never
/// carries removeFromCRL: <see cref="CrlNoRemoveFromCrlInFullCrl"/>.)
/// </summary>
public sealed class CrlRemoveFromCrlOnlyReleasesAHold : IDeltaCrlLint
{
    /// <inheritdoc />
    public string Name => "crl_remove_from_crl_only_releases_a_hold";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.3.1";

    /// <inheritdoc />
    public IEnumerable<string> Check(TbsCertListView delta, TbsCertListView? baseCrl)
    {
        ArgumentNullException.ThrowIfNull(delta);
        if (baseCrl is null)
        {
            yield break;
        }

        foreach (var (d, b) in DeltaCrlLints.Pair(delta, baseCrl))
        {
            if (b is null || DeltaCrlLints.ReasonOf(d) != CrlReason.RemoveFromCrl)
            {
                continue;
            }

            var baseReason = DeltaCrlLints.ReasonOf(b);
            if (baseReason != CrlReason.CertificateHold)
            {
                yield return $"serial {Convert.ToHexString(d.Serial.Span)} is removeFromCRL in the delta but the base lists it as {(baseReason is { } r ? CrlReasons.Name(r) : "an undecodable reason")}, which is final; only certificateHold can be released";
            }
        }
    }
}
