using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using OfflinePki.Asn1;
using OfflinePki.Keys;

namespace OfflinePki.Ocsp;

/// <summary>Issues delegated OCSP responder certificates (RFC 6960 §4.2.2.2) with the issuing CA key the mirror holds.</summary>
public static class OcspResponderCertificates
{
    /// <summary>
    /// Issues a short-lived responder certificate for <paramref name="responderPublicKey"/>: the subject of
    /// <paramref name="subject"/>, basicConstraints cA=false, keyUsage digitalSignature (critical), extKeyUsage
    /// id-kp-OCSPSigning (critical), id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1: clients do not check the responder's
    /// own revocation, hence the short life), and the CA's key identifier. notAfter is capped at the CA's notAfter.
    /// </summary>
    /// <param name="issuingCa">The issuing CA certificate (the CA whose certificates the responder answers for).</param>
    /// <param name="caKey">Its private key; must match <paramref name="issuingCa"/>.</param>
    /// <param name="responderPublicKey">The responder's public key.</param>
    /// <param name="subject">Subject of the new certificate (usually the previous responder certificate's).</param>
    /// <param name="notBefore">Start of validity (UTC, the injected clock's now).</param>
    /// <param name="validity">Length of validity; positive.</param>
    /// <param name="serial">Serial content octets (positive, at most 20 octets; from the serial-number source).</param>
    /// <returns>The new certificate (public part only).</returns>
    /// <exception cref="ArgumentException"><paramref name="validity"/> is not positive, the CA has expired at <paramref name="notBefore"/>, or <paramref name="caKey"/> does not match <paramref name="issuingCa"/>.</exception>
    public static X509Certificate2 Issue(X509Certificate2 issuingCa, ISigningKey caKey, PublicKey responderPublicKey, X500DistinguishedName subject,
        DateTimeOffset notBefore, TimeSpan validity, byte[] serial)
    {
        ArgumentNullException.ThrowIfNull(issuingCa);
        ArgumentNullException.ThrowIfNull(caKey);
        ArgumentNullException.ThrowIfNull(responderPublicKey);
        ArgumentNullException.ThrowIfNull(subject);
        ArgumentNullException.ThrowIfNull(serial);
        if (validity <= TimeSpan.Zero)
        {
            throw new ArgumentException("validity must be positive", nameof(validity));
        }

        if (!caKey.PublicKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(issuingCa.PublicKey.ExportSubjectPublicKeyInfo()))
        {
            throw new ArgumentException($"key {caKey.KeyId} does not match the issuing CA '{issuingCa.Subject}'", nameof(caKey));
        }

        var caNotAfter = new DateTimeOffset(issuingCa.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        var start = DerTime.Truncate(notBefore);
        if (start >= caNotAfter)
        {
            throw new ArgumentException($"the issuing CA '{issuingCa.Subject}' expired at {caNotAfter:O}", nameof(notBefore));
        }

        var end = start + validity < caNotAfter ? start + validity : caNotAfter;
        var req = new CertificateRequest(subject, responderPublicKey, HashOf(caKey));
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(new OidCollection { new Oid(Oids.OcspSigningEku) }, true));
        req.CertificateExtensions.Add(new X509Extension(Oids.OcspNoCheck, [0x05, 0x00], false)); // id-pkix-ocsp-nocheck ::= NULL
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(responderPublicKey, false));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuingCa, true, false));
        return req.Create(issuingCa.SubjectName, new SigningKeySignatureGenerator(caKey), start, end, serial);
    }

    /// <summary>The hash named by the key's signature algorithm (ecdsa-with-SHA384 → SHA-384; otherwise SHA-256).</summary>
    private static HashAlgorithmName HashOf(ISigningKey key)
    {
        string oid = new System.Formats.Asn1.AsnReader(key.SignatureAlgorithmIdentifier, System.Formats.Asn1.AsnEncodingRules.DER).ReadSequence().ReadObjectIdentifier();
        return oid == OfflinePki.Asn1.Oids.EcdsaWithSha384 ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA256;
    }
}
