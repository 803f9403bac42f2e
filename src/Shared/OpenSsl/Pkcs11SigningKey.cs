using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OfflinePki.Keys;

/// <summary>
/// A TLS private key held in a PKCS#11 token and named by an RFC 7512 URI, used through OpenSSL's pkcs11 engine
/// (<see cref="ECDsaOpenSsl"/>/<see cref="RSAOpenSsl"/> over an engine key handle), so that SslStream can hand it to
/// OpenSSL's TLS stack. TLS keys only (<see cref="TlsCertificateSource"/>): every signing key uses
/// <c>Pkcs11Key</c> (Pkcs11Interop), and one module is never driven by both (<see cref="Pkcs11ModuleClaims"/>).
/// <para>
/// Fail closed: when a signature fails (token removed, session lost, module finalised) the key reports
/// <see cref="SigningKeyUnavailableException"/> and becomes unavailable; later calls retry at most once per
/// <see cref="RetryInterval"/> (doubling up to 30 s): the module is reset, the PIN source re-read, the key
/// reopened and checked with a probe signature against the public key first seen, then service resumes
/// without a restart. The PIN is read from its source on each (re)open and kept only for the engine call.
/// </para>
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class Pkcs11SigningKey : ISigningKey, IDisposable
{
    private static readonly byte[] ProbeData = "OfflinePki PKCS#11 probe"u8.ToArray();
    private readonly string _label;
    private readonly string _uri;
    private readonly string _module;
    private readonly Func<byte[]> _pin;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private AsymmetricSigningKey? _key;
    private long _generation;
    private string? _lastError;
    private DateTimeOffset _nextAttempt;
    private TimeSpan _backoff;

    /// <summary>Opens the key now (startup must see the token).</summary>
    /// <param name="label">Config key naming this key in messages (e.g. "FactoryCa:IssuingCa:Key").</param>
    /// <param name="uri">RFC 7512 URI without any PIN attribute.</param>
    /// <param name="modulePath">PKCS#11 module (.so) path.</param>
    /// <param name="pin">Reads the PIN (UTF-8 bytes) from its source; called on every (re)open.</param>
    /// <param name="time">Clock for the retry backoff.</param>
    /// <exception cref="SigningKeyUnavailableException">The key cannot be opened; the message names <paramref name="label"/> and the URI, never the PIN.</exception>
    public Pkcs11SigningKey(string label, string uri, string modulePath, Func<byte[]> pin, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(label);
        ArgumentException.ThrowIfNullOrEmpty(uri);
        ArgumentException.ThrowIfNullOrEmpty(modulePath);
        ArgumentNullException.ThrowIfNull(pin);
        if (uri.Contains("pin-value", StringComparison.OrdinalIgnoreCase) || uri.Contains("pin-source", StringComparison.OrdinalIgnoreCase))
        {
            throw new SigningKeyUnavailableException($"{label}: the PKCS#11 URI must not carry a PIN (pin-value/pin-source); use PinFile or PinEnvironmentVariable");
        }

        _label = label;
        _uri = uri;
        _module = modulePath;
        _pin = pin;
        _time = time ?? TimeProvider.System;
        _backoff = RetryInterval;
        var key = OpenChecked(expected: null, afterReset: Pkcs11Engine.Generation > 0);
        _key = key;
        PublicKey = key.PublicKey;
        KeyId = key.KeyId;
        SignatureAlgorithmIdentifier = key.SignatureAlgorithmIdentifier;
    }

    /// <summary>First wait before reopening a failed key (default 1 s; doubles per failure up to 30 s).</summary>
    public static TimeSpan RetryInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <inheritdoc />
    public string KeyId { get; }

    /// <inheritdoc />
    public PublicKey PublicKey { get; }

    /// <inheritdoc />
    public byte[] SignatureAlgorithmIdentifier { get; }

    /// <summary>The RFC 7512 URI (no PIN).</summary>
    public string Uri => _uri;

    /// <summary>True while the key is open and last signed successfully.</summary>
    public bool IsAvailable { get { lock (_gate) { return _key is not null; } } }

    /// <summary>Why the key is unavailable (no secrets), or null.</summary>
    public string? UnavailableReason { get { lock (_gate) { return _key is null ? _lastError : null; } } }

    /// <inheritdoc />
    public byte[] Sign(ReadOnlySpan<byte> data)
    {
        AsymmetricSigningKey key = Current();
        try
        {
            return key.Sign(data);
        }
        catch (SigningKeyUnavailableException ex)
        {
            MarkFailed(key, ex.Message);
            throw new SigningKeyUnavailableException($"{_label}: PKCS#11 key '{_uri}' failed to sign; it will be reopened: {FirstLine(ex.InnerException?.Message ?? ex.Message)}", ex);
        }
    }

    /// <summary>
    /// A copy of <paramref name="certificate"/> whose private key is the current engine handle (for TLS: SslStream
    /// signs the handshake through the token). Reopens first if the key failed or the module was reset.
    /// </summary>
    /// <exception cref="SigningKeyUnavailableException">The key is unavailable.</exception>
    internal (X509Certificate2 Certificate, long Generation) CopyWithPrivateKey(X509Certificate2 certificate)
    {
        var key = Current();
        lock (_gate)
        {
            return (key.CopyWithPrivateKey(certificate), _generation);
        }
    }

    /// <summary>The engine generation the current handle was opened under.</summary>
    internal long Generation { get { lock (_gate) { return _generation; } } }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_gate)
        {
            _key?.Dispose();
            _key = null;
            _lastError = "disposed";
        }
    }

    private AsymmetricSigningKey Current()
    {
        lock (_gate)
        {
            if (_key is not null && _generation == Pkcs11Engine.Generation)
            {
                return _key;
            }

            if (_key is not null)
            {
                // Another key reset the module: this handle is dead, reopen before signing.
                _key.Dispose();
                _key = null;
                _nextAttempt = DateTimeOffset.MinValue;
            }

            if (_time.GetUtcNow() < _nextAttempt)
            {
                throw new SigningKeyUnavailableException($"{_label}: PKCS#11 key '{_uri}' unavailable: {_lastError}");
            }

            try
            {
                Pkcs11Engine.Reset(_generation);
                _key = OpenChecked(PublicKey, afterReset: true);
                _backoff = RetryInterval;
                _lastError = null;
                return _key;
            }
            catch (SigningKeyUnavailableException ex)
            {
                // The next attempt re-initialises the module again unless another key does it first.
                _generation = Pkcs11Engine.Generation;
                _lastError = ex.Message;
                _nextAttempt = _time.GetUtcNow() + _backoff;
                _backoff = TimeSpan.FromTicks(Math.Min(_backoff.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
                throw;
            }
        }
    }

    private void MarkFailed(AsymmetricSigningKey failed, string message)
    {
        lock (_gate)
        {
            if (!ReferenceEquals(_key, failed))
            {
                return;
            }

            // A concurrent signer holds a SafeHandle reference, so the native key is freed after its call returns.
            _key.Dispose();
            _key = null;
            _lastError = message;
            _nextAttempt = DateTimeOffset.MinValue;
        }
    }

    private AsymmetricSigningKey OpenChecked(PublicKey? expected, bool afterReset)
    {
        byte[] pin;
        try
        {
            pin = _pin();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            throw new SigningKeyUnavailableException($"{_label}: PIN source cannot be read: {ex.Message}", ex);
        }

        SafeEvpPKeyHandle handle;
        long generation;
        try
        {
            (handle, generation) = Pkcs11Engine.Open(_label, _module, _uri, pin, afterReset);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pin);
        }

        AsymmetricSigningKey key;
        using (handle)
        {
            try
            {
                key = handle.DangerousGetHandle() != IntPtr.Zero && IsEc(handle)
                    ? new AsymmetricSigningKey(new ECDsaOpenSsl(handle))
                    : new AsymmetricSigningKey(new RSAOpenSsl(handle));
            }
            catch (CryptographicException ex)
            {
                throw new SigningKeyUnavailableException($"{_label}: PKCS#11 key '{_uri}' is neither EC nor RSA: {FirstLine(ex.Message)}", ex);
            }
        }

        try
        {
            if (expected is not null && !expected.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(key.PublicKey.ExportSubjectPublicKeyInfo()))
            {
                throw new SigningKeyUnavailableException($"{_label}: PKCS#11 key '{_uri}' now has public key {key.KeyId}, expected {KeyId}");
            }

            byte[] sig = key.Sign(ProbeData);
            if (!Verify(key, sig))
            {
                throw new SigningKeyUnavailableException($"{_label}: PKCS#11 key '{_uri}' probe signature does not verify");
            }
        }
        catch
        {
            key.Dispose();
            throw;
        }

        _generation = generation;
        return key;
    }

    private static bool IsEc(SafeEvpPKeyHandle handle)
    {
        try
        {
            using var ec = new ECDsaOpenSsl(handle);
            return ec.KeySize > 0;
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    private static bool Verify(AsymmetricSigningKey key, byte[] sig)
    {
        using var ec = key.PublicKey.GetECDsaPublicKey();
        if (ec is not null)
        {
            return ec.VerifyData(ProbeData, sig, key.HashAlgorithm, DSASignatureFormat.Rfc3279DerSequence);
        }

        using var rsa = key.PublicKey.GetRSAPublicKey()!;
        return rsa.VerifyData(ProbeData, sig, key.HashAlgorithm, RSASignaturePadding.Pkcs1);
    }

    private static string FirstLine(string s)
    {
        int i = s.IndexOf('\n', StringComparison.Ordinal);
        return i < 0 ? s : s[..i];
    }
}
