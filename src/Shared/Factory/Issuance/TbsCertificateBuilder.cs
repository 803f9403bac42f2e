using System.Formats.Asn1;
using System.Text;
using OfflinePki.Asn1;
using OfflinePki.Revocation;

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

    // The parts that are the same in every certificate of this profile, DER-encoded once: the subject's fixed RDNs and
    // the fixed extensions before and after the per-certificate ones (SKI, hardwareModuleName, a partition's CRL DP).
    private readonly byte[][] _subjectHead;
    private readonly byte[][] _subjectTail;
    private readonly byte[][] _extensionsHead;
    private readonly byte[][] _extensionsTail;
    private readonly byte[]?[] _crlDistributionPoints;

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
        _subjectHead =
        [
            EncodeRdn("2.5.4.10", UniversalTagNumber.UTF8String, profile.SubjectOrganization),
            EncodeRdn("2.5.4.3", UniversalTagNumber.UTF8String, profile.SubjectCommonName),
        ];
        _subjectTail = profile.Kind == CertificateProfileKind.MatterDac
            ?
            [
                // Matter Core §6.5.6.1: vendor id and product id as UTF8String of exactly 4 upper-case hex digits.
                EncodeRdn(Oids.MatterVendorId, UniversalTagNumber.UTF8String, profile.MatterVendorId!.Value.ToString("X4", System.Globalization.CultureInfo.InvariantCulture)),
                EncodeRdn(Oids.MatterProductId, UniversalTagNumber.UTF8String, profile.MatterProductId!.Value.ToString("X4", System.Globalization.CultureInfo.InvariantCulture)),
            ]
            : [];
        _extensionsHead = EncodeExtensionsHead();
        _extensionsTail = EncodeExtensionsTail();
        _crlDistributionPoints = new byte[]?[profile.CrlPartitions];
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
        // O, CN, serialNumber (then the Matter vendor and product ids for a DAC).
        using (w.PushSequence())
        {
            foreach (var rdn in _subjectHead)
            {
                w.WriteEncodedValue(rdn);
            }

            // X520SerialNumber ::= PrintableString (SIZE (1..ub-serial-number)); IEEE 802.1AR §8.6
            WriteRdn(w, Oids.SerialNumberAttribute, UniversalTagNumber.PrintableString, deviceId);
            foreach (var rdn in _subjectTail)
            {
                w.WriteEncodedValue(rdn);
            }
        }
    }

    private static byte[] EncodeRdn(string oid, UniversalTagNumber type, string value)
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        WriteRdn(w, oid, type, value);
        return w.Encode();
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

    // Extension ::= SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
    // In order: basicConstraints, keyUsage, [extKeyUsage], authorityKeyIdentifier | subjectKeyIdentifier,
    // [subjectAltName], cRLDistributionPoints | [freshestCRL], authorityInfoAccess. The parts between the bars depend on
    // the certificate; the rest is encoded once per profile.
    private void WriteExtensions(AsnWriter w, IssuanceRequest request, byte[] serial)
    {
        foreach (var e in _extensionsHead)
        {
            w.WriteEncodedValue(e);
        }

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

        // One CRL, or this serial's partition when the profile partitions CRLs (RFC 5280 §5.2.5).
        int partition = _profile.CrlPartitions == 1 ? 0 : CrlPartitioning.PartitionOf(serial, _profile.CrlPartitions);
        var crlDp = Volatile.Read(ref _crlDistributionPoints[partition]);
        if (crlDp is null)
        {
            crlDp = EncodeExtension(Oids.CrlDistributionPoints, critical: false, v => WriteDistributionPoints(v, new Uri(_profile.CrlDistributionPointFor(serial))));
            Volatile.Write(ref _crlDistributionPoints[partition], crlDp);
        }

        w.WriteEncodedValue(crlDp);
        foreach (var e in _extensionsTail)
        {
            w.WriteEncodedValue(e);
        }
    }

    private byte[][] EncodeExtensionsHead()
    {
        var head = new List<byte[]>
        {
            // BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }  (RFC 5280 §4.2.1.9)
            EncodeExtension(Oids.BasicConstraints, critical: true, v =>
            {
                using (v.PushSequence())
                {
                }
            }),

            // KeyUsage ::= BIT STRING { digitalSignature (0), ... }  (RFC 5280 §4.2.1.3)
            EncodeExtension(Oids.KeyUsage, critical: true, v => v.WriteBitString([0x80], unusedBitCount: 7)),
        };

        if (_profile.Kind == CertificateProfileKind.TlsClient)
        {
            // ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId  (RFC 5280 §4.2.1.12): id-kp-clientAuth
            head.Add(EncodeExtension(Oids.ExtendedKeyUsage, critical: false, v =>
            {
                using (v.PushSequence())
                {
                    v.WriteObjectIdentifier(Oids.ClientAuthEku);
                }
            }));
        }

        // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] KeyIdentifier OPTIONAL, ... }  (RFC 5280 §4.2.1.1)
        head.Add(EncodeExtension(Oids.AuthorityKeyIdentifier, critical: false, v =>
        {
            using (v.PushSequence())
            {
                v.WriteOctetString(_issuer.SubjectKeyIdentifier, new Asn1Tag(TagClass.ContextSpecific, 0));
            }
        }));
        return [.. head];
    }

    private byte[][] EncodeExtensionsTail()
    {
        var tail = new List<byte[]>();
        if (_profile.FreshestCrlUrl is { } freshest)
        {
            // FreshestCRL ::= CRLDistributionPoints   (RFC 5280 §4.2.1.15: where the delta CRLs are)
            tail.Add(EncodeExtension(Oids.FreshestCrl, critical: false, v => WriteDistributionPoints(v, freshest)));
        }

        // AuthorityInfoAccessSyntax ::= SEQUENCE SIZE (1..MAX) OF AccessDescription
        // AccessDescription ::= SEQUENCE { accessMethod OBJECT IDENTIFIER, accessLocation GeneralName }  (RFC 5280 §4.2.2.1)
        tail.Add(EncodeExtension(Oids.AuthorityInfoAccess, critical: false, v =>
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
        }));
        return [.. tail];
    }

    // CRLDistributionPoints ::= SEQUENCE SIZE (1..MAX) OF DistributionPoint
    // DistributionPoint ::= SEQUENCE { distributionPoint [0] DistributionPointName OPTIONAL, ... }
    // DistributionPointName ::= CHOICE { fullName [0] GeneralNames, ... }   (RFC 5280 §4.2.1.13)
    private static void WriteDistributionPoints(AsnWriter v, Uri uri)
    {
        using (v.PushSequence())
        using (v.PushSequence())
        using (v.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
        using (v.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
        {
            WriteUri(v, uri);
        }
    }

    // GeneralName ::= CHOICE { ..., uniformResourceIdentifier [6] IA5String, ... }
    private static void WriteUri(AsnWriter w, Uri uri) =>
        w.WriteCharacterString(UniversalTagNumber.IA5String, uri.AbsoluteUri, new Asn1Tag(TagClass.ContextSpecific, 6));

    private static byte[] EncodeExtension(string oid, bool critical, Action<AsnWriter> writeValue)
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        WriteExtension(w, oid, critical, writeValue);
        return w.Encode();
    }

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
