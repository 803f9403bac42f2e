using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using OfflinePki.Asn1;

namespace OfflinePki.Keys;

/// <summary>
/// A public key that verifies certificate signatures and checkpoint signatures; created once and reused. The one
/// X.509 signature check of the product: the issuer's self-check of each fresh certificate, and the journal verifier's
/// and the mirror's check of every journaled one.
/// </summary>
/// <remarks>
/// An ECDSA key that has verified <see cref="TableAfter"/> certificate signatures (an issuing CA key while a journal
/// syncs), or that was asked for its table at once (the issuer's), builds its own precomputed table
/// (<see cref="EcdsaTables"/>, about 25 ms once) and verifies in about half the time from then on. A key
/// used a few times never pays for the table.
/// </remarks>
internal sealed class SignatureCheckKey : IDisposable
{
    /// <summary>Certificate signatures verified through the runtime before the key builds its table.</summary>
    internal const int TableAfter = 256;

    private readonly ECDsa? _ec;
    private readonly RSA? _rsa;
    private IFixedKeyEcdsaVerifier? _table;
    private int _uses;
    private int _disposed;

    private SignatureCheckKey(ECDsa? ec, RSA? rsa)
    {
        _ec = ec;
        _rsa = rsa;
    }

    /// <summary>Takes the ECDSA or RSA public key of <paramref name="certificate"/>.</summary>
    /// <param name="certificate">The signer's certificate.</param>
    /// <param name="tableNow">Build an ECDSA key's precomputed table now rather than after <see cref="TableAfter"/> verifies.</param>
    /// <exception cref="CryptographicException">The key is neither ECDSA nor RSA.</exception>
    public static SignatureCheckKey FromCertificate(X509Certificate2 certificate, bool tableNow = false)
    {
        var ec = certificate.GetECDsaPublicKey();
        if (ec is not null)
        {
            return new SignatureCheckKey(ec, null) { _table = tableNow ? EcdsaTables.TryCreate(ec) : null };
        }

        var rsa = certificate.GetRSAPublicKey();
        if (rsa is not null)
        {
            return new SignatureCheckKey(null, rsa);
        }

        throw new CryptographicException($"certificate {certificate.Subject} has neither an ECDSA nor an RSA public key");
    }

    /// <summary>Whether this key can check signatures of <paramref name="algorithmOid"/> (the signatureAlgorithm OID).</summary>
    public bool CanVerify(string algorithmOid) => Algorithm(algorithmOid) is { } a && (a.Ecdsa ? _ec is not null : _rsa is not null);

    /// <summary>Verifies an X.509 signature (RFC 5758 §3.2 ECDSA, RFC 8017 PKCS#1 v1.5) over <paramref name="tbs"/>.</summary>
    /// <returns>False for a bad signature, and for an algorithm this key cannot check (<see cref="CanVerify"/>).</returns>
    /// <exception cref="ObjectDisposedException">The key has been disposed.</exception>
    public bool VerifyX509Signature(string algorithmOid, ReadOnlySpan<byte> tbs, ReadOnlySpan<byte> signature)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Algorithm(algorithmOid) is not { } a)
        {
            return false;
        }

        try
        {
            return a.Ecdsa
                ? _ec is not null && VerifyEcdsa(tbs, signature, a.Hash)
                : _rsa is not null && _rsa.VerifyData(tbs, signature, a.Hash, RSASignaturePadding.Pkcs1);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    /// <summary>The hash and key type of an X.509 signatureAlgorithm (RFC 5758 §3.2 ECDSA, RFC 4055 §5 RSA); null for any other.</summary>
    private static (HashAlgorithmName Hash, bool Ecdsa)? Algorithm(string oid) => oid switch
    {
        Oids.EcdsaWithSha256 => (HashAlgorithmName.SHA256, true),
        Oids.EcdsaWithSha384 => (HashAlgorithmName.SHA384, true),
        "1.2.840.10045.4.3.4" => (HashAlgorithmName.SHA512, true),
        Oids.Sha256WithRsa => (HashAlgorithmName.SHA256, false),
        "1.2.840.113549.1.1.12" => (HashAlgorithmName.SHA384, false),
        "1.2.840.113549.1.1.13" => (HashAlgorithmName.SHA512, false),
        _ => null,
    };

    /// <summary>Whether the key has built its precomputed table (for tests).</summary>
    internal bool HasTable => Volatile.Read(ref _table) is not null;

    private bool VerifyEcdsa(ReadOnlySpan<byte> tbs, ReadOnlySpan<byte> signature, HashAlgorithmName hash)
    {
        var table = Volatile.Read(ref _table);
        if (table is null && Interlocked.Increment(ref _uses) == TableAfter)
        {
            table = EcdsaTables.TryCreate(_ec!); // null (the runtime stays in use) where no table can be built
            Volatile.Write(ref _table, table);
            if (Volatile.Read(ref _disposed) != 0)
            {
                Interlocked.Exchange(ref _table, null)?.Dispose(); // disposed while the table was built
            }
        }

        // Issue 16 finding 5: strict DER first, so the table and the runtime never see a form they could read differently.
        if (!EcdsaSignatureDer.IsStrict(signature, _ec!))
        {
            return false;
        }

        return table?.Verify(tbs, hash, signature) ?? _ec!.VerifyData(tbs, signature, hash, DSASignatureFormat.Rfc3279DerSequence);
    }

    /// <summary>
    /// Verifies a signature made by <see cref="AsymmetricSigningKey"/>: ECDSA with SHA-384 for keys of
    /// 384 bits or more, else SHA-256, DER ECDSA-Sig-Value; RSA PKCS#1 v1.5 with SHA-256.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The key has been disposed.</exception>
    public bool VerifySigningKeySignature(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        try
        {
            if (_ec is not null)
            {
                var hash = _ec.KeySize >= 384 ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA256;
                return EcdsaSignatureDer.IsStrict(signature, _ec) && _ec.VerifyData(data, signature, hash, DSASignatureFormat.Rfc3279DerSequence);
            }

            return _rsa!.VerifyData(data, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    /// <summary>Releases the keys and the precomputed table's native memory (issue 16 finding 6); idempotent.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Interlocked.Exchange(ref _table, null)?.Dispose();
        _ec?.Dispose();
        _rsa?.Dispose();
    }
}
