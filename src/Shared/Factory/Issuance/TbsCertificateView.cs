using System.Formats.Asn1;
using OfflinePki.Asn1;

namespace OfflinePki.Issuance;

/// <summary>One extension as encoded in a TBSCertificate.</summary>
/// <param name="Oid">extnID.</param>
/// <param name="Critical">The critical flag (absent = false).</param>
/// <param name="Value">extnValue contents (the DER inside the OCTET STRING).</param>
public sealed record TbsExtension(string Oid, bool Critical, byte[] Value);

/// <summary>
/// A read-only parse of a DER TBSCertificate (RFC 5280 §4.1) for lints: lints check the bytes that will be
/// signed, not the inputs they were built from.
/// </summary>
public sealed class TbsCertificateView
{
    private TbsCertificateView() { }

    /// <summary>Version INTEGER value (2 for v3).</summary>
    public int Version { get; private init; }

    /// <summary>Serial content octets, as encoded (two's complement).</summary>
    public byte[] Serial { get; private init; } = [];

    /// <summary>DER AlgorithmIdentifier of the signature field.</summary>
    public byte[] SignatureAlgorithm { get; private init; } = [];

    /// <summary>DER issuer Name.</summary>
    public byte[] Issuer { get; private init; } = [];

    /// <summary>notBefore.</summary>
    public DateTimeOffset NotBefore { get; private init; }

    /// <summary>notAfter.</summary>
    public DateTimeOffset NotAfter { get; private init; }

    /// <summary>The universal tags of notBefore and notAfter (UTCTime or GeneralizedTime).</summary>
    public (UniversalTagNumber NotBefore, UniversalTagNumber NotAfter) ValidityTags { get; private init; }

    /// <summary>DER subject Name.</summary>
    public byte[] Subject { get; private init; } = [];

    /// <summary>DER SubjectPublicKeyInfo.</summary>
    public byte[] SubjectPublicKeyInfo { get; private init; } = [];

    /// <summary>Extensions in encoded order.</summary>
    public IReadOnlyList<TbsExtension> Extensions { get; private init; } = [];

    /// <summary>The first extension with <paramref name="oid"/>, or null.</summary>
    public TbsExtension? Find(string oid) => Extensions.FirstOrDefault(e => e.Oid == oid);

    /// <summary>Parses DER TBSCertificate bytes.</summary>
    /// <exception cref="AsnContentException">The bytes are not a DER TBSCertificate.</exception>
    public static TbsCertificateView Parse(ReadOnlyMemory<byte> tbs)
    {
        var top = new AsnReader(tbs, AsnEncodingRules.DER);
        var r = top.ReadSequence();
        top.ThrowIfNotEmpty();
        int version = 0;
        if (r.PeekTag().HasSameClassAndValue(new Asn1Tag(TagClass.ContextSpecific, 0)))
        {
            var v = r.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true));
            if (!v.TryReadInt32(out version))
            {
                throw new AsnContentException("version out of range");
            }

            v.ThrowIfNotEmpty();
        }

        var serial = r.ReadIntegerBytes().ToArray();
        var sigAlg = r.ReadEncodedValue().ToArray();
        var issuer = r.ReadEncodedValue().ToArray();
        var validity = r.ReadSequence();
        var nbTag = (UniversalTagNumber)validity.PeekTag().TagValue;
        var notBefore = DerTime.ReadTime(validity);
        var naTag = (UniversalTagNumber)validity.PeekTag().TagValue;
        var notAfter = DerTime.ReadTime(validity);
        validity.ThrowIfNotEmpty();
        var subject = r.ReadEncodedValue().ToArray();
        var spki = r.ReadEncodedValue().ToArray();
        var extensions = new List<TbsExtension>();
        if (r.HasData)
        {
            var ext = r.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 3, isConstructed: true)).ReadSequence();
            while (ext.HasData)
            {
                var e = ext.ReadSequence();
                string oid = e.ReadObjectIdentifier();
                bool critical = e.PeekTag().HasSameClassAndValue(Asn1Tag.Boolean) && e.ReadBoolean();
                extensions.Add(new TbsExtension(oid, critical, e.ReadOctetString()));
                e.ThrowIfNotEmpty();
            }
        }

        r.ThrowIfNotEmpty();
        return new TbsCertificateView
        {
            Version = version,
            Serial = serial,
            SignatureAlgorithm = sigAlg,
            Issuer = issuer,
            NotBefore = notBefore,
            NotAfter = notAfter,
            ValidityTags = (nbTag, naTag),
            Subject = subject,
            SubjectPublicKeyInfo = spki,
            Extensions = extensions,
        };
    }
}
