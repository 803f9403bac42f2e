using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using OfflinePki.Keys.Pkcs11;

namespace OfflinePki.Keys;

/// <summary>Opens the signing key that <see cref="SigningKeyOptions"/> configures: a PEM file, or a PKCS#11 token key through Pkcs11Interop.</summary>
public static class SigningKeyLoader
{
    /// <summary>
    /// Loads the key and, when <paramref name="certificate"/> is given, checks it matches the certificate's public key.
    /// </summary>
    /// <param name="configKey">Names the key in errors.</param>
    /// <param name="options">Validated options.</param>
    /// <param name="certificate">The certificate this key belongs to, or null.</param>
    /// <param name="time">Clock for PKCS#11 reopen backoff.</param>
    /// <exception cref="SigningKeyUnavailableException">Unreadable file/PIN/passphrase, token missing, PIN refused, wrong key; no secret in the message.</exception>
    public static ISigningKey Load(string configKey, SigningKeyOptions options, X509Certificate2? certificate = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = SigningKeyOptions.Validate(configKey, options);
        if (errors.Count > 0)
        {
            throw new SigningKeyUnavailableException(string.Join("; ", errors));
        }

        ISigningKey key;
        if (options.IsPkcs11)
        {
            HashAlgorithmName? hash = string.IsNullOrEmpty(options.Hash) ? null : new HashAlgorithmName(options.Hash);
            key = new Pkcs11Key(configKey, options.Pkcs11Uri!, options.Module!, () => SigningKeyOptions.ReadSecret(configKey, "PIN", options.PinFile, options.PinEnvironmentVariable), hash, time);
        }
        else
        {
            string? passphrase = null;
            if (!string.IsNullOrEmpty(options.PassphraseFile) || !string.IsNullOrEmpty(options.PassphraseEnvironmentVariable))
            {
                byte[] p = SigningKeyOptions.ReadSecret(configKey, "passphrase", options.PassphraseFile, options.PassphraseEnvironmentVariable);
                passphrase = Encoding.UTF8.GetString(p);
                CryptographicOperations.ZeroMemory(p);
            }

            try
            {
                key = SoftwareKeyLoader.Load(options.File, passphrase);
            }
            catch (SigningKeyUnavailableException ex)
            {
                throw new SigningKeyUnavailableException($"{configKey}:File: {ex.Message}", ex);
            }
        }

        return SigningKeyOptions.CheckMatches(configKey, key, certificate);
    }
}
