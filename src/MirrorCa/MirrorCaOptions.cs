using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using OfflinePki.Ocsp;
using OfflinePki.Revocation;

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

    /// <summary>
    /// The mirror receipt signer (certificate with the mirror-receipt EKU, chained to the root, and its key): countersigns
    /// every applied journal head. Optional: without it, pushes get no receipt and factories cannot confirm their entries.
    /// </summary>
    public CertificateAndKeyOptions ReceiptSigner { get; set; } = new();
    /// <summary>The admin HTTPS API (mTLS, roles); disabled when Admin:Listen is empty.</summary>
    public AdminOptions Admin { get; set; } = new();

    /// <summary>The registry file path.</summary>
    public string RegistryPath => Path.Combine(DataDirectory, "registry.sqlite");

    /// <summary>Makes every relative path absolute against <paramref name="baseDirectory"/>.</summary>
    public void ResolvePaths(string baseDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(baseDirectory);
        DataDirectory = Resolve(baseDirectory, DataDirectory);
        RootCertificate = Resolve(baseDirectory, RootCertificate);
        Sync.ServerCertificate = Resolve(baseDirectory, Sync.ServerCertificate);
        Sync.ServerKey ??= new(); // "ServerKey": null in JSON; validation then names the key
        Sync.ServerKey.ResolvePaths(baseDirectory);
        Sync.ClientCaCertificate = Resolve(baseDirectory, Sync.ClientCaCertificate);
        ReceiptSigner.Certificate = Resolve(baseDirectory, ReceiptSigner.Certificate);
        ReceiptSigner.Key.File = Resolve(baseDirectory, ReceiptSigner.Key.File);
        Crl.PublishDirectory = Resolve(baseDirectory, Crl.PublishDirectory);
        Admin.ServerCertificate = Resolve(baseDirectory, Admin.ServerCertificate);
        Admin.ServerKey ??= new();
        Admin.ServerKey.ResolvePaths(baseDirectory);
        Admin.ClientCaCertificate = Resolve(baseDirectory, Admin.ClientCaCertificate);
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

    /// <summary>TLS server key: a PEM key file path (string) or a key section with a PKCS#11 URI (see <see cref="Keys.TlsKeyOptions"/>).</summary>
    public Keys.TlsKeyOptions ServerKey { get; set; } = new();

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

    /// <summary>
    /// Public http base URL of this mirror's CRL endpoint (e.g. "http://crl.example.com"); used to write freshestCRL
    /// (RFC 5280 §5.2.6) into full CRLs as "{PublicBaseUrl}/crl/{factory}-delta.crl". Empty: no freshestCRL.
    /// </summary>
    public string PublicBaseUrl { get; set; } = string.Empty;

    /// <summary>
    /// Directory the daemon writes every new CRL to ("{factory}.crl", "{factory}-delta.crl"), by atomic rename, for a
    /// static web server or CDN to publish. Empty: not written.
    /// </summary>
    public string PublishDirectory { get; set; } = string.Empty;

    /// <summary>Delta CRLs (RFC 5280 §5.2.4).</summary>
    public DeltaCrlOptions Deltas { get; set; } = new();

    /// <summary>
    /// CRL partitions (RFC 5280 §5.2.5 issuingDistributionPoint), 1 (default) for none. With N &gt; 1 the mirror also
    /// serves "/crl/{factory}-p{k}.crl", k = 0..N-1, each listing the revoked certificates whose serial hashes to k
    /// (CrlPartitioning) with an IDP naming "{PublicBaseUrl}/crl/{factory}-p{k}.crl"; the factory profile's
    /// CrlPartitions must be the same so certificates carry that URL as their CDP. Needs PublicBaseUrl; not combined with deltas.
    /// </summary>
    public int Partitions { get; set; } = 1;
}

/// <summary>Delta CRL options ("MirrorCa:Crl:Deltas").</summary>
public sealed class DeltaCrlOptions
{
    /// <summary>
    /// Serve "/crl/{factory}-delta.crl". With deltas a revocation rebuilds only the delta; the full CRL is rebuilt
    /// every Crl:RefreshAfter. Off by default: then every revocation rebuilds the full CRL at once.
    /// </summary>
    public bool Enabled { get; set; }

    /// <summary>Delta nextUpdate - thisUpdate (capped at the base's nextUpdate).</summary>
    public TimeSpan Validity { get; set; } = TimeSpan.FromDays(1);

    /// <summary>Rebuild an unchanged delta once it is this old; less than <see cref="Validity"/>.</summary>
    public TimeSpan RefreshAfter { get; set; } = TimeSpan.FromMinutes(15);
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

    /// <summary>Bound of the on-demand LRU (SHA-256 CertIDs, never-issued serials, certificates beyond <see cref="MaxCachedResponses"/>).</summary>
    public int MaxCacheEntries { get; set; } = 100_000;

    /// <summary>
    /// Pre-sign an RFC 5019 response for every known certificate (default true). Memory: ≈ 150 octets of status index
    /// per certificate plus ≈ 1 KB per pre-signed response (bounded by <see cref="MaxCachedResponses"/>). False: every
    /// request reads the registry and signs (with the short LRU of <see cref="CacheDuration"/>).
    /// </summary>
    public bool PresignAll { get; set; } = true;

    /// <summary>At most this many pre-signed responses are held; beyond it, certificates are signed on demand into the LRU.</summary>
    public int MaxCachedResponses { get; set; } = 1_000_000;

    /// <summary>A pre-signed response is re-signed this long before its nextUpdate; in (0, <see cref="Validity"/>).</summary>
    public TimeSpan RefreshBefore { get; set; } = TimeSpan.FromHours(12);

    /// <summary>Longest time between two reads of the registry's version counters by the pre-signed index (commits are normally seen at once through the WAL header).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The delegated responder certificate is renewed when it is this close to notAfter; positive.</summary>
    public TimeSpan ResponderRenewBefore { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Validity of a renewed responder certificate (short-lived: it carries id-pkix-ocsp-nocheck, RFC 6960 §4.2.2.2.1); more than <see cref="ResponderRenewBefore"/>.</summary>
    public TimeSpan ResponderValidity { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How often the responder certificates are checked for renewal; positive.</summary>
    public TimeSpan ResponderCheckInterval { get; set; } = TimeSpan.FromHours(1);
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
            errors.AddRange(Keys.SigningKeyOptions.Validate($"{S}:Sync:ServerKey", options.Sync.ServerKey));
            RequireFile(errors, $"{S}:Sync:ClientCaCertificate", options.Sync.ClientCaCertificate);
            if (options.Sync.MaxMessageBytes is < 64 * 1024 or > 64 * 1024 * 1024)
            {
                errors.Add($"{S}:Sync:MaxMessageBytes: {options.Sync.MaxMessageBytes} is outside 65536..67108864");
            }
        }

        if (!string.IsNullOrWhiteSpace(options.ReceiptSigner.Certificate) || !string.IsNullOrWhiteSpace(options.ReceiptSigner.Key.File) || options.ReceiptSigner.Key.IsPkcs11)
        {
            RequireFile(errors, $"{S}:ReceiptSigner:Certificate", options.ReceiptSigner.Certificate);
            if (options.ReceiptSigner.Key.IsPkcs11)
            {
                errors.AddRange(Keys.SigningKeyOptions.Validate($"{S}:ReceiptSigner:Key", options.ReceiptSigner.Key));
            }
            else
            {
                RequireFile(errors, $"{S}:ReceiptSigner:Key:File", options.ReceiptSigner.Key.File);
            }

            if (File.Exists(options.ReceiptSigner.Certificate) && (options.ReceiptSigner.Key.IsPkcs11 || File.Exists(options.ReceiptSigner.Key.File)))
            {
                try
                {
                    using var cert = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(options.ReceiptSigner.Certificate);
                    if (!OfflinePki.Sync.MirrorReceiptVerifier.HasReceiptEku(cert))
                    {
                        errors.Add($"{S}:ReceiptSigner:Certificate: '{cert.Subject}' lacks the mirror-receipt EKU {OfflinePki.Asn1.Oids.MirrorReceiptEku}");
                    }
                }
                catch (System.Security.Cryptography.CryptographicException ex)
                {
                    errors.Add($"{S}:ReceiptSigner:Certificate: does not load: {ex.Message}");
                }
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

        if (!string.IsNullOrEmpty(options.Crl.PublicBaseUrl)
            && (!Uri.TryCreate(options.Crl.PublicBaseUrl, UriKind.Absolute, out var crlBase) || crlBase.Scheme != Uri.UriSchemeHttp))
        {
            errors.Add($"{S}:Crl:PublicBaseUrl: '{options.Crl.PublicBaseUrl}' is not an http:// URL (RFC 5280 §4.2.1.13 CRLs are fetched over plain http)");
        }

        if (MirrorAdminApi.Enabled(options))
        {
            if (!OfflinePki.Hosting.ListenAddress.TryParse(options.Admin.Listen, Uri.UriSchemeHttps, out _, out var adminError))
            {
                errors.Add($"{S}:Admin:Listen: {adminError}");
            }

            RequireFile(errors, $"{S}:Admin:ServerCertificate", options.Admin.ServerCertificate);
            errors.AddRange(Keys.SigningKeyOptions.Validate($"{S}:Admin:ServerKey", options.Admin.ServerKey));
            RequireFile(errors, $"{S}:Admin:ClientCaCertificate", options.Admin.ClientCaCertificate);
            if (options.Admin.Clients.Count == 0)
            {
                errors.Add($"{S}:Admin:Clients: at least one admin client (SubjectCn, Role) is required when Admin:Listen is set");
            }

            var cns = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < options.Admin.Clients.Count; i++)
            {
                var c = options.Admin.Clients[i];
                if (string.IsNullOrWhiteSpace(c.SubjectCn))
                {
                    errors.Add($"{S}:Admin:Clients[{i}]:SubjectCn: required");
                }
                else if (!cns.Add(c.SubjectCn))
                {
                    errors.Add($"{S}:Admin:Clients[{i}]:SubjectCn: '{c.SubjectCn}' appears twice");
                }

                if (!Enum.IsDefined(c.Role))
                {
                    errors.Add($"{S}:Admin:Clients[{i}]:Role: must be Auditor or Revoker");
                }
            }
        }

        if (options.Crl.Partitions is < 1 or > CrlPartitioning.MaxPartitions)
        {
            errors.Add($"{S}:Crl:Partitions: {options.Crl.Partitions} is outside 1..{CrlPartitioning.MaxPartitions}");
        }
        else if (options.Crl.Partitions > 1 && string.IsNullOrEmpty(options.Crl.PublicBaseUrl))
        {
            errors.Add($"{S}:Crl:Partitions: partitioned CRLs need Crl:PublicBaseUrl (their issuingDistributionPoint URL must match the certificates' CDP)");
        }
        else if (options.Crl.Partitions > 1 && options.Crl.Deltas.Enabled)
        {
            errors.Add($"{S}:Crl:Partitions: partitioned CRLs and Crl:Deltas:Enabled cannot be combined (yet); choose one");
        }

        if (options.Crl.Deltas.Enabled)
        {
            var dv = options.Crl.Deltas;
            if (dv.Validity <= TimeSpan.Zero || dv.Validity > options.Crl.Validity)
            {
                errors.Add($"{S}:Crl:Deltas:Validity: {dv.Validity} must be positive and at most Crl:Validity ({options.Crl.Validity})");
            }

            if (dv.RefreshAfter <= TimeSpan.Zero || dv.RefreshAfter >= dv.Validity)
            {
                errors.Add($"{S}:Crl:Deltas:RefreshAfter: {dv.RefreshAfter} must be positive and less than Crl:Deltas:Validity ({dv.Validity})");
            }
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

        if (options.Ocsp.MaxCachedResponses < 1)
        {
            errors.Add($"{S}:Ocsp:MaxCachedResponses: must be at least 1");
        }

        if (options.Ocsp.RefreshBefore <= TimeSpan.Zero || options.Ocsp.RefreshBefore >= options.Ocsp.Validity)
        {
            errors.Add($"{S}:Ocsp:RefreshBefore: {options.Ocsp.RefreshBefore} must be in (0, Ocsp:Validity {options.Ocsp.Validity})");
        }

        if (options.Ocsp.PollInterval <= TimeSpan.Zero)
        {
            errors.Add($"{S}:Ocsp:PollInterval: must be positive");
        }

        if (options.Ocsp.ResponderRenewBefore <= TimeSpan.Zero || options.Ocsp.ResponderValidity <= options.Ocsp.ResponderRenewBefore)
        {
            errors.Add($"{S}:Ocsp:ResponderRenewBefore: {options.Ocsp.ResponderRenewBefore} must be positive and less than Ocsp:ResponderValidity ({options.Ocsp.ResponderValidity})");
        }

        if (options.Ocsp.ResponderCheckInterval <= TimeSpan.Zero)
        {
            errors.Add($"{S}:Ocsp:ResponderCheckInterval: must be positive");
        }

        var signingKeys = options.Factories.SelectMany((f, i) => new (string, Keys.SigningKeyOptions)[]
            { ($"{S}:Factories:{i}:IssuingCa:Key", f.IssuingCa.Key), ($"{S}:Factories:{i}:OcspResponder:Key", f.OcspResponder.Key) })
            .Append(($"{S}:ReceiptSigner:Key", options.ReceiptSigner.Key));
        errors.AddRange(Keys.Pkcs11ModuleClaims.SharedModuleErrors(signingKeys,
            [($"{S}:Sync:ServerKey", options.Sync.ServerKey), ($"{S}:Admin:ServerKey", options.Admin.ServerKey)]));
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
