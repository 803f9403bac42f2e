using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using OfflinePki.Asn1;
using OfflinePki.Keys;

namespace OfflinePki.Journal;

/// <summary>
/// The parts of a DER X.509 certificate (RFC 5280 §4.1) needed to check who signed it and to index it,
/// read with <see cref="AsnReader"/> and without constructing an <see cref="X509Certificate2"/> (which costs
/// a native object per certificate). The slices point into the caller's buffer.
/// </summary>
/// <remarks>
/// <code>
/// Certificate  ::=  SEQUENCE  {
///      tbsCertificate       TBSCertificate,
///      signatureAlgorithm   AlgorithmIdentifier,
///      signatureValue       BIT STRING  }
/// TBSCertificate  ::=  SEQUENCE  {
///      version         [0]  EXPLICIT Version DEFAULT v1,
///      serialNumber         CertificateSerialNumber,
///      signature            AlgorithmIdentifier,
///      issuer               Name,
///      validity             Validity,
///      subject              Name,
///      ... }
/// </code>
/// </remarks>
public sealed class DerCertificateParts
{
    private DerCertificateParts() { }

    /// <summary>The whole DER TBSCertificate (the signed bytes).</summary>
    public ReadOnlyMemory<byte> Tbs { get; private init; }

    /// <summary>The outer signatureAlgorithm OID (dotted).</summary>
    public string SignatureAlgorithmOid { get; private init; } = string.Empty;

    /// <summary>The signatureValue bits (DER ECDSA-Sig-Value for ECDSA, the PKCS#1 block for RSA).</summary>
    public ReadOnlyMemory<byte> Signature { get; private init; }

    /// <summary>The serialNumber INTEGER contents (two's complement, big-endian, as encoded).</summary>
    public ReadOnlyMemory<byte> SerialNumber { get; private init; }

    /// <summary>DER of the issuer Name.</summary>
    public ReadOnlyMemory<byte> Issuer { get; private init; }

    /// <summary>DER of the subject Name.</summary>
    public ReadOnlyMemory<byte> Subject { get; private init; }

    /// <summary>validity.notBefore (UTC).</summary>
    public DateTimeOffset NotBefore { get; private init; }

    /// <summary>validity.notAfter (UTC).</summary>
    public DateTimeOffset NotAfter { get; private init; }

    /// <summary>Splits a DER certificate.</summary>
    /// <param name="der">A DER-encoded Certificate; nothing may follow it.</param>
    /// <exception cref="CryptographicException">The bytes are not a DER certificate (or the inner and outer signature algorithms differ).</exception>
    public static DerCertificateParts Parse(ReadOnlyMemory<byte> der)
    {
        try
        {
            var outer = new AsnReader(der, AsnEncodingRules.DER);
            var cert = outer.ReadSequence();
            outer.ThrowIfNotEmpty();
            var tbs = cert.ReadEncodedValue();
            var algId = cert.ReadEncodedValue();
            var outerAlg = new AsnReader(algId, AsnEncodingRules.DER).ReadSequence();
            string oid = outerAlg.ReadObjectIdentifier();
            if (!cert.TryReadPrimitiveBitString(out int unused, out var sig) || unused != 0)
            {
                throw new CryptographicException("certificate signatureValue is not a whole-byte BIT STRING");
            }

            cert.ThrowIfNotEmpty();

            var t = new AsnReader(tbs, AsnEncodingRules.DER).ReadSequence();
            var version = new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true);
            if (t.PeekTag().HasSameClassAndValue(version))
            {
                t.ReadEncodedValue();
            }

            var serial = t.ReadIntegerBytes();
            var innerAlg = t.ReadEncodedValue();
            if (!innerAlg.Span.SequenceEqual(algId.Span))
            {
                throw new CryptographicException("certificate signature algorithms differ between TBSCertificate and Certificate (RFC 5280 §4.1.1.2)");
            }

            var issuer = t.ReadEncodedValue();
            var validity = t.ReadSequence();
            var notBefore = ReadTime(validity);
            var notAfter = ReadTime(validity);
            validity.ThrowIfNotEmpty();
            var subject = t.ReadEncodedValue();
            return new DerCertificateParts
            {
                Tbs = tbs,
                SignatureAlgorithmOid = oid,
                Signature = sig,
                SerialNumber = serial,
                Issuer = issuer,
                Subject = subject,
                NotBefore = notBefore,
                NotAfter = notAfter,
            };
        }
        catch (AsnContentException ex)
        {
            throw new CryptographicException($"not a DER certificate: {ex.Message}", ex);
        }
    }

    private static DateTimeOffset ReadTime(AsnReader r)
    {
        var tag = r.PeekTag();
        return tag.HasSameClassAndValue(Asn1Tag.UtcTime) ? r.ReadUtcTime() : r.ReadGeneralizedTime();
    }
}

/// <summary>A public key that verifies certificate signatures and checkpoint signatures; created once and reused.</summary>
/// <remarks>
/// An ECDSA key that has verified <see cref="TableAfter"/> certificate signatures (an issuing CA key while a journal
/// syncs) builds its own precomputed table (<see cref="FixedKeyEcdsaVerifier"/>, about 25 ms once) and verifies in
/// about half the time from then on. A key used a few times never pays for the table.
/// </remarks>
internal sealed class SignatureCheckKey : IDisposable
{
    /// <summary>Certificate signatures verified through the runtime before the key builds its table.</summary>
    internal const int TableAfter = 256;

    private readonly ECDsa? _ec;
    private readonly RSA? _rsa;
    private FixedKeyEcdsaVerifier? _table;
    private int _uses;

    private SignatureCheckKey(ECDsa? ec, RSA? rsa)
    {
        _ec = ec;
        _rsa = rsa;
    }

    /// <summary>Takes the ECDSA or RSA public key of <paramref name="certificate"/>.</summary>
    /// <exception cref="CryptographicException">The key is neither ECDSA nor RSA.</exception>
    public static SignatureCheckKey FromCertificate(X509Certificate2 certificate)
    {
        var ec = certificate.GetECDsaPublicKey();
        if (ec is not null)
        {
            return new SignatureCheckKey(ec, null);
        }

        var rsa = certificate.GetRSAPublicKey();
        if (rsa is not null)
        {
            return new SignatureCheckKey(null, rsa);
        }

        throw new CryptographicException($"certificate {certificate.Subject} has neither an ECDSA nor an RSA public key");
    }

    /// <summary>Verifies an X.509 signature (RFC 5758 §3.2 ECDSA, RFC 8017 PKCS#1 v1.5) over <paramref name="tbs"/>.</summary>
    public bool VerifyX509Signature(string algorithmOid, ReadOnlySpan<byte> tbs, ReadOnlySpan<byte> signature)
    {
        try
        {
            switch (algorithmOid)
            {
                case Oids.EcdsaWithSha256 when _ec is not null:
                    return VerifyEcdsa(tbs, signature, HashAlgorithmName.SHA256);
                case Oids.EcdsaWithSha384 when _ec is not null:
                    return VerifyEcdsa(tbs, signature, HashAlgorithmName.SHA384);
                case "1.2.840.10045.4.3.4" when _ec is not null:
                    return VerifyEcdsa(tbs, signature, HashAlgorithmName.SHA512);
                case Oids.Sha256WithRsa when _rsa is not null:
                    return _rsa.VerifyData(tbs, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
                case "1.2.840.113549.1.1.12" when _rsa is not null:
                    return _rsa.VerifyData(tbs, signature, HashAlgorithmName.SHA384, RSASignaturePadding.Pkcs1);
                case "1.2.840.113549.1.1.13" when _rsa is not null:
                    return _rsa.VerifyData(tbs, signature, HashAlgorithmName.SHA512, RSASignaturePadding.Pkcs1);
                default:
                    return false;
            }
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    /// <summary>Whether the key has built its precomputed table (for tests).</summary>
    internal bool HasTable => Volatile.Read(ref _table) is not null;

    private bool VerifyEcdsa(ReadOnlySpan<byte> tbs, ReadOnlySpan<byte> signature, HashAlgorithmName hash)
    {
        var table = Volatile.Read(ref _table);
        if (table is null && Interlocked.Increment(ref _uses) == TableAfter)
        {
            table = FixedKeyEcdsaVerifier.TryCreate(_ec!); // null (the runtime stays in use) where libcrypto 3 is missing
            Volatile.Write(ref _table, table);
        }

        return table?.Verify(tbs, hash, signature) ?? _ec!.VerifyData(tbs, signature, hash, DSASignatureFormat.Rfc3279DerSequence);
    }

    /// <summary>
    /// Verifies a signature made by <see cref="Keys.AsymmetricSigningKey"/>: ECDSA with SHA-384 for keys of
    /// 384 bits or more, else SHA-256, DER ECDSA-Sig-Value; RSA PKCS#1 v1.5 with SHA-256.
    /// </summary>
    public bool VerifySigningKeySignature(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        try
        {
            if (_ec is not null)
            {
                var hash = _ec.KeySize >= 384 ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA256;
                return _ec.VerifyData(data, signature, hash, DSASignatureFormat.Rfc3279DerSequence);
            }

            return _rsa!.VerifyData(data, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        _ec?.Dispose();
        _rsa?.Dispose();
    }
}
