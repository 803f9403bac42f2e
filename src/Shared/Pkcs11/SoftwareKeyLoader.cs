using System.Security.Cryptography;

namespace OfflinePki.Keys;

/// <summary>
/// Loads a software signing key from a PEM PKCS#8 file ("PRIVATE KEY", or "ENCRYPTED PRIVATE KEY" with a
/// passphrase). The passphrase never appears in exceptions or logs.
/// </summary>
public static class SoftwareKeyLoader
{
    /// <summary>Loads an ECDSA (P-256/P-384) or RSA key.</summary>
    /// <param name="path">PEM file path.</param>
    /// <param name="passphrase">For an encrypted PKCS#8 file; null for a plain one.</param>
    /// <exception cref="SigningKeyUnavailableException">The file is missing, unreadable, of an unsupported type, or the passphrase is wrong.</exception>
    public static AsymmetricSigningKey Load(string path, string? passphrase = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string pem;
        try
        {
            pem = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new SigningKeyUnavailableException($"key file '{path}' cannot be read: {ex.Message}", ex);
        }

        return FromPem(pem, passphrase, path);
    }

    /// <summary>Loads a key from PEM text; <paramref name="label"/> names it in errors.</summary>
    /// <exception cref="SigningKeyUnavailableException">Unsupported or undecodable key, or wrong passphrase.</exception>
    public static AsymmetricSigningKey FromPem(string pem, string? passphrase, string label)
    {
        ArgumentNullException.ThrowIfNull(pem);
        bool encrypted = pem.Contains("ENCRYPTED PRIVATE KEY", StringComparison.Ordinal);
        if (encrypted && passphrase is null)
        {
            throw new SigningKeyUnavailableException($"key file '{label}' is encrypted and no passphrase source is configured");
        }

        var ec = ECDsa.Create();
        try
        {
            if (encrypted) { ec.ImportFromEncryptedPem(pem, passphrase); } else { ec.ImportFromPem(pem); }
            return new AsymmetricSigningKey(ec);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            ec.Dispose();
        }

        var rsa = RSA.Create();
        try
        {
            if (encrypted) { rsa.ImportFromEncryptedPem(pem, passphrase); } else { rsa.ImportFromPem(pem); }
            return new AsymmetricSigningKey(rsa);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            rsa.Dispose();
            throw new SigningKeyUnavailableException(
                $"key file '{label}' holds no usable EC or RSA PKCS#8 private key{(encrypted ? " (or the passphrase is wrong)" : string.Empty)}");
        }
    }
}
