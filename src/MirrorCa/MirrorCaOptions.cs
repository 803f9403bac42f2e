using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using OfflinePki.Ocsp;

namespace OfflinePki.MirrorCa;

/// <summary>The "MirrorCa" configuration section. Relative paths resolve against the config file's directory.</summary>
public sealed class MirrorCaOptions
{
    /// <summary>Configuration section name.</summary>
    public const string SectionName = "MirrorCa";

    /// <summary>dev, test, staging or production.</summary>
    public string Environment { get; set; } = "dev";

    /// <summary>Directory of the registry database (registry.sqlite).</summary>
    public string DataDirectory { get; set; } = string.Empty;

    /// <summary>The device-identity root certificate (PEM or DER).</summary>
    public string RootCertificate { get; set; } = string.Empty;

    /// <summary>Plain HTTP listener for CRL, CA certificates and OCSP.</summary>
    public HttpOptions Http { get; set; } = new();

    /// <summary>The gRPC sync listener (mTLS); wired by the sync endpoint.</summary>
    public MirrorSyncOptions Sync { get; set; } = new();

    /// <summary>One entry per factory (issuing CA).</summary>
    public List<FactoryOptions> Factories { get; set; } = [];

    /// <summary>CRL publishing.</summary>
    public CrlOptions Crl { get; set; } = new();

    /// <summary>OCSP responder.</summary>
    public OcspOptions Ocsp { get; set; } = new();

    /// <summary>The registry file path.</summary>
    public string RegistryPath => Path.Combine(DataDirectory, "registry.sqlite");

    /// <summary>Makes every relative path absolute against <paramref name="baseDirectory"/>.</summary>
    public void ResolvePaths(string baseDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(baseDirectory);
        DataDirectory = Resolve(baseDirectory, DataDirectory);
        RootCertificate = Resolve(baseDirectory, RootCertificate);
        Sync.ServerCertificate = Resolve(baseDirectory, Sync.ServerCertificate);
        Sync.ServerKey = Resolve(baseDirectory, Sync.ServerKey);
        Sync.ClientCaCertificate = Resolve(baseDirectory, Sync.ClientCaCertificate);
        foreach (var f in Factories)
        {
            foreach (var pair in new[] { f.IssuingCa, f.OcspResponder })
            {
                pair.Certificate = Resolve(baseDirectory, pair.Certificate);
                pair.Key.ResolvePaths(baseDirectory);
            }
        }
    }

    private static string Resolve(string baseDirectory, string path) =>
        string.IsNullOrWhiteSpace(path) ? path : Path.GetFullPath(path, baseDirectory);
}

/// <summary>"MirrorCa:Http".</summary>
public sealed class HttpOptions
{
    /// <summary>Listen URL, e.g. http://127.0.0.1:8080 (plain HTTP: CRLs and OCSP responses are signed objects).</summary>
    public string Listen { get; set; } = "http://127.0.0.1:8080";

    /// <summary>Largest accepted request body in bytes (larger: 413).</summary>
    public int MaxRequestBytes { get; set; } = 64 * 1024;
}

/// <summary>"MirrorCa:Sync": the mTLS gRPC endpoint factories dial.</summary>
public sealed class MirrorSyncOptions
{
    /// <summary>Listen URL (https).</summary>
    public string Listen { get; set; } = string.Empty;

    /// <summary>TLS server certificate (PEM).</summary>
    public string ServerCertificate { get; set; } = string.Empty;

    /// <summary>TLS server key (PEM PKCS#8).</summary>
    public string ServerKey { get; set; } = string.Empty;

    /// <summary>CA that issues factory sync client certificates.</summary>
    public string ClientCaCertificate { get; set; } = string.Empty;

    /// <summary>Largest gRPC message in bytes.</summary>
    public int MaxMessageBytes { get; set; } = 4 * 1024 * 1024;
}

/// <summary>"MirrorCa:Factories[i]".</summary>
public sealed class FactoryOptions
{
    /// <summary>Factory id (1-32 of [A-Za-z0-9_-]), as in the journal genesis; used in URLs (/crl/{id}.crl).</summary>
    public string FactoryId { get; set; } = string.Empty;

    /// <summary>CN of the factory's sync client certificate (mTLS allow-list).</summary>
    public string SyncClientSubjectCn { get; set; } = string.Empty;

    /// <summary>The issuing CA certificate and the mirror's clone of its key (signs CRLs).</summary>
    public CertificateAndKeyOptions IssuingCa { get; set; } = new();

    /// <summary>The delegated OCSP responder certificate and key.</summary>
    public CertificateAndKeyOptions OcspResponder { get; set; } = new();
}

/// <summary>A certificate file and its key.</summary>
public sealed class CertificateAndKeyOptions
{
    /// <summary>Certificate file (PEM or DER).</summary>
    public string Certificate { get; set; } = string.Empty;

    /// <summary>The key.</summary>
    public KeyOptions Key { get; set; } = new();
}

/// <summary>Where a private key lives: a software PKCS#8 file or a PKCS#11 token (see <see cref="Keys.SigningKeyOptions"/>).</summary>
public sealed class KeyOptions : Keys.SigningKeyOptions
{
}

/// <summary>"MirrorCa:Crl".</summary>
public sealed class CrlOptions
{
    /// <summary>nextUpdate - thisUpdate.</summary>
    public TimeSpan Validity { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Rebuild an unchanged CRL once it is this old; less than <see cref="Validity"/>.</summary>
    public TimeSpan RefreshAfter { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How often the daemon polls the registry for revocations made elsewhere (e.g. the CLI) and rebuilds.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>"MirrorCa:Ocsp".</summary>
public sealed class OcspOptions
{
    /// <summary>nextUpdate - thisUpdate of each answer.</summary>
    public TimeSpan Validity { get; set; } = TimeSpan.FromDays(1);

    /// <summary>Answer for never-issued serials of a known issuer (RFC 6960 §2.2): Revoked (default) or Unknown.</summary>
    public NeverIssuedPolicy NeverIssued { get; set; } = NeverIssuedPolicy.Revoked;

    /// <summary>How long a signed nonce-less answer is reused; zero disables; less than <see cref="Validity"/>.</summary>
    public TimeSpan CacheDuration { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Cache size bound.</summary>
    public int MaxCacheEntries { get; set; } = 100_000;
}

/// <summary>Validates <see cref="MirrorCaOptions"/> at startup; each failure names the configuration key.</summary>
public sealed partial class MirrorCaOptionsValidator : IValidateOptions<MirrorCaOptions>
{
    private static readonly string[] Environments = ["dev", "test", "staging", "production"];

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, MirrorCaOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        const string S = MirrorCaOptions.SectionName;
        if (!Environments.Contains(options.Environment))
        {
            errors.Add($"{S}:Environment: '{options.Environment}' is not one of {string.Join(", ", Environments)}");
        }

        if (string.IsNullOrWhiteSpace(options.DataDirectory))
        {
            errors.Add($"{S}:DataDirectory: required");
        }

        RequireFile(errors, $"{S}:RootCertificate", options.RootCertificate);
        if (File.Exists(options.RootCertificate))
        {
            try
            {
                using var root = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(options.RootCertificate);
                if (Keys.PkiEnvironment.Check($"{S}:RootCertificate", $"{S}:Environment", options.Environment, root) is { } mixed)
                {
                    errors.Add(mixed);
                }
            }
            catch (System.Security.Cryptography.CryptographicException)
            {
                // Reported where the certificate is loaded.
            }
        }
        if (!Uri.TryCreate(options.Http.Listen, UriKind.Absolute, out var listen) || listen.Scheme != Uri.UriSchemeHttp)
        {
            errors.Add($"{S}:Http:Listen: '{options.Http.Listen}' is not an http:// URL");
        }

        if (MirrorSyncServices.SyncEnabled(options))
        {
            if (!OfflinePki.Hosting.ListenAddress.TryParse(options.Sync.Listen, Uri.UriSchemeHttps, out _, out var syncError))
            {
                errors.Add($"{S}:Sync:Listen: {syncError}");
            }

            RequireFile(errors, $"{S}:Sync:ServerCertificate", options.Sync.ServerCertificate);
            RequireFile(errors, $"{S}:Sync:ServerKey", options.Sync.ServerKey);
            RequireFile(errors, $"{S}:Sync:ClientCaCertificate", options.Sync.ClientCaCertificate);
            if (options.Sync.MaxMessageBytes is < 64 * 1024 or > 64 * 1024 * 1024)
            {
                errors.Add($"{S}:Sync:MaxMessageBytes: {options.Sync.MaxMessageBytes} is outside 65536..67108864");
            }
        }

        if (options.Http.MaxRequestBytes is < 1024 or > 16 * 1024 * 1024)
        {
            errors.Add($"{S}:Http:MaxRequestBytes: {options.Http.MaxRequestBytes} is outside 1024..16777216");
        }

        if (options.Factories.Count == 0)
        {
            errors.Add($"{S}:Factories: at least one factory is required");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < options.Factories.Count; i++)
        {
            var f = options.Factories[i];
            var p = $"{S}:Factories[{i}]";
            if (!FactoryIdPattern().IsMatch(f.FactoryId ?? string.Empty))
            {
                errors.Add($"{p}:FactoryId: '{f.FactoryId}' must be 1-32 of [A-Za-z0-9_-]");
            }
            else if (!seen.Add(f.FactoryId!))
            {
                errors.Add($"{p}:FactoryId: '{f.FactoryId}' appears twice");
            }

            RequireFile(errors, $"{p}:IssuingCa:Certificate", f.IssuingCa.Certificate);
            errors.AddRange(Keys.SigningKeyOptions.Validate($"{p}:IssuingCa:Key", f.IssuingCa.Key));
            RequireFile(errors, $"{p}:OcspResponder:Certificate", f.OcspResponder.Certificate);
            errors.AddRange(Keys.SigningKeyOptions.Validate($"{p}:OcspResponder:Key", f.OcspResponder.Key));
        }

        if (options.Crl.Validity <= TimeSpan.Zero)
        {
            errors.Add($"{S}:Crl:Validity: must be positive");
        }

        if (options.Crl.RefreshAfter <= TimeSpan.Zero || options.Crl.RefreshAfter >= options.Crl.Validity)
        {
            errors.Add($"{S}:Crl:RefreshAfter: {options.Crl.RefreshAfter} must be positive and less than Crl:Validity ({options.Crl.Validity})");
        }

        if (options.Crl.PollInterval <= TimeSpan.Zero)
        {
            errors.Add($"{S}:Crl:PollInterval: must be positive");
        }

        if (options.Ocsp.Validity <= TimeSpan.Zero)
        {
            errors.Add($"{S}:Ocsp:Validity: must be positive");
        }

        if (options.Ocsp.CacheDuration < TimeSpan.Zero || options.Ocsp.CacheDuration >= options.Ocsp.Validity)
        {
            errors.Add($"{S}:Ocsp:CacheDuration: {options.Ocsp.CacheDuration} must be in [0, Ocsp:Validity)");
        }

        if (!Enum.IsDefined(options.Ocsp.NeverIssued))
        {
            errors.Add($"{S}:Ocsp:NeverIssued: must be Revoked or Unknown");
        }

        if (options.Ocsp.MaxCacheEntries < 1)
        {
            errors.Add($"{S}:Ocsp:MaxCacheEntries: must be at least 1");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void RequireFile(List<string> errors, string key, string path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            errors.Add($"{key}: required");
        }
        else if (!File.Exists(path))
        {
            errors.Add($"{key}: file '{path}' not found");
        }
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{1,32}$")]
    private static partial Regex FactoryIdPattern();
}
