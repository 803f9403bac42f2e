using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OfflinePki.Keys;

/// <summary>
/// A private key that signs, and nothing else. Backed by a software PKCS#8 file or a PKCS#11 token;
/// callers never see key material. Every signer in the product (certificates, CRLs, OCSP responses,
/// journal checkpoints, mirror receipts) goes through this interface.
/// </summary>
public interface ISigningKey
{
    /// <summary>A stable, non-secret identifier for logs: "sha256:" + hex SHA-256 of the SubjectPublicKeyInfo.</summary>
    string KeyId { get; }

    /// <summary>The public half, as it appears in a SubjectPublicKeyInfo.</summary>
    PublicKey PublicKey { get; }

    /// <summary>DER AlgorithmIdentifier of the signatures this key makes (e.g. ecdsa-with-SHA256, RFC 5758 §3.2).</summary>
    byte[] SignatureAlgorithmIdentifier { get; }

    /// <summary>
    /// Signs <paramref name="data"/> and returns the signature in X.509 form (DER ECDSA-Sig-Value for
    /// ECDSA, RFC 5480 §2.2; the raw PKCS#1 v1.5 block for RSA).
    /// </summary>
    /// <exception cref="SigningKeyUnavailableException">The key cannot sign now (token gone, PIN refused, ...).</exception>
    byte[] Sign(ReadOnlySpan<byte> data);
}

/// <summary>
/// The signing key cannot be used right now. Issuance and signing stop (fail closed); the message names the
/// key by <see cref="ISigningKey.KeyId"/> or its configured label, never by secret material.
/// </summary>
public sealed class SigningKeyUnavailableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SigningKeyUnavailableException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>
/// An <see cref="ISigningKey"/> over a .NET <see cref="ECDsa"/> or <see cref="RSA"/> object. The object may be
/// a software key or an OpenSSL engine key (<c>ECDsaOpenSsl</c> over a PKCS#11 handle); both sign alike.
/// Signs with SHA-256 for P-256 and RSA, SHA-384 for P-384.
/// </summary>
public sealed class AsymmetricSigningKey : ISigningKey, IDisposable
{
    private readonly ECDsa? _ecdsa;
    private readonly RSA? _rsa;
    private readonly HashAlgorithmName _hash;
    private readonly X509SignatureGenerator _generator;

    /// <summary>Wraps an ECDSA key (P-256 with SHA-256, P-384 with SHA-384).</summary>
    public AsymmetricSigningKey(ECDsa ecdsa)
    {
        ArgumentNullException.ThrowIfNull(ecdsa);
        _ecdsa = ecdsa;
        _hash = ecdsa.KeySize >= 384 ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA256;
        _generator = X509SignatureGenerator.CreateForECDsa(ecdsa);
        PublicKey = _generator.PublicKey;
        SignatureAlgorithmIdentifier = _generator.GetSignatureAlgorithmIdentifier(_hash);
        KeyId = ComputeKeyId(PublicKey);
    }

    /// <summary>Wraps an RSA key (PKCS#1 v1.5 with SHA-256).</summary>
    public AsymmetricSigningKey(RSA rsa)
    {
        ArgumentNullException.ThrowIfNull(rsa);
        _rsa = rsa;
        _hash = HashAlgorithmName.SHA256;
        _generator = X509SignatureGenerator.CreateForRSA(rsa, RSASignaturePadding.Pkcs1);
        PublicKey = _generator.PublicKey;
        SignatureAlgorithmIdentifier = _generator.GetSignatureAlgorithmIdentifier(_hash);
        KeyId = ComputeKeyId(PublicKey);
    }

    /// <inheritdoc />
    public string KeyId { get; }

    /// <inheritdoc />
    public PublicKey PublicKey { get; }

    /// <inheritdoc />
    public byte[] SignatureAlgorithmIdentifier { get; }

    /// <summary>The hash this key signs with.</summary>
    public HashAlgorithmName HashAlgorithm => _hash;

    /// <inheritdoc />
    public byte[] Sign(ReadOnlySpan<byte> data)
    {
        try
        {
            if (_ecdsa is not null)
            {
                return _ecdsa.SignData(data, _hash, DSASignatureFormat.Rfc3279DerSequence);
            }

            return _rsa!.SignData(data.ToArray(), _hash, RSASignaturePadding.Pkcs1);
        }
        catch (CryptographicException ex)
        {
            throw new SigningKeyUnavailableException($"signing key {KeyId} failed to sign: {ex.Message}", ex);
        }
    }

    /// <summary>An <see cref="X509SignatureGenerator"/> for APIs such as <see cref="CertificateRequest"/>.</summary>
    public X509SignatureGenerator AsSignatureGenerator() => _generator;

    /// <summary>A copy of <paramref name="certificate"/> joined to this key (for TLS; the copy holds its own key reference).</summary>
    internal X509Certificate2 CopyWithPrivateKey(X509Certificate2 certificate) =>
        _ecdsa is not null ? certificate.CopyWithPrivateKey(_ecdsa) : certificate.CopyWithPrivateKey(_rsa!);

    /// <summary>"sha256:" + lower-case hex SHA-256 of the DER SubjectPublicKeyInfo.</summary>
    public static string ComputeKeyId(PublicKey publicKey)
    {
        ArgumentNullException.ThrowIfNull(publicKey);
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(publicKey.ExportSubjectPublicKeyInfo()));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _ecdsa?.Dispose();
        _rsa?.Dispose();
    }
}

/// <summary>
/// Adapts any <see cref="ISigningKey"/> (software or PKCS#11) to <see cref="X509SignatureGenerator"/>, for .NET APIs
/// such as <see cref="CertificateRequest.Create(X500DistinguishedName, X509SignatureGenerator, DateTimeOffset, DateTimeOffset, byte[])"/>.
/// The key signs with the hash its algorithm identifier names; asking for another hash is an error.
/// </summary>
public sealed class SigningKeySignatureGenerator(ISigningKey key) : X509SignatureGenerator
{
    private readonly ISigningKey _key = key ?? throw new ArgumentNullException(nameof(key));

    /// <inheritdoc />
    public override byte[] GetSignatureAlgorithmIdentifier(HashAlgorithmName hashAlgorithm) => _key.SignatureAlgorithmIdentifier;

    /// <inheritdoc />
    public override byte[] SignData(byte[] data, HashAlgorithmName hashAlgorithm) => _key.Sign(data);

    /// <inheritdoc />
    protected override PublicKey BuildPublicKey() => _key.PublicKey;
}
