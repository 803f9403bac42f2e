using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using OfflinePki.Asn1;

namespace OfflinePki.Ocsp;

/// <summary>Checks that one certificate's signature was made by another certificate's key (RFC 5280 §4.1.1.3).</summary>
internal static class CertificateSignature
{
    /// <summary>True when <paramref name="certificate"/> verifies under <paramref name="issuer"/>'s public key (ECDSA SHA-256/384, RSA PKCS#1 SHA-256).</summary>
    public static bool IsSignedBy(X509Certificate2 certificate, X509Certificate2 issuer)
    {
        // Certificate  ::=  SEQUENCE  {
        //      tbsCertificate       TBSCertificate,
        //      signatureAlgorithm   AlgorithmIdentifier,
        //      signatureValue       BIT STRING  }
        try
        {
            var outer = new AsnReader(certificate.RawData, AsnEncodingRules.DER).ReadSequence();
            var tbs = outer.ReadEncodedValue();
            var alg = outer.ReadSequence();
            var oid = alg.ReadObjectIdentifier();
            var signature = outer.ReadBitString(out _);
            switch (oid)
            {
                case Oids.EcdsaWithSha256:
                case Oids.EcdsaWithSha384:
                    using (var ec = issuer.GetECDsaPublicKey())
                    {
                        return ec is not null && EcdsaSignatureDer.IsStrict(signature, ec) && ec.VerifyData(tbs.Span, signature,
                            oid == Oids.EcdsaWithSha256 ? HashAlgorithmName.SHA256 : HashAlgorithmName.SHA384, DSASignatureFormat.Rfc3279DerSequence);
                    }

                case Oids.Sha256WithRsa:
                    using (var rsa = issuer.GetRSAPublicKey())
                    {
                        return rsa is not null && rsa.VerifyData(tbs.Span, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
                    }

                default:
                    return false;
            }
        }
        catch (Exception ex) when (ex is AsnContentException or CryptographicException)
        {
            return false;
        }
    }
}
