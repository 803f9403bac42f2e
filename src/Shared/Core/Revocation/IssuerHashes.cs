using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OfflinePki.Revocation;

/// <summary>The RFC 6960 §4.1.1 CertID hashes of an issuing CA.</summary>
public static class IssuerHashes
{
    /// <summary>
    /// SHA-1 of the value (excluding tag, length and unused-bits octet) of the certificate's subjectPublicKey
    /// BIT STRING: the issuerKeyHash that keys the registry. 20 octets.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="issuer"/> is null.</exception>
    public static byte[] KeyHash(X509Certificate2 issuer)
    {
        ArgumentNullException.ThrowIfNull(issuer);
        return KeyHash(issuer, HashAlgorithmName.SHA1);
    }

    /// <summary>The issuerKeyHash with another hash algorithm (SHA-1 or SHA-256 in practice).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="issuer"/> is null.</exception>
    /// <exception cref="CryptographicException"><paramref name="hash"/> is not supported.</exception>
    public static byte[] KeyHash(X509Certificate2 issuer, HashAlgorithmName hash)
    {
        ArgumentNullException.ThrowIfNull(issuer);
        return Hash(hash, issuer.PublicKey.EncodedKeyValue.RawData);
    }

    /// <summary>The issuerNameHash: hash of the DER of the issuing CA's subject Name.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="issuer"/> is null.</exception>
    public static byte[] NameHash(X509Certificate2 issuer, HashAlgorithmName hash)
    {
        ArgumentNullException.ThrowIfNull(issuer);
        return Hash(hash, issuer.SubjectName.RawData);
    }

    private static byte[] Hash(HashAlgorithmName hash, byte[] data)
    {
        if (hash == HashAlgorithmName.SHA1)
        {
#pragma warning disable CA5350 // SHA-1 is what RFC 6960 CertID and ResponderID byKey use; not a security hash here.
            return SHA1.HashData(data);
#pragma warning restore CA5350
        }

        if (hash == HashAlgorithmName.SHA256)
        {
            return SHA256.HashData(data);
        }

        if (hash == HashAlgorithmName.SHA384)
        {
            return SHA384.HashData(data);
        }

        if (hash == HashAlgorithmName.SHA512)
        {
            return SHA512.HashData(data);
        }

        throw new CryptographicException($"hash algorithm {hash.Name} is not supported for OCSP CertID");
    }
}
