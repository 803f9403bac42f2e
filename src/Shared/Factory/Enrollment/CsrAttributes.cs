using System.Formats.Asn1;
using OfflinePki.Asn1;
using OfflinePki.Issuance;

namespace OfflinePki.Enrollment;

/// <summary>
/// EST csrattrs (RFC 7030 §4.5.2, with the RFC 8951 §3.3 clarification): what a station's CSR for a profile must
/// carry. For the profile's preferred key type (the first of <see cref="CertificateProfile.AllowedKeyTypes"/>):
/// the signature algorithm OID (ecdsa-with-SHA256/384 or sha256WithRSAEncryption), the key type as an attribute
/// (id-ecPublicKey with the curve OID, or rsaEncryption with the modulus size), then the subject serialNumber
/// attribute type (2.5.4.5, the device ID) and the optional operator id attribute type (<see cref="Oids.OperatorIdAttribute"/>).
/// </summary>
public static class CsrAttributes
{
    /// <summary>Encodes the DER CsrAttrs for <paramref name="profile"/>.</summary>
    /// <param name="profile">The profile.</param>
    /// <returns>DER of CsrAttrs.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="profile"/> is null.</exception>
    public static byte[] Encode(CertificateProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        string keyType = profile.AllowedKeyTypes[0];
        var w = new AsnWriter(AsnEncodingRules.DER);

        // CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID
        // AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute Attribute }
        // Attribute { ATTRIBUTE:IOSet } ::= SEQUENCE { type ATTRIBUTE.&id, values SET SIZE(1..MAX) OF ATTRIBUTE.&Type }
        using (w.PushSequence())
        {
            w.WriteObjectIdentifier(keyType switch
            {
                "P-384" => Oids.EcdsaWithSha384,
                "RSA" => Oids.Sha256WithRsa,
                _ => Oids.EcdsaWithSha256,
            });

            using (w.PushSequence())
            {
                if (keyType == "RSA")
                {
                    w.WriteObjectIdentifier(Oids.RsaEncryption);
                    using (w.PushSetOf())
                    {
                        w.WriteInteger(CsrIntake.MinRsaBits);
                    }
                }
                else
                {
                    w.WriteObjectIdentifier(Oids.EcPublicKey);
                    using (w.PushSetOf())
                    {
                        w.WriteObjectIdentifier(keyType == "P-384" ? Oids.Secp384r1 : Oids.Secp256r1);
                    }
                }
            }

            w.WriteObjectIdentifier(Oids.SerialNumberAttribute);
            w.WriteObjectIdentifier(Oids.OperatorIdAttribute);
        }

        return w.Encode();
    }
}
