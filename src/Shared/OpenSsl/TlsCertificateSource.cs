using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OfflinePki.Keys;

/// <summary>
/// A TLS certificate (server or client) joined to its private key from <see cref="TlsKeyOptions"/>: a PEM file
/// (loaded once, as before) or a PKCS#11 key used through OpenSSL's pkcs11 engine, so SslStream signs every
/// handshake in the token (TLS 1.2/1.3 with an EC or RSA key; the key never leaves the token).
/// <para>
/// A PKCS#11 key follows the token: <see cref="Current"/> is meant to be called per handshake (Kestrel's
/// ServerCertificateSelector, SslStream's LocalCertificateSelectionCallback). It rebuilds the certificate after
/// the module was reset by any key of the process, and at most once per <see cref="ProbeInterval"/> it probes the
/// key with a signature and reopens it after a failure (through a fresh engine instance, see <c>Pkcs11Engine</c>),
/// at most once per the key's retry backoff. While the token is gone handshakes fail (fail closed); when it is back the
/// next handshake after the backoff gets a certificate joined to the reopened key, so service resumes without a
/// restart. Listeners and clients using such a key turn TLS resumption off: .NET caches a resumable SSL_CTX per
/// certificate, and that cached context would keep the engine key of before the outage.
/// </para>
/// </summary>
public sealed class TlsCertificateSource : IDisposable
{
    private static readonly byte[] Probe = "OfflinePki TLS key probe"u8.ToArray();
    private readonly X509Certificate2 _certificate;
    private readonly ISigningKey? _key;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private X509Certificate2 _current;
    private long _generation;
    private DateTimeOffset _lastProbe;

    private TlsCertificateSource(X509Certificate2 certificate, X509Certificate2 current, ISigningKey? key, long generation, TimeProvider time)
    {
        _certificate = certificate;
        _current = current;
        _key = key;
        _generation = generation;
        _time = time;
        _lastProbe = time.GetUtcNow();
    }

    /// <summary>How often a PKCS#11 TLS key is probed with a signature from <see cref="Current"/> (default 5 s).</summary>
    public static TimeSpan ProbeInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>True when the key is a PKCS#11 key (use <see cref="Current"/> per handshake).</summary>
    public bool IsPkcs11 => _key is not null;

    /// <summary>
    /// Loads the PEM certificate at <paramref name="certificatePath"/> and joins it to its key.
    /// </summary>
    /// <param name="configKey">Names the key in errors, e.g. "FactoryCa:Est:ServerKey".</param>
    /// <param name="certificatePath">PEM certificate (the first certificate in the file is used).</param>
    /// <param name="key">Where the key lives.</param>
    /// <param name="time">Clock for probes and PKCS#11 reopen backoff.</param>
    /// <exception cref="SigningKeyUnavailableException">Bad options, unreadable file or passphrase, token missing, PIN refused,
    /// or the key does not match the certificate. The message names <paramref name="configKey"/>, never a PIN or passphrase.</exception>
    public static TlsCertificateSource Load(string configKey, string certificatePath, SigningKeyOptions key, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(configKey);
        ArgumentNullException.ThrowIfNull(key);
        time ??= TimeProvider.System;
        var errors = SigningKeyOptions.Validate(configKey, key);
        if (errors.Count > 0)
        {
            throw new SigningKeyUnavailableException(string.Join("; ", errors));
        }

        if (!key.IsPkcs11)
        {
            X509Certificate2 joined;
            try
            {
                if (!string.IsNullOrEmpty(key.PassphraseFile) || !string.IsNullOrEmpty(key.PassphraseEnvironmentVariable))
                {
                    byte[] p = SigningKeyOptions.ReadSecret(configKey, "passphrase", key.PassphraseFile, key.PassphraseEnvironmentVariable);
                    try
                    {
                        joined = X509Certificate2.CreateFromEncryptedPemFile(certificatePath, System.Text.Encoding.UTF8.GetString(p), key.File);
                    }
                    finally
                    {
                        CryptographicOperations.ZeroMemory(p);
                    }
                }
                else
                {
                    joined = X509Certificate2.CreateFromPemFile(certificatePath, key.File);
                }
            }
            catch (CryptographicException ex)
            {
                throw new SigningKeyUnavailableException($"{configKey}: '{key.File}' with certificate '{certificatePath}': {ex.Message}", ex);
            }

            return new TlsCertificateSource(joined, joined, null, 0, time);
        }

        if (!OperatingSystem.IsLinux())
        {
            throw new SigningKeyUnavailableException($"{configKey}: PKCS#11 keys need OpenSSL's pkcs11 engine (Linux)");
        }

        X509Certificate2 certificate;
        try
        {
            certificate = X509CertificateLoader.LoadCertificateFromFile(certificatePath);
        }
        catch (CryptographicException ex)
        {
            throw new SigningKeyUnavailableException($"{configKey}: certificate '{certificatePath}' cannot be read: {ex.Message}", ex);
        }

        // TLS keys stay on the engine route: SslStream needs an OpenSSL key (see docs/HSM.md, "TLS keys in a token").
        var signing = (Pkcs11SigningKey)SigningKeyOptions.CheckMatches(configKey,
            new Pkcs11SigningKey(configKey, key.Pkcs11Uri!, key.Module!, () => SigningKeyOptions.ReadSecret(configKey, "PIN", key.PinFile, key.PinEnvironmentVariable), time),
            certificate);
        var (current, generation) = signing.CopyWithPrivateKey(certificate);
        return new TlsCertificateSource(certificate, current, signing, generation, time);
    }

    /// <summary>
    /// The certificate with its private key for the next handshake. For a PKCS#11 key, rebuilt after a module reset
    /// or a failed probe; if the key cannot be reopened the last certificate is returned and the handshake fails.
    /// </summary>
    public X509Certificate2 Current
    {
        get
        {
            if (_key is not Pkcs11SigningKey p11 || !OperatingSystem.IsLinux())
            {
                return _current;
            }

            lock (_gate)
            {
                var now = _time.GetUtcNow();
                if (now - _lastProbe >= ProbeInterval)
                {
                    _lastProbe = now;
                    try
                    {
                        _ = p11.Sign(Probe); // a failure marks the key failed; the next open resets the module
                    }
                    catch (SigningKeyUnavailableException)
                    {
                    }
                }

                if (p11.IsAvailable && p11.Generation == _generation && _generation == Pkcs11Engine.Generation)
                {
                    return _current;
                }

                try
                {
                    var (fresh, generation) = p11.CopyWithPrivateKey(_certificate);
                    // The old copy is not disposed: a handshake may still hold it; its dead handle is freed by the GC.
                    _current = fresh;
                    _generation = generation;
                }
                catch (SigningKeyUnavailableException)
                {
                    // Fail closed: the stale handle makes the handshake fail; the next call retries after the key's backoff.
                }

                return _current;
            }
        }
    }

    /// <summary>
    /// Probes a PKCS#11 key now (regardless of <see cref="ProbeInterval"/>), reopening it if it failed and its backoff
    /// allows; returns why it is unavailable (no secrets), or null when it is usable or a file key.
    /// </summary>
    public string? Check()
    {
        if (_key is not Pkcs11SigningKey p11 || !OperatingSystem.IsLinux())
        {
            return null;
        }

        lock (_gate)
        {
            _lastProbe = DateTimeOffset.MinValue;
        }

        _ = Current;
        return p11.IsAvailable ? null : p11.UnavailableReason ?? "PKCS#11 key unavailable";
    }

    /// <summary>Why a PKCS#11 TLS key is unavailable (no secrets), or null while it is usable or a file key.</summary>
    public string? UnavailableReason => _key is Pkcs11SigningKey p && OperatingSystem.IsLinux() ? p.UnavailableReason : null;

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_gate)
        {
            _current.Dispose();
            if (!ReferenceEquals(_current, _certificate))
            {
                _certificate.Dispose();
            }

            (_key as IDisposable)?.Dispose();
        }
    }
}
