using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using OfflinePki.Keys;

namespace OfflinePki.Issuance;

/// <summary>The issuing CA: its certificate, its chain up to the root, and the key that signs device certificates.</summary>
public sealed class IssuingAuthority
{
    /// <summary>Creates the authority and checks that key and certificate belong together.</summary>
    /// <param name="certificate">The issuing CA certificate (basicConstraints cA=TRUE, keyUsage keyCertSign).</param>
    /// <param name="signingKey">Its private key (software or HSM).</param>
    /// <param name="chainAboveIssuer">Certificates above the issuing CA, ending with the root; returned by EST cacerts.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The key's public half is not the certificate's, or the certificate is not a CA that may sign certificates.</exception>
    public IssuingAuthority(X509Certificate2 certificate, ISigningKey signingKey, IReadOnlyList<X509Certificate2> chainAboveIssuer)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(signingKey);
        ArgumentNullException.ThrowIfNull(chainAboveIssuer);
        if (!certificate.PublicKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(signingKey.PublicKey.ExportSubjectPublicKeyInfo()))
        {
            throw new ArgumentException($"signing key {signingKey.KeyId} does not match issuing CA certificate '{certificate.Subject}'", nameof(signingKey));
        }

        var bc = certificate.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault();
        var ku = certificate.Extensions.OfType<X509KeyUsageExtension>().FirstOrDefault();
        if (bc is null || !bc.CertificateAuthority || (ku is not null && !ku.KeyUsages.HasFlag(X509KeyUsageFlags.KeyCertSign)))
        {
            throw new ArgumentException($"'{certificate.Subject}' is not a CA certificate with keyCertSign (RFC 5280 §4.2.1.9, §4.2.1.3)", nameof(certificate));
        }

        Certificate = certificate;
        SigningKey = signingKey;
        ChainAboveIssuer = chainAboveIssuer;
        SubjectKeyIdentifier = certificate.Extensions.OfType<X509SubjectKeyIdentifierExtension>().FirstOrDefault()?.SubjectKeyIdentifierBytes.ToArray()
            ?? ComputeKeyIdentifier(certificate.PublicKey.ExportSubjectPublicKeyInfo());
    }

    /// <summary>The issuing CA certificate.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The CA signing key.</summary>
    public ISigningKey SigningKey { get; }

    /// <summary>Certificates above the issuing CA, root last.</summary>
    public IReadOnlyList<X509Certificate2> ChainAboveIssuer { get; }

    /// <summary>The CA's key identifier (its SKI extension, or RFC 5280 §4.2.1.2 method 1 when absent); used as AKI.</summary>
    public byte[] SubjectKeyIdentifier { get; }

    /// <summary>The raw DER of the CA subject, used verbatim as the issuer name (RFC 5280 §4.1.2.4).</summary>
    public ReadOnlyMemory<byte> SubjectName => Certificate.SubjectName.RawData;

    /// <summary>
    /// RFC 5280 §4.2.1.2 method 1: SHA-1 of the BIT STRING subjectPublicKey (without tag, length and unused-bits octet).
    /// </summary>
    /// <param name="subjectPublicKeyInfo">DER SubjectPublicKeyInfo.</param>
    /// <returns>20 bytes.</returns>
    /// <exception cref="AsnContentException">Not a SubjectPublicKeyInfo.</exception>
    public static byte[] ComputeKeyIdentifier(ReadOnlySpan<byte> subjectPublicKeyInfo)
    {
        var reader = new AsnReader(subjectPublicKeyInfo.ToArray(), AsnEncodingRules.DER).ReadSequence();
        reader.ReadSequence();
        byte[] key = reader.ReadBitString(out _);
#pragma warning disable CA5350 // SHA-1 is what RFC 5280 §4.2.1.2 method 1 specifies; it is an identifier, not a security function.
        return SHA1.HashData(key);
#pragma warning restore CA5350
    }
}
