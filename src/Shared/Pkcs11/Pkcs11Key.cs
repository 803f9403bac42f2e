using System.Formats.Asn1;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;

namespace OfflinePki.Keys.Pkcs11;

/// <summary>
/// An <see cref="ISigningKey"/> held in a PKCS#11 token, named by an RFC 7512 URI and used through Pkcs11Interop
/// (<see cref="Pkcs11Module"/> owns the module, its sessions and the login).
/// <para>
/// Mechanisms: an EC key signs the locally computed hash with <c>CKM_ECDSA</c> (PKCS#11 v2.40 §2.3.6) and the
/// token's r‖s is re-encoded as a DER Ecdsa-Sig-Value (RFC 3279 §2.2.3); an RSA key signs with
/// <c>CKM_SHA256_RSA_PKCS</c>, or the SHA-384/SHA-512 variant when the configured hash says so (RFC 8017 §8.2).
/// Default hashes: SHA-256 for P-256 and RSA, SHA-384 for P-384, SHA-512 for P-521.
/// </para>
/// <para>
/// Fail closed: when a signature fails (token removed, session lost, module finalised) the key reports
/// <see cref="SigningKeyUnavailableException"/> and becomes unavailable; later calls retry at most once per
/// <see cref="RetryInterval"/> (doubling up to 30 s): the module is re-initialised, the PIN source re-read, the key
/// found again and checked with a probe signature against the public key first seen, then service resumes without a
/// restart.
/// </para>
/// </summary>
public sealed class Pkcs11Key : ISigningKey, IDisposable
{
    private static readonly byte[] ProbeData = "OfflinePki PKCS#11 probe"u8.ToArray();
    private readonly string _label;
    private readonly string _uri;
    private readonly Pkcs11Uri _parsed;
    private readonly Pkcs11Module _module;
    private readonly Func<byte[]> _pin;
    private readonly HashAlgorithmName? _configuredHash;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private Opened? _open;
    private long _generation;
    private string? _lastError;
    private DateTimeOffset _nextAttempt;
    private TimeSpan _backoff;
    private bool _disposed;

    /// <summary>Opens the key now (startup must see the token).</summary>
    /// <param name="label">Config key naming this key in messages (e.g. "FactoryCa:IssuingCa:Key").</param>
    /// <param name="uri">RFC 7512 URI naming the token (<c>token=</c>) and the key (<c>object=</c> and/or <c>id=</c>), without any PIN attribute.</param>
    /// <param name="modulePath">PKCS#11 module (.so) path.</param>
    /// <param name="pin">Reads the user PIN (UTF-8 bytes) from its source; called on every login; the bytes are zeroed after use.</param>
    /// <param name="hash">The hash to sign with, or null for the key's default (see the class remarks).</param>
    /// <param name="time">Clock for the retry backoff.</param>
    /// <exception cref="ArgumentException">An argument is null or empty.</exception>
    /// <exception cref="SigningKeyUnavailableException">Bad URI, module missing or owned by the engine, token missing or locked,
    /// PIN refused, no such key, or the probe signature fails; the message names <paramref name="label"/> and the URI, never the PIN.</exception>
    public Pkcs11Key(string label, string uri, string modulePath, Func<byte[]> pin, HashAlgorithmName? hash = null, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(label);
        ArgumentException.ThrowIfNullOrEmpty(uri);
        ArgumentException.ThrowIfNullOrEmpty(modulePath);
        ArgumentNullException.ThrowIfNull(pin);
        _label = label;
        _uri = uri;
        _parsed = Parse(label, uri);
        _module = Pkcs11Module.For(label, modulePath);
        _pin = pin;
        _configuredHash = hash;
        _time = time ?? TimeProvider.System;
        _backoff = RetryInterval;
        var opened = Open(expected: null);
        _open = opened;
        PublicKey = opened.PublicKey;
        KeyId = AsymmetricSigningKey.ComputeKeyId(opened.PublicKey);
        SignatureAlgorithmIdentifier = opened.AlgorithmIdentifier;
        HashAlgorithm = opened.Hash;
    }

    /// <summary>First wait before reopening a failed key (default 1 s; doubles per failure up to 30 s).</summary>
    public static TimeSpan RetryInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <inheritdoc />
    public string KeyId { get; }

    /// <inheritdoc />
    public PublicKey PublicKey { get; }

    /// <inheritdoc />
    public byte[] SignatureAlgorithmIdentifier { get; }

    /// <summary>The hash this key signs with.</summary>
    public HashAlgorithmName HashAlgorithm { get; }

    /// <summary>The RFC 7512 URI (no PIN).</summary>
    public string Uri => _uri;

    /// <summary>True while the key is open and last signed successfully.</summary>
    public bool IsAvailable { get { lock (_gate) { return _open is not null && _generation == _module.Generation; } } }

    /// <summary>Why the key is unavailable (no secrets), or null.</summary>
    public string? UnavailableReason { get { lock (_gate) { return _open is null ? _lastError : null; } } }

    /// <inheritdoc />
    public byte[] Sign(ReadOnlySpan<byte> data)
    {
        var key = Current();
        try
        {
            return SignWith(key, data.ToArray());
        }
        catch (Pkcs11Exception ex)
        {
            string message = $"{_label}: PKCS#11 key '{_uri}' failed to sign ({ex.Method} returned {Pkcs11Errors.Name(ex.RV)}); it will be reopened";
            MarkFailed(key, message);
            throw new SigningKeyUnavailableException(message, ex);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_gate)
        {
            _open = null;
            _disposed = true;
            _lastError = $"{_label}: PKCS#11 key '{_uri}' was disposed";
        }
    }

    /// <summary>
    /// Re-encodes a PKCS#11 <c>CKM_ECDSA</c> signature (r‖s, each <c>len/2</c> octets big-endian, PKCS#11 v2.40 §2.3.1)
    /// as DER <c>Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }</c> (RFC 3279 §2.2.3).
    /// </summary>
    /// <param name="raw">r‖s; even, non-zero length.</param>
    /// <exception cref="CryptographicException"><paramref name="raw"/> is empty or of odd length.</exception>
    public static byte[] EcdsaRawToDer(ReadOnlySpan<byte> raw)
    {
        if (raw.Length == 0 || raw.Length % 2 != 0)
        {
            throw new CryptographicException($"a CKM_ECDSA signature is r||s of even length; got {raw.Length} octets");
        }

        int half = raw.Length / 2;
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            writer.WriteInteger(new BigInteger(raw[..half], isUnsigned: true, isBigEndian: true));
            writer.WriteInteger(new BigInteger(raw[half..], isUnsigned: true, isBigEndian: true));
        }

        return writer.Encode();
    }

    private byte[] SignWith(Opened key, byte[] data) => _module.Use(key.Sessions.Generation, () =>
    {
        var session = key.Sessions.Rent();
        byte[] signature;
        try
        {
            if (key.IsEc)
            {
                Span<byte> digest = stackalloc byte[64];
                int n = CryptographicOperations.HashData(key.Hash, data, digest);
                byte[] raw = session.Sign(key.Mechanism, key.Handle, digest[..n].ToArray());
                signature = EcdsaRawToDer(raw);
            }
            else
            {
                signature = session.Sign(key.Mechanism, key.Handle, data);
            }
        }
        catch
        {
            key.Sessions.Discard(session);
            throw;
        }

        key.Sessions.Return(session);
        return signature;
    });

    private Opened Current()
    {
        lock (_gate)
        {
            if (_open is not null && _generation == _module.Generation)
            {
                return _open;
            }

            if (_disposed)
            {
                throw new SigningKeyUnavailableException(_lastError!);
            }

            if (_open is not null)
            {
                // Another key reset the module: this handle is dead, reopen before signing.
                _open = null;
                _nextAttempt = DateTimeOffset.MinValue;
            }

            if (_time.GetUtcNow() < _nextAttempt)
            {
                throw new SigningKeyUnavailableException(_lastError ?? $"{_label}: PKCS#11 key '{_uri}' unavailable");
            }

            try
            {
                _module.Reset(_generation);
                _open = Open(PublicKey);
                _backoff = RetryInterval;
                _lastError = null;
                return _open;
            }
            catch (SigningKeyUnavailableException ex)
            {
                // The next attempt re-initialises the module again unless another key does it first.
                _generation = _module.Generation;
                _lastError = ex.Message;
                _nextAttempt = _time.GetUtcNow() + _backoff;
                _backoff = TimeSpan.FromTicks(Math.Min(_backoff.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
                throw;
            }
        }
    }

    private void MarkFailed(Opened failed, string message)
    {
        lock (_gate)
        {
            if (!ReferenceEquals(_open, failed))
            {
                return;
            }

            _open = null;
            _lastError = message;
            _nextAttempt = DateTimeOffset.MinValue;
        }
    }

    private Opened Open(PublicKey? expected)
    {
        var sessions = _module.Token(_label, _uri, _parsed.Token, _pin);
        Opened opened;
        try
        {
            opened = _module.Use(sessions.Generation, () =>
            {
                var session = sessions.Rent();
                try
                {
                    var o = Describe(session, sessions);
                    sessions.Return(session);
                    return o;
                }
                catch
                {
                    sessions.Discard(session);
                    throw;
                }
            });
        }
        catch (Pkcs11Exception ex)
        {
            throw new SigningKeyUnavailableException($"{_label}: PKCS#11 key '{_uri}' cannot be opened ({ex.Method} returned {Pkcs11Errors.Name(ex.RV)})", ex);
        }

        if (expected is not null && !expected.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(opened.PublicKey.ExportSubjectPublicKeyInfo()))
        {
            throw new SigningKeyUnavailableException($"{_label}: PKCS#11 key '{_uri}' now has public key {AsymmetricSigningKey.ComputeKeyId(opened.PublicKey)}, expected {KeyId}");
        }

        byte[] probe;
        try
        {
            probe = SignWith(opened, ProbeData);
        }
        catch (Pkcs11Exception ex)
        {
            throw new SigningKeyUnavailableException($"{_label}: PKCS#11 key '{_uri}' probe signature failed ({ex.Method} returned {Pkcs11Errors.Name(ex.RV)})", ex);
        }

        if (!Verify(opened, probe))
        {
            throw new SigningKeyUnavailableException($"{_label}: PKCS#11 key '{_uri}' probe signature does not verify with its public key");
        }

        _generation = sessions.Generation;
        return opened;
    }

    /// <summary>Finds the private key and its public half (RSA: on the private key; EC: the public key object with the same CKA_ID or label).</summary>
    private Opened Describe(ISession session, Pkcs11TokenSessions sessions)
    {
        var factory = _module.Factories.ObjectAttributeFactory;
        var template = new List<IObjectAttribute> { factory.Create(CKA.CKA_CLASS, CKO.CKO_PRIVATE_KEY) };
        if (_parsed.Object is not null)
        {
            template.Add(factory.Create(CKA.CKA_LABEL, _parsed.Object));
        }

        if (_parsed.Id is not null)
        {
            template.Add(factory.Create(CKA.CKA_ID, _parsed.Id));
        }

        var found = session.FindAllObjects(template);
        if (found.Count != 1)
        {
            throw new SigningKeyUnavailableException(found.Count == 0
                ? $"{_label}: PKCS#11 key '{_uri}' unavailable: no such private key object in token '{_parsed.Token}'"
                : $"{_label}: PKCS#11 key '{_uri}' is ambiguous: {found.Count} private keys match; add id= or object= to the URI");
        }

        var handle = found[0];
        var attrs = session.GetAttributeValue(handle, [CKA.CKA_KEY_TYPE, CKA.CKA_ID, CKA.CKA_LABEL]);
        var keyType = (CKK)attrs[0].GetValueAsUlong();
        var mechanisms = _module.Factories.MechanismFactory;
        if (keyType == CKK.CKK_EC)
        {
            byte[] parameters = session.GetAttributeValue(handle, [CKA.CKA_EC_PARAMS])[0].GetValueAsByteArray();
            byte[] point = EcPoint(session, factory, attrs[1].GetValueAsByteArray(), attrs[2].GetValueAsString());
            var publicKey = EcPublicKey(parameters, point, out int fieldBits);
            var hash = _configuredHash ?? (fieldBits > 384 ? HashAlgorithmName.SHA512 : fieldBits > 256 ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA256);
            using var ec = publicKey.GetECDsaPublicKey()!;
            byte[] algorithm = X509SignatureGenerator.CreateForECDsa(ec).GetSignatureAlgorithmIdentifier(hash);
            return new Opened(sessions, handle, true, hash, mechanisms.Create(CKM.CKM_ECDSA), publicKey, algorithm);
        }

        if (keyType == CKK.CKK_RSA)
        {
            var rsaAttrs = session.GetAttributeValue(handle, [CKA.CKA_MODULUS, CKA.CKA_PUBLIC_EXPONENT]);
            using var rsa = RSA.Create(new RSAParameters { Modulus = rsaAttrs[0].GetValueAsByteArray(), Exponent = rsaAttrs[1].GetValueAsByteArray() });
            var hash = _configuredHash ?? HashAlgorithmName.SHA256;
            var mechanism = hash == HashAlgorithmName.SHA512 ? CKM.CKM_SHA512_RSA_PKCS : hash == HashAlgorithmName.SHA384 ? CKM.CKM_SHA384_RSA_PKCS : CKM.CKM_SHA256_RSA_PKCS;
            var generator = X509SignatureGenerator.CreateForRSA(rsa, RSASignaturePadding.Pkcs1);
            var publicKey = PublicKey.CreateFromSubjectPublicKeyInfo(rsa.ExportSubjectPublicKeyInfo(), out _);
            return new Opened(sessions, handle, false, hash, mechanisms.Create(mechanism), publicKey, generator.GetSignatureAlgorithmIdentifier(hash));
        }

        throw new SigningKeyUnavailableException($"{_label}: PKCS#11 key '{_uri}' is neither EC nor RSA (CKA_KEY_TYPE {keyType})");
    }

    private byte[] EcPoint(ISession session, Net.Pkcs11Interop.HighLevelAPI.Factories.IObjectAttributeFactory factory, byte[] id, string label)
    {
        var template = new List<IObjectAttribute> { factory.Create(CKA.CKA_CLASS, CKO.CKO_PUBLIC_KEY) };
        template.Add(id.Length > 0 ? factory.Create(CKA.CKA_ID, id) : factory.Create(CKA.CKA_LABEL, label));
        var found = session.FindAllObjects(template);
        if (found.Count == 0)
        {
            throw new SigningKeyUnavailableException(
                $"{_label}: PKCS#11 key '{_uri}' has no public key object (CKO_PUBLIC_KEY with the same CKA_ID) holding its EC point; import the public key alongside the private key");
        }

        return session.GetAttributeValue(found[0], [CKA.CKA_EC_POINT])[0].GetValueAsByteArray();
    }

    /// <summary>SubjectPublicKeyInfo (RFC 5480 §2) from CKA_EC_PARAMS (a namedCurve OID) and CKA_EC_POINT (DER OCTET STRING or raw).</summary>
    private PublicKey EcPublicKey(byte[] parameters, byte[] point, out int fieldBits)
    {
        string curve;
        try
        {
            curve = AsnDecoder.ReadObjectIdentifier(parameters, AsnEncodingRules.DER, out _);
        }
        catch (AsnContentException ex)
        {
            throw new SigningKeyUnavailableException($"{_label}: PKCS#11 key '{_uri}' has EC parameters that are not a named curve", ex);
        }

        fieldBits = curve switch
        {
            "1.2.840.10045.3.1.7" => 256,
            "1.3.132.0.34" => 384,
            "1.3.132.0.35" => 521,
            _ => throw new SigningKeyUnavailableException($"{_label}: PKCS#11 key '{_uri}' is on curve {curve}; only P-256, P-384 and P-521 are supported"),
        };
        int octets = (fieldBits + 7) / 8;
        byte[] q = point.Length == (2 * octets) + 1 && point[0] == 0x04 ? point : AsnDecoder.ReadOctetString(point, AsnEncodingRules.BER, out _);

        // SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier { id-ecPublicKey, namedCurve }, subjectPublicKey BIT STRING }
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            using (writer.PushSequence())
            {
                writer.WriteObjectIdentifier("1.2.840.10045.2.1");
                writer.WriteEncodedValue(parameters);
            }

            writer.WriteBitString(q);
        }

        return PublicKey.CreateFromSubjectPublicKeyInfo(writer.Encode(), out _);
    }

    private static bool Verify(Opened key, byte[] signature)
    {
        using var ec = key.PublicKey.GetECDsaPublicKey();
        if (ec is not null)
        {
            return ec.VerifyData(ProbeData, signature, key.Hash, DSASignatureFormat.Rfc3279DerSequence);
        }

        using var rsa = key.PublicKey.GetRSAPublicKey()!;
        return rsa.VerifyData(ProbeData, signature, key.Hash, RSASignaturePadding.Pkcs1);
    }

    private static Pkcs11Uri Parse(string label, string uri)
    {
        Pkcs11Uri parsed;
        try
        {
            parsed = new Pkcs11Uri(uri);
        }
        catch (Pkcs11UriException ex)
        {
            throw new SigningKeyUnavailableException($"{label}: '{uri}' is not an RFC 7512 PKCS#11 URI: {ex.Message}", ex);
        }

        if (parsed.PinValue is not null || parsed.PinSource is not null)
        {
            throw new SigningKeyUnavailableException($"{label}: the PKCS#11 URI must not carry a PIN (pin-value/pin-source); use PinFile or PinEnvironmentVariable");
        }

        if (string.IsNullOrEmpty(parsed.Token))
        {
            throw new SigningKeyUnavailableException($"{label}: PKCS#11 URI '{uri}' must name its token (token=...)");
        }

        if (parsed.Object is null && parsed.Id is null)
        {
            throw new SigningKeyUnavailableException($"{label}: PKCS#11 URI '{uri}' must name its key (object=... and/or id=...)");
        }

        if (parsed.Type is not null && parsed.Type != CKO.CKO_PRIVATE_KEY)
        {
            throw new SigningKeyUnavailableException($"{label}: PKCS#11 URI '{uri}' names type={parsed.Type}; a signing key is type=private");
        }

        return parsed;
    }

    /// <summary>One opening of the key: its sessions (one module generation), handle, mechanism and public half.</summary>
    private sealed record Opened(Pkcs11TokenSessions Sessions, IObjectHandle Handle, bool IsEc, HashAlgorithmName Hash, IMechanism Mechanism, PublicKey PublicKey, byte[] AlgorithmIdentifier);
}
