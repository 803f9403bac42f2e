using System.Formats.Asn1;
using System.Numerics;
using OfflinePki.Asn1;
using OfflinePki.Revocation;

namespace OfflinePki.Crl;

/// <summary>One rule a CRL must satisfy before it is signed. Each implementation checks one rule and cites its RFC section.</summary>
public interface ICrlLint
{
    /// <summary>Short rule name, e.g. "crl_next_update_after_this_update".</summary>
    string Name { get; }

    /// <summary>Where the rule comes from, e.g. "RFC 5280 §5.1.2.5".</summary>
    string Citation { get; }

    /// <summary>Checks the TBSCertList and yields one message per violation (nothing when it passes).</summary>
    /// <param name="tbs">The encoded TBSCertList about to be signed.</param>
    /// <param name="fullCrl">True for a full (non-delta) CRL.</param>
    IEnumerable<string> Check(TbsCertListView tbs, bool fullCrl);
}

/// <summary>A CRL failed a lint; it was not signed. The message lists every failed rule with its citation.</summary>
public sealed class CrlLintException : Exception
{
    /// <summary>Creates the exception from the failures ("name (citation): message").</summary>
    public CrlLintException(IReadOnlyList<string> failures)
        : base("CRL refused before signing: " + string.Join("; ", failures))
    {
        Failures = failures;
    }

    /// <summary>Each failure, "name (citation): message".</summary>
    public IReadOnlyList<string> Failures { get; }
}

/// <summary>The standard CRL lints, in the order they run.</summary>
public static class CrlLints
{
    /// <summary>All lints below.</summary>
    public static IReadOnlyList<ICrlLint> All { get; } =
    [
        new CrlVersionIsV2WhenExtensionsPresent(),
        new CrlNextUpdateAfterThisUpdate(),
        new CrlNumberPresentAndInRange(),
        new CrlAuthorityKeyIdentifierPresent(),
        new CrlSerialsPositiveAndUnique(),
        new CrlNoRemoveFromCrlInFullCrl(),
        new CrlDeltaIndicatorCriticalWithOlderBase(),
        new CrlNoFreshestCrlInDelta(),
        new CrlIssuingDistributionPointConsistent(),
    ];

    /// <summary>Runs <paramref name="lints"/> over <paramref name="tbs"/>.</summary>
    /// <exception cref="CrlLintException">At least one lint failed.</exception>
    public static void Enforce(IEnumerable<ICrlLint> lints, TbsCertListView tbs, bool fullCrl)
    {
        ArgumentNullException.ThrowIfNull(lints);
        ArgumentNullException.ThrowIfNull(tbs);
        var failures = new List<string>();
        foreach (var lint in lints)
        {
            foreach (var message in lint.Check(tbs, fullCrl))
            {
                failures.Add($"{lint.Name} ({lint.Citation}): {message}");
            }
        }

        if (failures.Count > 0)
        {
            throw new CrlLintException(failures);
        }
    }
}

/// <summary>RFC 5280 §5.1.2.1: when extensions are used, the version MUST be present and be v2 (INTEGER 1).</summary>
public sealed class CrlVersionIsV2WhenExtensionsPresent : ICrlLint
{
    /// <inheritdoc />
    public string Name => "crl_version_v2_when_extensions";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.1.2.1";

    /// <inheritdoc />
    public IEnumerable<string> Check(TbsCertListView tbs, bool fullCrl)
    {
        ArgumentNullException.ThrowIfNull(tbs);
        // Entry extensions only matter when there are no CRL extensions (a scan of every entry otherwise skipped).
        if ((tbs.Extensions.Count > 0 || tbs.Entries().Any(e => e.Extensions.Count > 0)) && tbs.Version != 1)
        {
            yield return $"extensions are present but version is {(tbs.Version?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "absent")}, not v2 (1)";
        }
        else if (tbs.Version is not null and not 1)
        {
            yield return $"version {tbs.Version} is present but is not v2 (1)";
        }
    }
}

/// <summary>RFC 5280 §5.1.2.5: conforming issuers MUST include nextUpdate, and it is later than thisUpdate.</summary>
public sealed class CrlNextUpdateAfterThisUpdate : ICrlLint
{
    /// <inheritdoc />
    public string Name => "crl_next_update_after_this_update";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.1.2.5";

    /// <inheritdoc />
    public IEnumerable<string> Check(TbsCertListView tbs, bool fullCrl)
    {
        ArgumentNullException.ThrowIfNull(tbs);
        if (tbs.NextUpdate is not { } next)
        {
            yield return "nextUpdate is absent";
        }
        else if (next <= tbs.ThisUpdate)
        {
            yield return $"nextUpdate {next:O} is not after thisUpdate {tbs.ThisUpdate:O}";
        }
    }
}

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

/// <summary>RFC 5280 §5.2.1: conforming CRL issuers MUST include the authorityKeyIdentifier extension (with a keyIdentifier, as we always do).</summary>
public sealed class CrlAuthorityKeyIdentifierPresent : ICrlLint
{
    /// <inheritdoc />
    public string Name => "crl_authority_key_identifier_present";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.2.1";

    /// <inheritdoc />
    public IEnumerable<string> Check(TbsCertListView tbs, bool fullCrl)
    {
        ArgumentNullException.ThrowIfNull(tbs);
        var ext = tbs.FindExtension(Oids.AuthorityKeyIdentifier);
        if (ext is null)
        {
            yield return "authorityKeyIdentifier is absent";
            yield break;
        }

        bool hasKeyId;
        try
        {
            var seq = new AsnReader(ext.Value, AsnEncodingRules.DER).ReadSequence();
            hasKeyId = seq.HasData && seq.PeekTag() == new Asn1Tag(TagClass.ContextSpecific, 0) && seq.ReadOctetString(new Asn1Tag(TagClass.ContextSpecific, 0)).Length > 0;
        }
        catch (AsnContentException)
        {
            hasKeyId = false;
        }

        if (!hasKeyId)
        {
            yield return "authorityKeyIdentifier has no keyIdentifier";
        }
    }
}

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

/// <summary>RFC 5280 §5.2.6: freshestCRL "MUST NOT appear in delta CRLs".</summary>
public sealed class CrlNoFreshestCrlInDelta : ICrlLint
{
    /// <inheritdoc />
    public string Name => "crl_no_freshest_crl_in_delta";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.2.6";

    /// <inheritdoc />
    public IEnumerable<string> Check(TbsCertListView tbs, bool fullCrl)
    {
        ArgumentNullException.ThrowIfNull(tbs);
        if (!fullCrl && tbs.FindExtension(Oids.FreshestCrl) is not null)
        {
            yield return "a delta CRL carries freshestCRL";
        }
    }
}

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
