using System.Security.Cryptography.X509Certificates;
using NUnit.Framework;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.Ocsp;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.Ocsp;
using Org.BouncyCastle.X509;
using BcCertificate = Org.BouncyCastle.X509.X509Certificate;
using NetBigInteger = System.Numerics.BigInteger;

namespace OfflinePki.Tests.Support;

/// <summary>
/// A second, independent reader of what the product signs: BouncyCastle parses each certificate, CRL and OCSP
/// response, checks its signature with the issuer's (or responder's) public key and the structural rules below,
/// and hands back what it read so the test can assert that BouncyCastle sees the same serials, statuses, reasons
/// and numbers that openssl (or the test itself) saw. Every failed check is an NUnit assertion failure naming the
/// RFC rule; nothing here is shared with the product's AsnReader/AsnWriter code.
/// </summary>
internal static class BouncyOracle
{
    /// <summary>id-kp-OCSPSigning (RFC 6960 §4.2.2.2).</summary>
    private const string OcspSigning = "1.3.6.1.5.5.7.3.9";

    /// <summary>id-pkix-ocsp-extended-revoke (RFC 6960 §4.4.8).</summary>
    private const string ExtendedRevoke = "1.3.6.1.5.5.7.48.1.9";

    /// <summary>id-on-hardwareModuleName (RFC 4108 §5).</summary>
    private const string HardwareModuleName = "1.3.6.1.5.5.7.8.4";

    /// <summary>Critical certificate extensions a relying party must understand (RFC 5280 §4.2); anything else critical is refused.</summary>
    private static readonly HashSet<string> KnownCritical =
    [
        X509Extensions.KeyUsage.Id, X509Extensions.BasicConstraints.Id, X509Extensions.SubjectAlternativeName.Id, X509Extensions.ExtendedKeyUsage.Id,
        X509Extensions.CertificatePolicies.Id, X509Extensions.NameConstraints.Id, X509Extensions.PolicyConstraints.Id, X509Extensions.InhibitAnyPolicy.Id,
    ];

    /// <summary>
    /// Parses a DER certificate with <see cref="X509CertificateParser"/>, and checks: the bytes re-encode unchanged
    /// (DER), version 3, the issuer name equals <paramref name="issuer"/>'s subject, the signature verifies with its
    /// public key (BouncyCastle also checks the inner and outer signature algorithms agree), the authority key id
    /// equals the issuer's subject key id (RFC 5280 §4.2.1.1), notBefore precedes notAfter, and no unknown extension
    /// is critical.
    /// </summary>
    public static BcCertificate Certificate(byte[] der, X509Certificate2 issuer)
    {
        ArgumentNullException.ThrowIfNull(der);
        ArgumentNullException.ThrowIfNull(issuer);
        var ca = Parse(issuer.RawData);
        var cert = new X509CertificateParser().ReadCertificate(der);
        Assert.That(cert, Is.Not.Null, "BouncyCastle found no certificate in the bytes");
        AssertSignedBy("certificate", der, cert.GetEncoded(), (cert.Version, 3, "§4.1.2.1"), cert.IssuerDN, ca, () => cert.Verify(ca.GetPublicKey()));
        Assert.That(cert.NotBefore, Is.LessThanOrEqualTo(cert.NotAfter), "RFC 5280 §4.1.2.5: notBefore after notAfter");
        AssertAuthorityKeyId(cert, ca);
        var unknown = cert.GetCriticalExtensionOids().Where(o => !KnownCritical.Contains(o)).ToList();
        Assert.That(unknown, Is.Empty, "RFC 5280 §4.2: unknown critical extensions");
        return cert;
    }

    /// <summary>Certificate from a PEM file (one CERTIFICATE block), checked as <see cref="Certificate(byte[], X509Certificate2)"/>.</summary>
    public static BcCertificate CertificatePem(string pemPath, X509Certificate2 issuer)
    {
        using var loaded = X509CertificateLoader.LoadCertificateFromFile(pemPath);
        return Certificate(loaded.RawData, issuer);
    }

    /// <summary>The certificate's serial as the product writes it (<c>SerialNumber.ToHex</c> of the DER INTEGER content).</summary>
    public static string SerialHex(BcCertificate cert) => Hex(cert.SerialNumber);

    /// <summary>The values of one subject attribute, e.g. 2.5.4.5 (serialNumber) or 2.5.4.3 (commonName).</summary>
    public static IList<string> SubjectValues(BcCertificate cert, string oid) => cert.SubjectDN.GetValueList(new DerObjectIdentifier(oid));

    /// <summary>The hwSerialNum of the SAN otherName hardwareModuleName (RFC 4108 §5), or null when there is none.</summary>
    public static byte[]? HardwareModuleSerial(BcCertificate cert)
    {
        var san = cert.GetSubjectAlternativeNameExtension();
        if (san is null)
        {
            return null;
        }

        foreach (var name in san.GetNames().Where(n => n.TagNo == GeneralName.OtherName))
        {
            var other = OtherName.GetInstance(name.Name);
            if (other.TypeID.Id == HardwareModuleName)
            {
                var hw = Asn1Sequence.GetInstance(other.Value);
                Assert.That(hw.Count, Is.EqualTo(2), "HardwareModuleName ::= SEQUENCE { hwType, hwSerialNum }");
                DerObjectIdentifier.GetInstance(hw[0]);
                return Asn1OctetString.GetInstance(hw[1]).GetOctets();
            }
        }

        return null;
    }

    /// <summary>
    /// Parses a DER CRL with <see cref="X509CrlParser"/>, and checks: the bytes re-encode unchanged, version 2, the
    /// issuer name equals <paramref name="issuer"/>'s subject, the signature verifies with its key, the authority key id
    /// matches (RFC 5280 §5.2.1), a non-critical cRLNumber (§5.2.3) is present, a deltaCRLIndicator (§5.2.4) is critical
    /// and names an older base, thisUpdate precedes nextUpdate, entry serials are unique, and no entry carries reasonCode
    /// unspecified (§5.3.1) or a critical reasonCode.
    /// </summary>
    public static BouncyCrl Crl(byte[] der, X509Certificate2 issuer)
    {
        ArgumentNullException.ThrowIfNull(der);
        ArgumentNullException.ThrowIfNull(issuer);
        var ca = Parse(issuer.RawData);
        var crl = new X509CrlParser().ReadCrl(der);
        Assert.That(crl, Is.Not.Null, "BouncyCastle found no CRL in the bytes");
        AssertSignedBy("CRL", der, crl.GetEncoded(), (crl.Version, 2, "§5.1.2.1"), crl.IssuerDN, ca, () => crl.Verify(ca.GetPublicKey()));
        AssertAuthorityKeyId(crl, ca);

        var number = crl.GetExtension(X509Extensions.CrlNumber);
        Assert.That(number, Is.Not.Null, "RFC 5280 §5.2.3: cRLNumber is required");
        Assert.That(number!.IsCritical, Is.False, "RFC 5280 §5.2.3: cRLNumber is non-critical");
        var crlNumber = ToNet(DerInteger.GetInstance(crl.GetExtensionParsedValue(X509Extensions.CrlNumber)).Value);
        Assert.That(crlNumber.Sign, Is.GreaterThanOrEqualTo(0), "RFC 5280 §5.2.3: cRLNumber is non-negative");

        NetBigInteger? deltaBase = null;
        var delta = crl.GetExtension(X509Extensions.DeltaCrlIndicator);
        if (delta is not null)
        {
            Assert.That(delta.IsCritical, Is.True, "RFC 5280 §5.2.4: deltaCRLIndicator is critical");
            deltaBase = ToNet(DerInteger.GetInstance(crl.GetExtensionParsedValue(X509Extensions.DeltaCrlIndicator)).Value);
            Assert.That(deltaBase, Is.LessThan(crlNumber), "RFC 5280 §5.2.4: the base CRL number is lower than the delta's");
        }

        DateTimeOffset thisUpdate = Utc(crl.ThisUpdate);
        DateTimeOffset? nextUpdate = crl.NextUpdate is { } n ? Utc(n) : null;
        Assert.That(nextUpdate, Is.Not.Null, "RFC 5280 §5.1.2.5: conforming CAs include nextUpdate");
        Assert.That(thisUpdate, Is.LessThanOrEqualTo(nextUpdate!.Value), "RFC 5280 §5.1.2.5: nextUpdate before thisUpdate");

        var entries = new List<BouncyCrlEntry>();
        foreach (var e in crl.GetRevokedCertificates() ?? new HashSet<X509CrlEntry>())
        {
            int? reason = null;
            var reasonExt = e.GetExtension(X509Extensions.ReasonCode);
            if (reasonExt is not null)
            {
                Assert.That(reasonExt.IsCritical, Is.False, "RFC 5280 §5.3.1: reasonCode is non-critical");
                reason = DerEnumerated.GetInstance(e.GetExtensionParsedValue(X509Extensions.ReasonCode)).IntValueExact;
                Assert.That(reason, Is.Not.Zero, "RFC 5280 §5.3.1: omit reasonCode rather than write unspecified");
            }

            DateTimeOffset? invalidity = e.GetExtension(X509Extensions.InvalidityDate) is null
                ? null
                : Utc(Asn1GeneralizedTime.GetInstance(e.GetExtensionParsedValue(X509Extensions.InvalidityDate)).ToDateTime());
            entries.Add(new BouncyCrlEntry(Hex(e.SerialNumber), Utc(e.RevocationDate), reason, invalidity));
        }

        Assert.That(entries.Select(e => e.SerialHex), Is.Unique, "RFC 5280 §5.1.2.6: a serial appears once");
        var freshest = crl.GetExtension(X509Extensions.FreshestCrl);
        Assert.That(freshest is not null && deltaBase is not null, Is.False, "RFC 5280 §5.2.6: freshestCRL never appears in a delta CRL");
        IssuingDistributionPoint? idp = null;
        if (crl.GetExtension(X509Extensions.IssuingDistributionPoint) is { } idpExt)
        {
            Assert.That(idpExt.IsCritical, Is.True, "RFC 5280 §5.2.5: issuingDistributionPoint is critical");
            idp = IssuingDistributionPoint.GetInstance(crl.GetExtensionParsedValue(X509Extensions.IssuingDistributionPoint));
        }

        return new BouncyCrl(crl, crlNumber, deltaBase, thisUpdate, nextUpdate.Value, entries, freshest is not null, idp);
    }

    /// <summary>
    /// Parses a DER OCSPResponse (RFC 6960 §4.2.1) with <see cref="OcspResp"/>. For a successful one it reads the
    /// BasicOCSPResponse and checks: the re-encoding is unchanged; the responder certificate (the one in the response,
    /// else <paramref name="responder"/>, else the CA) verifies the signature; a delegated responder is issued by
    /// <paramref name="issuer"/>, verifies under its key and carries id-kp-OCSPSigning (RFC 6960 §4.2.2.2); the
    /// ResponderID names that certificate (byKey SHA-1 or byName, §4.2.2.3); every CertID names <paramref name="issuer"/>
    /// (issuerNameHash and issuerKeyHash under its own hash algorithm); thisUpdate precedes nextUpdate; and a revocation
    /// reason is a defined CRLReason (RFC 5280 §5.3.1).
    /// </summary>
    public static BouncyOcspResponse OcspResponse(byte[] der, X509Certificate2 issuer, X509Certificate2? responder = null)
    {
        ArgumentNullException.ThrowIfNull(der);
        ArgumentNullException.ThrowIfNull(issuer);
        var ca = Parse(issuer.RawData);
        var resp = new OcspResp(der);
        Assert.That(resp.GetEncoded(), Is.EqualTo(der), "BouncyCastle re-encodes the OCSP response differently: not DER");
        if (resp.Status != OcspRespStatus.Successful)
        {
            Assert.That(resp.ToAsn1Structure().ResponseBytes, Is.Null, "RFC 6960 §4.2.1: only a successful response carries responseBytes");
            return new BouncyOcspResponse(resp.Status, null, null, null, null, [], false);
        }

        var basic = resp.GetResponseObject() as BasicOcspResp;
        Assert.That(basic, Is.Not.Null, "RFC 6960 §4.2.1: a successful response carries id-pkix-ocsp-basic");
        var included = basic!.GetCerts();
        var signer = included.Length > 0 ? included[0] : Parse((responder ?? issuer).RawData);
        if (responder is not null)
        {
            Assert.That(signer.GetEncoded(), Is.EqualTo(responder.RawData), "the response carries another responder certificate than expected");
        }

        Assert.That(basic.Verify(signer.GetPublicKey()), Is.True, "BouncyCastle: the OCSP response signature does not verify with the responder key");
        if (!signer.Equals(ca))
        {
            Assert.That(signer.IssuerDN.Equivalent(ca.SubjectDN, inOrder: true), Is.True, "RFC 6960 §4.2.2.2: a delegated responder is issued by the CA");
            Assert.DoesNotThrow(() => signer.Verify(ca.GetPublicKey()), "RFC 6960 §4.2.2.2: the responder certificate does not verify with the CA key");
            Assert.That(signer.GetExtendedKeyUsage()?.Select(o => o.Id), Does.Contain(OcspSigning), "RFC 6960 §4.2.2.2: id-kp-OCSPSigning");
        }

        Assert.That(basic.ResponderId.Equals(new RespID(signer.GetPublicKey())) || basic.ResponderId.Equals(new RespID(signer.SubjectDN)), Is.True,
            "RFC 6960 §4.2.2.3: the ResponderID does not name the signing certificate");

        var singles = new List<BouncyOcspSingle>();
        foreach (var s in basic.Responses)
        {
            var id = s.GetCertID();
            Assert.That(id.MatchesIssuer(ca), Is.True, $"RFC 6960 §4.1.1: CertID (hash {id.HashAlgOid}) does not name the CA");
            DateTimeOffset thisUpdate = Utc(s.ThisUpdate);
            DateTimeOffset? nextUpdate = s.NextUpdate is { } nu ? Utc(nu) : null;
            if (nextUpdate is not null)
            {
                Assert.That(thisUpdate, Is.LessThanOrEqualTo(nextUpdate.Value), "RFC 6960 §4.2.2.1: nextUpdate before thisUpdate");
            }

            var (status, time, reason) = s.GetCertStatus() switch
            {
                null => (OracleCertStatus.Good, (DateTimeOffset?)null, (int?)null),
                RevokedStatus r => (OracleCertStatus.Revoked, Utc(r.RevocationTime), r.HasRevocationReason ? r.RevocationReason : (int?)null),
                UnknownStatus => (OracleCertStatus.Unknown, null, null),
                var other => throw new AssertionException($"unexpected CertStatus {other.GetType().Name}"),
            };
            if (reason is not null)
            {
                Assert.That(reason, Is.InRange(0, 10).And.Not.EqualTo(7), "RFC 5280 §5.3.1 CRLReason range (7 is unused)");
            }

            singles.Add(new BouncyOcspSingle(Hex(id.SerialNumber), id.HashAlgOid, status, time, reason, thisUpdate, nextUpdate));
        }

        byte[]? nonce = null;
        if (basic.ResponseExtensions?.GetExtension(OcspObjectIdentifiers.PkixOcspNonce) is { } nonceExt)
        {
            // RFC 8954 §2.1: Nonce ::= OCTET STRING (SIZE(1..32)), inside extnValue.
            nonce = Asn1OctetString.GetInstance(nonceExt.GetParsedValue()).GetOctets();
        }

        bool extendedRevoke = basic.ResponseExtensions?.GetExtension(new DerObjectIdentifier(ExtendedRevoke)) is not null;
        return new BouncyOcspResponse(resp.Status, basic, signer, nonce, Utc(basic.ProducedAt), singles, extendedRevoke);
    }

    /// <summary>
    /// Reads <paramref name="der"/> as <see cref="OcspResponse"/> does and checks that BouncyCastle agrees with the text
    /// of <c>openssl ocsp -resp_text</c> for the same bytes: as many SingleResponses, each "Cert Status:" the same,
    /// and a nonce exactly when openssl printed one.
    /// </summary>
    public static BouncyOcspResponse OcspAgreesWithOpenSsl(string opensslText, byte[] der, X509Certificate2 issuer, X509Certificate2? responder = null)
    {
        ArgumentNullException.ThrowIfNull(opensslText);
        var bc = OcspResponse(der, issuer, responder);
        Assert.That(bc.Responses, Has.Count.EqualTo(System.Text.RegularExpressions.Regex.Count(opensslText, "Cert Status: ")), "BouncyCastle and openssl count different SingleResponses");
        foreach (var single in bc.Responses)
        {
            Assert.That(opensslText, Does.Contain("Cert Status: " + single.Status.ToString().ToLowerInvariant()), $"BouncyCastle reads {single.Status} for {single.SerialHex}; openssl does not");
        }

        Assert.That(bc.Nonce is not null, Is.EqualTo(opensslText.Contains("OCSP Nonce", StringComparison.Ordinal)), "BouncyCastle and openssl disagree on the nonce");
        return bc;
    }

    /// <summary>A product serial (big-endian DER INTEGER content) in <see cref="SerialHex"/> form, for comparing.</summary>
    public static string Hex(byte[] serial) => Hex(new Org.BouncyCastle.Math.BigInteger(1, serial));

    private static string Hex(Org.BouncyCastle.Math.BigInteger value) => Convert.ToHexString(value.ToByteArray());

    private static NetBigInteger ToNet(Org.BouncyCastle.Math.BigInteger value) => new(value.ToByteArray(), isUnsigned: false, isBigEndian: true);

    private static DateTimeOffset Utc(DateTime t) => new(DateTime.SpecifyKind(t, DateTimeKind.Utc));

    private static BcCertificate Parse(byte[] der) => new X509CertificateParser().ReadCertificate(der);

    /// <summary>DER (re-encodes unchanged), the version with extensions, the issuer name, and the signature under the CA key.</summary>
    private static void AssertSignedBy(string what, byte[] der, byte[] reEncoded, (int Actual, int Expected, string Section) version, X509Name issuerName,
        BcCertificate ca, Action verify)
    {
        Assert.That(reEncoded, Is.EqualTo(der), $"BouncyCastle re-encodes the {what} differently: not DER");
        Assert.That(version.Actual, Is.EqualTo(version.Expected), $"RFC 5280 {version.Section}: a {what} with extensions is v{version.Expected}");
        Assert.That(issuerName.Equivalent(ca.SubjectDN, inOrder: true), Is.True, $"{what} issuer {issuerName} is not the CA {ca.SubjectDN}");
        Assert.DoesNotThrow(() => verify(), $"BouncyCastle: the {what} signature does not verify with the CA key");
    }

    private static void AssertAuthorityKeyId(X509ExtensionBase signed, BcCertificate ca)
    {
        var ski = ca.GetExtensionParsedValue(X509Extensions.SubjectKeyIdentifier);
        var aki = signed.GetExtensionParsedValue(X509Extensions.AuthorityKeyIdentifier);
        Assert.That(aki, Is.Not.Null, "RFC 5280 §4.2.1.1 / §5.2.1: authorityKeyIdentifier is required");
        if (ski is not null)
        {
            Assert.That(AuthorityKeyIdentifier.GetInstance(aki).KeyIdentifier?.GetOctets(), Is.EqualTo(SubjectKeyIdentifier.GetInstance(ski).GetKeyIdentifier()),
                "authorityKeyIdentifier differs from the CA's subjectKeyIdentifier");
        }
    }
}

/// <summary>What BouncyCastle read from a CRL; <see cref="Raw"/> for anything else.</summary>
internal sealed record BouncyCrl(X509Crl Raw, NetBigInteger CrlNumber, NetBigInteger? DeltaBaseCrlNumber, DateTimeOffset ThisUpdate, DateTimeOffset NextUpdate,
    IReadOnlyList<BouncyCrlEntry> Entries, bool HasFreshestCrl, IssuingDistributionPoint? IssuingDistributionPoint)
{
    /// <summary>The entry for a product serial, or null.</summary>
    public BouncyCrlEntry? Entry(byte[] serial) => Entries.SingleOrDefault(e => e.SerialHex == BouncyOracle.Hex(serial));
}

/// <summary>One revokedCertificates entry: reason is the RFC 5280 §5.3.1 code, null when omitted (unspecified).</summary>
internal sealed record BouncyCrlEntry(string SerialHex, DateTimeOffset RevocationDate, int? Reason, DateTimeOffset? InvalidityDate);

/// <summary>A certificate status in an OCSP SingleResponse (RFC 6960 §4.2.1).</summary>
internal enum OracleCertStatus
{
    /// <summary>good.</summary>
    Good,

    /// <summary>revoked.</summary>
    Revoked,

    /// <summary>unknown.</summary>
    Unknown,
}

/// <summary>What BouncyCastle read from an OCSP response; <see cref="Basic"/> and <see cref="Responder"/> are null unless successful.</summary>
internal sealed record BouncyOcspResponse(int Status, BasicOcspResp? Basic, BcCertificate? Responder, byte[]? Nonce, DateTimeOffset? ProducedAt,
    IReadOnlyList<BouncyOcspSingle> Responses, bool HasExtendedRevoke)
{
    /// <summary>The single response for a product serial; fails unless there is exactly one.</summary>
    public BouncyOcspSingle For(byte[] serial) => Responses.Single(r => r.SerialHex == BouncyOracle.Hex(serial));
}

/// <summary>One SingleResponse: the CertID serial and hash, the status with its revocation time and reason code, and the validity.</summary>
internal sealed record BouncyOcspSingle(string SerialHex, string HashAlgOid, OracleCertStatus Status, DateTimeOffset? RevocationTime, int? Reason,
    DateTimeOffset ThisUpdate, DateTimeOffset? NextUpdate);
