using System.Formats.Asn1;
using OfflinePki.Asn1;

namespace OfflinePki.Crl;

/// <summary>One extension as read back from DER (RFC 5280 §4.1).</summary>
/// <param name="Oid">extnID, dotted.</param>
/// <param name="Critical">The critical flag (DEFAULT FALSE).</param>
/// <param name="Value">The contents of extnValue (the DER of the extension's own value).</param>
public sealed record ExtensionView(string Oid, bool Critical, ReadOnlyMemory<byte> Value);

/// <summary>One revokedCertificates entry as read back from DER (RFC 5280 §5.1.2.6).</summary>
/// <param name="Serial">The INTEGER content octets of userCertificate, as encoded.</param>
/// <param name="EncodedRevocationDate">The DER of revocationDate (UTCTime or GeneralizedTime), decoded on demand by <see cref="RevocationDate"/>.</param>
/// <param name="Extensions">crlEntryExtensions, empty when absent.</param>
public sealed record CrlEntryView(ReadOnlyMemory<byte> Serial, ReadOnlyMemory<byte> EncodedRevocationDate, IReadOnlyList<ExtensionView> Extensions)
{
    /// <summary>revocationDate, decoded from <see cref="EncodedRevocationDate"/>.</summary>
    /// <exception cref="AsnContentException">The time is not a valid DER UTCTime or GeneralizedTime.</exception>
    public DateTimeOffset RevocationDate => DerTime.ReadTime(new AsnReader(EncodedRevocationDate, AsnEncodingRules.DER));
}

/// <summary>
/// A read-only view of an encoded TBSCertList (RFC 5280 §5.1), made from the very bytes that will be signed so
/// the lints check what the signer signs. Entries are decoded lazily, one at a time.
/// </summary>
public sealed class TbsCertListView
{
    private readonly ReadOnlyMemory<byte> _revoked;

    private TbsCertListView(int? version, ReadOnlyMemory<byte> signature, ReadOnlyMemory<byte> issuer, DateTimeOffset thisUpdate,
        DateTimeOffset? nextUpdate, bool hasRevoked, ReadOnlyMemory<byte> revoked, IReadOnlyList<ExtensionView> extensions)
    {
        Version = version;
        Signature = signature;
        Issuer = issuer;
        ThisUpdate = thisUpdate;
        NextUpdate = nextUpdate;
        HasRevokedCertificates = hasRevoked;
        _revoked = revoked;
        Extensions = extensions;
    }

    /// <summary>The version INTEGER (1 means v2), or null when absent (v1).</summary>
    public int? Version { get; }

    /// <summary>DER of the inner signature AlgorithmIdentifier.</summary>
    public ReadOnlyMemory<byte> Signature { get; }

    /// <summary>DER of the issuer Name.</summary>
    public ReadOnlyMemory<byte> Issuer { get; }

    /// <summary>thisUpdate.</summary>
    public DateTimeOffset ThisUpdate { get; }

    /// <summary>nextUpdate, or null when absent.</summary>
    public DateTimeOffset? NextUpdate { get; }

    /// <summary>True when the revokedCertificates field is present (RFC 5280 §5.1.2.6: absent when empty).</summary>
    public bool HasRevokedCertificates { get; }

    /// <summary>crlExtensions, empty when absent.</summary>
    public IReadOnlyList<ExtensionView> Extensions { get; }

    /// <summary>The extension with <paramref name="oid"/>, or null.</summary>
    public ExtensionView? FindExtension(string oid) => Extensions.FirstOrDefault(e => e.Oid == oid);

    /// <summary>Decodes the revokedCertificates entries one by one.</summary>
    /// <exception cref="AsnContentException">An entry is not valid DER.</exception>
    public IEnumerable<CrlEntryView> Entries()
    {
        foreach (var (_, entry) in RawEntries())
        {
            yield return ParseEntry(entry);
        }
    }

    /// <summary>
    /// Walks the revokedCertificates entries without decoding them: each entry's serial (INTEGER content octets) and its
    /// whole content, for <see cref="ParseEntry"/> when needed. Used by lints that compare a delta with a large base.
    /// </summary>
    /// <exception cref="AsnContentException">An entry is not valid DER.</exception>
    internal IEnumerable<(ReadOnlyMemory<byte> Serial, ReadOnlyMemory<byte> Entry)> RawEntries()
    {
        if (!HasRevokedCertificates)
        {
            yield break;
        }

        // Span-based decoding (no reader object per entry): the lints walk every entry of a million-entry CRL.
        var rest = _revoked;
        while (!rest.IsEmpty)
        {
            AsnDecoder.ReadSequence(rest.Span, AsnEncodingRules.DER, out int entryOffset, out int entryLength, out int consumed);
            var entry = rest.Slice(entryOffset, entryLength);
            rest = rest[consumed..];
            var tag = Asn1Tag.Decode(entry.Span, out _);
            if (!tag.HasSameClassAndValue(Asn1Tag.Integer))
            {
                throw new AsnContentException("revokedCertificates entry does not start with an INTEGER serial");
            }

            AsnDecoder.ReadEncodedValue(entry.Span, AsnEncodingRules.DER, out int serialOffset, out int serialLength, out _);
            yield return (entry.Slice(serialOffset, serialLength), entry);
        }
    }

    /// <summary>Decodes the content of one revokedCertificates entry (as given by <see cref="RawEntries"/>).</summary>
    /// <exception cref="AsnContentException">The entry is not valid DER.</exception>
    internal static CrlEntryView ParseEntry(ReadOnlyMemory<byte> entry)
    {
        AsnDecoder.ReadEncodedValue(entry.Span, AsnEncodingRules.DER, out int serialOffset, out int serialLength, out int serialConsumed);
        var serial = entry.Slice(serialOffset, serialLength);
        entry = entry[serialConsumed..];
        var timeTag = Asn1Tag.Decode(entry.Span, out _);
        if (!timeTag.HasSameClassAndValue(Asn1Tag.UtcTime) && !timeTag.HasSameClassAndValue(Asn1Tag.GeneralizedTime))
        {
            throw new AsnContentException("revokedCertificates entry has no revocationDate Time");
        }

        AsnDecoder.ReadEncodedValue(entry.Span, AsnEncodingRules.DER, out _, out _, out int timeConsumed);
        var time = entry[..timeConsumed];
        entry = entry[timeConsumed..];
        IReadOnlyList<ExtensionView> exts = [];
        if (!entry.IsEmpty)
        {
            var reader = new AsnReader(entry, AsnEncodingRules.DER);
            exts = ReadExtensions(reader);
            reader.ThrowIfNotEmpty();
        }

        return new CrlEntryView(serial, time, exts);
    }

    /// <summary>Parses the header of a TBSCertList; entries are left for <see cref="Entries"/>.</summary>
    /// <exception cref="AsnContentException"><paramref name="tbs"/> is not a DER TBSCertList.</exception>
    public static TbsCertListView Parse(ReadOnlyMemory<byte> tbs)
    {
        var outer = new AsnReader(tbs, AsnEncodingRules.DER);
        var r = outer.ReadSequence();
        outer.ThrowIfNotEmpty();
        int? version = null;
        if (r.PeekTag().HasSameClassAndValue(Asn1Tag.Integer))
        {
            version = r.TryReadInt32(out int v) ? v : throw new AsnContentException("CRL version out of range");
        }

        var signature = r.ReadEncodedValue();
        var issuer = r.ReadEncodedValue();
        var thisUpdate = DerTime.ReadTime(r);
        DateTimeOffset? nextUpdate = null;
        if (r.HasData && (r.PeekTag().HasSameClassAndValue(Asn1Tag.UtcTime) || r.PeekTag().HasSameClassAndValue(Asn1Tag.GeneralizedTime)))
        {
            nextUpdate = DerTime.ReadTime(r);
        }

        bool hasRevoked = false;
        ReadOnlyMemory<byte> revoked = default;
        if (r.HasData && r.PeekTag().HasSameClassAndValue(Asn1Tag.Sequence))
        {
            hasRevoked = true;
            var seq = r.ReadEncodedValue();
            var inner = new AsnReader(seq, AsnEncodingRules.DER);
            revoked = inner.PeekContentBytes();
        }

        IReadOnlyList<ExtensionView> extensions = [];
        var ctx0 = new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true);
        if (r.HasData && r.PeekTag() == ctx0)
        {
            var explicitReader = r.ReadSequence(ctx0);
            extensions = ReadExtensions(explicitReader);
            explicitReader.ThrowIfNotEmpty();
        }

        r.ThrowIfNotEmpty();
        return new TbsCertListView(version, signature, issuer, thisUpdate, nextUpdate, hasRevoked, revoked, extensions);
    }

    /// <summary>Parses the TBSCertList inside a signed CertificateList (RFC 5280 §5.1); the signature is not checked.</summary>
    /// <param name="certificateList">DER CertificateList.</param>
    /// <exception cref="AsnContentException"><paramref name="certificateList"/> is not a DER CertificateList.</exception>
    public static TbsCertListView ParseCertificateList(ReadOnlyMemory<byte> certificateList)
    {
        var outer = new AsnReader(certificateList, AsnEncodingRules.DER);
        var list = outer.ReadSequence();
        outer.ThrowIfNotEmpty();
        var tbs = list.ReadEncodedValue();
        list.ReadEncodedValue();
        list.ReadBitString(out _);
        list.ThrowIfNotEmpty();
        return Parse(tbs);
    }

    /// <summary>Reads an Extensions SEQUENCE (RFC 5280 §4.1) at the reader's position.</summary>
    internal static List<ExtensionView> ReadExtensions(AsnReader reader)
    {
        var list = new List<ExtensionView>();
        var seq = reader.ReadSequence();
        while (seq.HasData)
        {
            var ext = seq.ReadSequence();
            var oid = ext.ReadObjectIdentifier();
            bool critical = false;
            if (ext.PeekTag().HasSameClassAndValue(Asn1Tag.Boolean))
            {
                critical = ext.ReadBoolean();
            }

            var value = ext.ReadOctetString();
            ext.ThrowIfNotEmpty();
            list.Add(new ExtensionView(oid, critical, value));
        }

        return list;
    }
}
