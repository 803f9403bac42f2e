using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace OfflinePki.Keys;

/// <summary>
/// Where one private key lives (a host's "...:Key" config section). Exactly one backend:
/// a software PEM PKCS#8 <see cref="File"/> (optionally encrypted; passphrase from <see cref="PassphraseFile"/> or
/// <see cref="PassphraseEnvironmentVariable"/>), or a PKCS#11 key named by <see cref="Pkcs11Uri"/> (RFC 7512) in
/// <see cref="Module"/>, PIN from <see cref="PinFile"/> or <see cref="PinEnvironmentVariable"/>.
/// Secrets are never stored here, only where to read them.
/// </summary>
public class SigningKeyOptions
{
    /// <summary>PEM PKCS#8 file (software key).</summary>
    public string File { get; set; } = string.Empty;

    /// <summary>File holding the passphrase of an encrypted PKCS#8 file (first line; trailing newline ignored).</summary>
    public string? PassphraseFile { get; set; }

    /// <summary>Name of an environment variable holding the passphrase of an encrypted PKCS#8 file.</summary>
    public string? PassphraseEnvironmentVariable { get; set; }

    /// <summary>RFC 7512 PKCS#11 URI, e.g. "pkcs11:token=factory-ca;object=issuing-ca;type=private". Must not carry pin-value/pin-source.</summary>
    public string? Pkcs11Uri { get; set; }

    /// <summary>PKCS#11 module path, e.g. /usr/lib/softhsm/libsofthsm2.so. All PKCS#11 keys of one process use the same module.</summary>
    public string? Module { get; set; }

    /// <summary>File holding the token user PIN (first line).</summary>
    public string? PinFile { get; set; }

    /// <summary>Name of an environment variable holding the token user PIN.</summary>
    public string? PinEnvironmentVariable { get; set; }

    /// <summary>
    /// The hash a PKCS#11 key signs with: "SHA256", "SHA384" or "SHA512"; empty for the key's default (SHA-256 for
    /// P-256 and RSA, SHA-384 for P-384, SHA-512 for P-521). An RSA key then signs with CKM_SHA256_RSA_PKCS,
    /// CKM_SHA384_RSA_PKCS or CKM_SHA512_RSA_PKCS.
    /// </summary>
    public string? Hash { get; set; }

    /// <summary>True when this key is configured as a PKCS#11 key.</summary>
    public bool IsPkcs11 => !string.IsNullOrEmpty(Pkcs11Uri);

    /// <summary>Makes File, PassphraseFile and PinFile absolute against <paramref name="baseDirectory"/>.</summary>
    public void ResolvePaths(string baseDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(baseDirectory);
        static string? R(string? p, string b) => string.IsNullOrEmpty(p) ? p : Path.GetFullPath(p, b);
        File = R(File, baseDirectory)!;
        PassphraseFile = R(PassphraseFile, baseDirectory);
        PinFile = R(PinFile, baseDirectory);
    }

    /// <summary>A non-secret description for logs: the file path or the URI.</summary>
    public override string ToString() => IsPkcs11 ? $"{Pkcs11Uri} (module {Module})" : File;

    /// <summary>Validation errors (each naming <paramref name="configKey"/>), empty when the options are usable.</summary>
    /// <param name="configKey">e.g. "FactoryCa:IssuingCa:Key".</param>
    /// <param name="options">The options.</param>
    public static IReadOnlyList<string> Validate(string configKey, SigningKeyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        bool file = !string.IsNullOrEmpty(options.File);
        if (file == options.IsPkcs11)
        {
            errors.Add($"{configKey}: set exactly one of File (software key) or Pkcs11Uri (HSM key)");
            return errors;
        }

        if (file)
        {
            if (!System.IO.File.Exists(options.File))
            {
                errors.Add($"{configKey}:File: '{options.File}' does not exist");
            }

            if (!string.IsNullOrEmpty(options.PassphraseFile) && !string.IsNullOrEmpty(options.PassphraseEnvironmentVariable))
            {
                errors.Add($"{configKey}: set at most one of PassphraseFile or PassphraseEnvironmentVariable");
            }

            if (!string.IsNullOrEmpty(options.PassphraseFile) && !System.IO.File.Exists(options.PassphraseFile))
            {
                errors.Add($"{configKey}:PassphraseFile: '{options.PassphraseFile}' does not exist");
            }

            if (!string.IsNullOrEmpty(options.Module) || !string.IsNullOrEmpty(options.PinFile) || !string.IsNullOrEmpty(options.PinEnvironmentVariable) || !string.IsNullOrEmpty(options.Hash))
            {
                errors.Add($"{configKey}: Module/PinFile/PinEnvironmentVariable/Hash apply only to a Pkcs11Uri key");
            }

            return errors;
        }

        string uri = options.Pkcs11Uri!;
        if (!uri.StartsWith("pkcs11:", StringComparison.Ordinal))
        {
            errors.Add($"{configKey}:Pkcs11Uri: not an RFC 7512 URI (must start with 'pkcs11:')");
        }

        if (uri.Contains("pin-value", StringComparison.OrdinalIgnoreCase) || uri.Contains("pin-source", StringComparison.OrdinalIgnoreCase))
        {
            // Do not echo the URI: it holds a PIN.
            errors.Add($"{configKey}:Pkcs11Uri: must not carry a PIN (pin-value/pin-source); use {configKey}:PinFile or {configKey}:PinEnvironmentVariable");
        }

        if (string.IsNullOrEmpty(options.Module))
        {
            errors.Add($"{configKey}:Module: required with Pkcs11Uri (the PKCS#11 module .so)");
        }
        else if (!System.IO.File.Exists(options.Module))
        {
            errors.Add($"{configKey}:Module: '{options.Module}' does not exist");
        }

        bool pinFile = !string.IsNullOrEmpty(options.PinFile);
        if (pinFile == !string.IsNullOrEmpty(options.PinEnvironmentVariable))
        {
            errors.Add($"{configKey}: set exactly one of PinFile or PinEnvironmentVariable");
        }

        if (!string.IsNullOrEmpty(options.PassphraseFile) || !string.IsNullOrEmpty(options.PassphraseEnvironmentVariable))
        {
            errors.Add($"{configKey}: PassphraseFile/PassphraseEnvironmentVariable apply only to a File key");
        }

        if (!string.IsNullOrEmpty(options.Hash) && options.Hash is not ("SHA256" or "SHA384" or "SHA512"))
        {
            errors.Add($"{configKey}:Hash: '{options.Hash}' is not one of SHA256, SHA384, SHA512");
        }

        return errors;
    }

    /// <summary>Returns <paramref name="key"/> if it is the key of <paramref name="certificate"/> (or no certificate is given); else disposes it and throws.</summary>
    /// <exception cref="SigningKeyUnavailableException">The public keys differ.</exception>
    internal static ISigningKey CheckMatches(string configKey, ISigningKey key, X509Certificate2? certificate)
    {
        if (certificate is not null && !key.PublicKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(certificate.PublicKey.ExportSubjectPublicKeyInfo()))
        {
            (key as IDisposable)?.Dispose();
            throw new SigningKeyUnavailableException($"{configKey}: key {key.KeyId} does not match certificate '{certificate.Subject}'");
        }

        return key;
    }

    /// <summary>Reads a secret from a file (first line) or an environment variable, as UTF-8 bytes.</summary>
    /// <exception cref="SigningKeyUnavailableException">The source is missing or empty; the message names the source, not the value.</exception>
    internal static byte[] ReadSecret(string configKey, string what, string? file, string? environmentVariable)
    {
        string? value;
        if (!string.IsNullOrEmpty(file))
        {
            try
            {
                value = System.IO.File.ReadAllText(file);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new SigningKeyUnavailableException($"{configKey}: {what} file '{file}' cannot be read: {ex.Message}", ex);
            }

            int nl = value.IndexOfAny(['\r', '\n']);
            value = nl < 0 ? value : value[..nl];
        }
        else
        {
            value = Environment.GetEnvironmentVariable(environmentVariable ?? string.Empty);
        }

        if (string.IsNullOrEmpty(value))
        {
            throw new SigningKeyUnavailableException($"{configKey}: {what} source ({(string.IsNullOrEmpty(file) ? "environment variable " + environmentVariable : "file " + file)}) is empty or unset");
        }

        return Encoding.UTF8.GetBytes(value);
    }
}
