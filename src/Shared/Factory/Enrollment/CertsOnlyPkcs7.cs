using System.Formats.Asn1;

namespace OfflinePki.Enrollment;

/// <summary>
/// The degenerate "certs-only" CMS SignedData that EST returns (RFC 7030 §4.1.3 and §4.2.3; RFC 5652 §5.1):
/// certificates and no signers. Written directly with <see cref="AsnWriter"/>: one allocation, no certificate objects.
/// </summary>
public static class CertsOnlyPkcs7
{
    private const string IdSignedData = "1.2.840.113549.1.7.2";
    private const string IdData = "1.2.840.113549.1.7.1";

    /// <summary>Encodes a ContentInfo holding a certs-only SignedData with <paramref name="certificates"/> (DER each).</summary>
    /// <exception cref="ArgumentException">No certificate, or one that is not a single DER value.</exception>
    public static byte[] Encode(IReadOnlyList<ReadOnlyMemory<byte>> certificates)
    {
        ArgumentNullException.ThrowIfNull(certificates);
        if (certificates.Count == 0)
        {
            throw new ArgumentException("a certs-only response carries at least one certificate", nameof(certificates));
        }

        var w = new AsnWriter(AsnEncodingRules.DER);

        // ContentInfo ::= SEQUENCE { contentType ContentType, content [0] EXPLICIT ANY DEFINED BY contentType }
        using (w.PushSequence())
        {
            w.WriteObjectIdentifier(IdSignedData);
            using (w.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
            {
                // SignedData ::= SEQUENCE { version CMSVersion, digestAlgorithms SET OF DigestAlgorithmIdentifier,
                //   encapContentInfo EncapsulatedContentInfo, certificates [0] IMPLICIT CertificateSet OPTIONAL,
                //   crls [1] IMPLICIT RevocationInfoChoices OPTIONAL, signerInfos SET OF SignerInfo }
                using (w.PushSequence())
                {
                    w.WriteInteger(1);
                    using (w.PushSetOf())
                    {
                    }

                    // EncapsulatedContentInfo ::= SEQUENCE { eContentType ContentType, eContent [0] EXPLICIT OCTET STRING OPTIONAL }
                    using (w.PushSequence())
                    {
                        w.WriteObjectIdentifier(IdData);
                    }

                    using (w.PushSetOf(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
                    {
                        foreach (var cert in certificates)
                        {
                            w.WriteEncodedValue(cert.Span);
                        }
                    }

                    using (w.PushSetOf())
                    {
                    }
                }
            }
        }

        return w.Encode();
    }
}
