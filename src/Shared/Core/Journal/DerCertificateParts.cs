using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using OfflinePki.Asn1;
using OfflinePki.Keys;

namespace OfflinePki.Journal;

/// <summary>
/// The parts of a DER X.509 certificate (RFC 5280 §4.1) needed to check who signed it and to index it,
/// read with <see cref="AsnReader"/> and without constructing an <see cref="X509Certificate2"/> (which costs
/// a native object per certificate). The slices point into the caller's buffer.
/// </summary>
/// <remarks>
/// <code>
/// Certificate  ::=  SEQUENCE  {
///      tbsCertificate       TBSCertificate,
///      signatureAlgorithm   AlgorithmIdentifier,
///      signatureValue       BIT STRING  }
/// TBSCertificate  ::=  SEQUENCE  {
///      version         [0]  EXPLICIT Version DEFAULT v1,
///      serialNumber         CertificateSerialNumber,
///      signature            AlgorithmIdentifier,
///      issuer               Name,
///      validity             Validity,
///      subject              Name,
///      ... }
/// </code>
/// </remarks>
public sealed class DerCertificateParts
{
    private DerCertificateParts() { }

    /// <summary>The whole DER TBSCertificate (the signed bytes).</summary>
    public ReadOnlyMemory<byte> Tbs { get; private init; }

    /// <summary>The outer signatureAlgorithm OID (dotted).</summary>
    public string SignatureAlgorithmOid { get; private init; } = string.Empty;

    /// <summary>The signatureValue bits (DER ECDSA-Sig-Value for ECDSA, the PKCS#1 block for RSA).</summary>
    public ReadOnlyMemory<byte> Signature { get; private init; }

    /// <summary>The serialNumber INTEGER contents (two's complement, big-endian, as encoded).</summary>
    public ReadOnlyMemory<byte> SerialNumber { get; private init; }

    /// <summary>DER of the issuer Name.</summary>
    public ReadOnlyMemory<byte> Issuer { get; private init; }

    /// <summary>DER of the subject Name.</summary>
    public ReadOnlyMemory<byte> Subject { get; private init; }

    /// <summary>validity.notBefore (UTC).</summary>
    public DateTimeOffset NotBefore { get; private init; }

    /// <summary>validity.notAfter (UTC).</summary>
    public DateTimeOffset NotAfter { get; private init; }

    /// <summary>Splits a DER certificate.</summary>
    /// <param name="der">A DER-encoded Certificate; nothing may follow it.</param>
    /// <exception cref="CryptographicException">The bytes are not a DER certificate (or the inner and outer signature algorithms differ).</exception>
    public static DerCertificateParts Parse(ReadOnlyMemory<byte> der)
    {
        try
        {
            var outer = new AsnReader(der, AsnEncodingRules.DER);
            var cert = outer.ReadSequence();
            outer.ThrowIfNotEmpty();
            var tbs = cert.ReadEncodedValue();
            var algId = cert.ReadEncodedValue();
            var outerAlg = new AsnReader(algId, AsnEncodingRules.DER).ReadSequence();
            string oid = outerAlg.ReadObjectIdentifier();
            if (!cert.TryReadPrimitiveBitString(out int unused, out var sig) || unused != 0)
            {
                throw new CryptographicException("certificate signatureValue is not a whole-byte BIT STRING");
            }

            cert.ThrowIfNotEmpty();

            var t = new AsnReader(tbs, AsnEncodingRules.DER).ReadSequence();
            var version = new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true);
            if (t.PeekTag().HasSameClassAndValue(version))
            {
                t.ReadEncodedValue();
            }

            var serial = t.ReadIntegerBytes();
            var innerAlg = t.ReadEncodedValue();
            if (!innerAlg.Span.SequenceEqual(algId.Span))
            {
                throw new CryptographicException("certificate signature algorithms differ between TBSCertificate and Certificate (RFC 5280 §4.1.1.2)");
            }

            var issuer = t.ReadEncodedValue();
            var validity = t.ReadSequence();
            var notBefore = ReadTime(validity);
            var notAfter = ReadTime(validity);
            validity.ThrowIfNotEmpty();
            var subject = t.ReadEncodedValue();
            return new DerCertificateParts
            {
                Tbs = tbs,
                SignatureAlgorithmOid = oid,
                Signature = sig,
                SerialNumber = serial,
                Issuer = issuer,
                Subject = subject,
                NotBefore = notBefore,
                NotAfter = notAfter,
            };
        }
        catch (AsnContentException ex)
        {
            throw new CryptographicException($"not a DER certificate: {ex.Message}", ex);
        }
    }

    private static DateTimeOffset ReadTime(AsnReader r)
    {
        var tag = r.PeekTag();
        return tag.HasSameClassAndValue(Asn1Tag.UtcTime) ? r.ReadUtcTime() : r.ReadGeneralizedTime();
    }
}
