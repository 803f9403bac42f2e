using System.Formats.Asn1;
using System.Text;
using OfflinePki.Asn1;

namespace OfflinePki.Issuance;

/// <summary>What to certify: a device serial and its public key (already checked by enrollment intake).</summary>
/// <param name="DeviceId">IEEE 802.1AR device serial; a non-empty PrintableString.</param>
/// <param name="SubjectPublicKeyInfo">DER SubjectPublicKeyInfo of the device key.</param>
public sealed record IssuanceRequest(string DeviceId, byte[] SubjectPublicKeyInfo)
{
    /// <summary>The profile to follow (one of the issuer's <see cref="ICertificateIssuer.Profiles"/>), or null for its default.</summary>
    public CertificateProfile? Profile { get; init; }
}

/// <summary>A prepared, not yet signed, certificate: the TBSCertificate DER and the values it was built from.</summary>
/// <param name="TbsDer">DER TBSCertificate (RFC 5280 §4.1).</param>
/// <param name="Serial">Normalised serial content octets.</param>
/// <param name="NotBefore">notBefore, whole seconds, UTC.</param>
/// <param name="NotAfter">notAfter, whole seconds, UTC.</param>
/// <param name="DeviceId">The device serial placed in subject serialNumber and hwSerialNum.</param>
public sealed record PreparedCertificate(byte[] TbsDer, byte[] Serial, DateTimeOffset NotBefore, DateTimeOffset NotAfter, string DeviceId);

/// <summary>
/// Builds a TBSCertificate (RFC 5280 §4.1) for one profile from the profile, the issuing CA, a fresh serial and the
/// clock, laid out per <see cref="CertificateProfile.Kind"/>: IDevID (IEEE 802.1AR §8), tls-client, or Matter DAC
/// (Matter Core Specification §6.2.2). Builds bytes only; it never signs.
/// </summary>
public sealed class TbsCertificateBuilder
{
    private readonly CertificateProfile _profile;
    private readonly IssuingAuthority _issuer;
    private readonly ISerialNumberSource _serials;
    private readonly TimeProvider _time;

    /// <summary>Creates the builder.</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public TbsCertificateBuilder(CertificateProfile profile, IssuingAuthority issuer, ISerialNumberSource serials, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(issuer);
        ArgumentNullException.ThrowIfNull(serials);
        ArgumentNullException.ThrowIfNull(time);
        _profile = profile;
        _issuer = issuer;
        _serials = serials;
        _time = time;
    }

    /// <summary>Prepares a TBSCertificate with a fresh serial and notBefore = now.</summary>
    /// <param name="request">Device serial and key.</param>
    /// <returns>The TBS DER and its inputs.</returns>
    /// <exception cref="ArgumentException">The device serial is empty or not a PrintableString.</exception>
    public PreparedCertificate Prepare(IssuanceRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentException.ThrowIfNullOrEmpty(request.DeviceId);
        ArgumentNullException.ThrowIfNull(request.SubjectPublicKeyInfo);
        var serial = _serials.Next();
        var notBefore = DerTime.Truncate(_time.GetUtcNow());
        var notAfter = _profile.Validity is { } v ? DerTime.Truncate(notBefore + v) : DerTime.NoWellDefinedExpiration;
        return new PreparedCertificate(Build(request, serial, notBefore, notAfter), serial, notBefore, notAfter, request.DeviceId);
    }

    private byte[] Build(IssuanceRequest request, byte[] serial, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        var w = new AsnWriter(AsnEncodingRules.DER);

        // TBSCertificate ::= SEQUENCE {
        //   version         [0] EXPLICIT Version DEFAULT v1,
        //   serialNumber         CertificateSerialNumber,
        //   signature            AlgorithmIdentifier,
        //   issuer               Name,
        //   validity             Validity,
        //   subject              Name,
        //   subjectPublicKeyInfo SubjectPublicKeyInfo,
        //   extensions      [3] EXPLICIT Extensions OPTIONAL }
        using (w.PushSequence())
        {
            // Version ::= INTEGER { v1(0), v2(1), v3(2) }
            using (w.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
            {
                w.WriteInteger(2);
            }

            // CertificateSerialNumber ::= INTEGER  (positive, <= 20 octets, RFC 5280 §4.1.2.2)
            w.WriteInteger(serial);

            // AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }
            w.WriteEncodedValue(_issuer.SigningKey.SignatureAlgorithmIdentifier);

            // issuer Name: the CA subject, byte for byte (RFC 5280 §4.1.2.4)
            w.WriteEncodedValue(_issuer.SubjectName.Span);

            // Validity ::= SEQUENCE { notBefore Time, notAfter Time }
            using (w.PushSequence())
            {
                DerTime.WriteTime(w, notBefore);
                DerTime.WriteTime(w, notAfter);
            }

            WriteSubject(w, request.DeviceId);

            // SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
            w.WriteEncodedValue(request.SubjectPublicKeyInfo);

            // Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension
            using (w.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 3, isConstructed: true)))
            using (w.PushSequence())
            {
                WriteExtensions(w, request, serial);
            }
        }

        return w.Encode();
    }

    private void WriteSubject(AsnWriter w, string deviceId)
    {
        // Name ::= CHOICE { rdnSequence RDNSequence }
        // RDNSequence ::= SEQUENCE OF RelativeDistinguishedName
        // RelativeDistinguishedName ::= SET SIZE (1..MAX) OF AttributeTypeAndValue
        // AttributeTypeAndValue ::= SEQUENCE { type AttributeType, value AttributeValue }
        using (w.PushSequence())
        {
            WriteRdn(w, "2.5.4.10", UniversalTagNumber.UTF8String, _profile.SubjectOrganization);
            WriteRdn(w, "2.5.4.3", UniversalTagNumber.UTF8String, _profile.SubjectCommonName);
            // X520SerialNumber ::= PrintableString (SIZE (1..ub-serial-number)); IEEE 802.1AR §8.6
            WriteRdn(w, Oids.SerialNumberAttribute, UniversalTagNumber.PrintableString, deviceId);
            if (_profile.Kind == CertificateProfileKind.MatterDac)
            {
                // Matter Core §6.5.6.1: vendor id and product id as UTF8String of exactly 4 upper-case hex digits.
                WriteRdn(w, Oids.MatterVendorId, UniversalTagNumber.UTF8String, _profile.MatterVendorId!.Value.ToString("X4", System.Globalization.CultureInfo.InvariantCulture));
                WriteRdn(w, Oids.MatterProductId, UniversalTagNumber.UTF8String, _profile.MatterProductId!.Value.ToString("X4", System.Globalization.CultureInfo.InvariantCulture));
            }
        }
    }

    private static void WriteRdn(AsnWriter w, string oid, UniversalTagNumber type, string value)
    {
        using (w.PushSetOf())
        using (w.PushSequence())
        {
            w.WriteObjectIdentifier(oid);
            w.WriteCharacterString(type, value);
        }
    }

    private void WriteExtensions(AsnWriter w, IssuanceRequest request, byte[] serial)
    {
        // Extension ::= SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }

        // BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }  (RFC 5280 §4.2.1.9)
        WriteExtension(w, Oids.BasicConstraints, critical: true, v =>
        {
            using (v.PushSequence())
            {
            }
        });

        // KeyUsage ::= BIT STRING { digitalSignature (0), ... }  (RFC 5280 §4.2.1.3)
        WriteExtension(w, Oids.KeyUsage, critical: true, v => v.WriteBitString([0x80], unusedBitCount: 7));

        if (_profile.Kind == CertificateProfileKind.TlsClient)
        {
            // ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId  (RFC 5280 §4.2.1.12): id-kp-clientAuth
            WriteExtension(w, Oids.ExtendedKeyUsage, critical: false, v =>
            {
                using (v.PushSequence())
                {
                    v.WriteObjectIdentifier(Oids.ClientAuthEku);
                }
            });
        }

        // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] KeyIdentifier OPTIONAL, ... }  (RFC 5280 §4.2.1.1)
        WriteExtension(w, Oids.AuthorityKeyIdentifier, critical: false, v =>
        {
            using (v.PushSequence())
            {
                v.WriteOctetString(_issuer.SubjectKeyIdentifier, new Asn1Tag(TagClass.ContextSpecific, 0));
            }
        });

        // SubjectKeyIdentifier ::= KeyIdentifier ::= OCTET STRING  (RFC 5280 §4.2.1.2, method 1)
        WriteExtension(w, Oids.SubjectKeyIdentifier, critical: false,
            v => v.WriteOctetString(IssuingAuthority.ComputeKeyIdentifier(request.SubjectPublicKeyInfo)));

        // SubjectAltName ::= GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName
        // GeneralName ::= CHOICE { otherName [0] OtherName, ... }
        // OtherName ::= SEQUENCE { type-id OBJECT IDENTIFIER, value [0] EXPLICIT ANY DEFINED BY type-id }
        // HardwareModuleName ::= SEQUENCE { hwType OBJECT IDENTIFIER, hwSerialNum OCTET STRING }  (RFC 4108 §5)
        if (_profile.IncludeHardwareModuleName)
        {
            WriteExtension(w, Oids.SubjectAltName, critical: false, v =>
            {
                using (v.PushSequence())
                using (v.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
                {
                    v.WriteObjectIdentifier(Oids.HardwareModuleName);
                    using (v.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
                    using (v.PushSequence())
                    {
                        v.WriteObjectIdentifier(_profile.HardwareModuleType);
                        v.WriteOctetString(Encoding.ASCII.GetBytes(request.DeviceId));
                    }
                }
            });
        }

        // CRLDistributionPoints ::= SEQUENCE SIZE (1..MAX) OF DistributionPoint
        // DistributionPoint ::= SEQUENCE { distributionPoint [0] DistributionPointName OPTIONAL, ... }
        // DistributionPointName ::= CHOICE { fullName [0] GeneralNames, ... }   (RFC 5280 §4.2.1.13)
        WriteExtension(w, Oids.CrlDistributionPoints, critical: false, v =>
        {
            using (v.PushSequence())
            using (v.PushSequence())
            using (v.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
            using (v.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
            {
                // One CRL, or this serial's partition when the profile partitions CRLs (RFC 5280 §5.2.5).
                WriteUri(v, new Uri(_profile.CrlDistributionPointFor(serial)));
            }
        });

        if (_profile.FreshestCrlUrl is { } freshest)
        {
            // FreshestCRL ::= CRLDistributionPoints   (RFC 5280 §4.2.1.15: where the delta CRLs are)
            WriteExtension(w, Oids.FreshestCrl, critical: false, v =>
            {
                using (v.PushSequence())
                using (v.PushSequence())
                using (v.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
                using (v.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
                {
                    WriteUri(v, freshest);
                }
            });
        }

        // AuthorityInfoAccessSyntax ::= SEQUENCE SIZE (1..MAX) OF AccessDescription
        // AccessDescription ::= SEQUENCE { accessMethod OBJECT IDENTIFIER, accessLocation GeneralName }  (RFC 5280 §4.2.2.1)
        WriteExtension(w, Oids.AuthorityInfoAccess, critical: false, v =>
        {
            using (v.PushSequence())
            {
                using (v.PushSequence())
                {
                    v.WriteObjectIdentifier(Oids.AdOcsp);
                    WriteUri(v, _profile.OcspUrl);
                }

                using (v.PushSequence())
                {
                    v.WriteObjectIdentifier(Oids.AdCaIssuers);
                    WriteUri(v, _profile.CaIssuersUrl);
                }
            }
        });
    }

    // GeneralName ::= CHOICE { ..., uniformResourceIdentifier [6] IA5String, ... }
    private static void WriteUri(AsnWriter w, Uri uri) =>
        w.WriteCharacterString(UniversalTagNumber.IA5String, uri.AbsoluteUri, new Asn1Tag(TagClass.ContextSpecific, 6));

    private static void WriteExtension(AsnWriter w, string oid, bool critical, Action<AsnWriter> writeValue)
    {
        using (w.PushSequence())
        {
            w.WriteObjectIdentifier(oid);
            if (critical)
            {
                w.WriteBoolean(true);
            }

            var value = new AsnWriter(AsnEncodingRules.DER);
            writeValue(value);
            w.WriteOctetString(value.Encode());
        }
    }
}
