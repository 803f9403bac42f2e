using OfflinePki.Keys;
using System.Globalization;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using OfflinePki.Hosting;
using OfflinePki.Issuance;
using OfflinePki.Policy;

namespace OfflinePki.FactoryCa;

/// <summary>The "FactoryCa" configuration section. Relative paths resolve against the config file's directory.</summary>
public sealed class FactoryCaOptions
{
    /// <summary>The configuration section name.</summary>
    public const string SectionName = "FactoryCa";

    /// <summary>Factory id, 1-32 of [A-Za-z0-9_-].</summary>
    public string FactoryId { get; set; } = string.Empty;

    /// <summary>dev, test, staging or production.</summary>
    public string Environment { get; set; } = string.Empty;

    /// <summary>Directory for the journal and index.</summary>
    public string DataDirectory { get; set; } = string.Empty;

    /// <summary>PEM root CA certificate (returned by EST cacerts).</summary>
    public string RootCertificate { get; set; } = string.Empty;

    /// <summary>The issuing CA certificate and key.</summary>
    public KeyedCertificateOptions IssuingCa { get; set; } = new();

    /// <summary>The journal signer certificate and key (used by the journal; not validated here).</summary>
    public KeyedCertificateOptions JournalSigner { get; set; } = new();

    /// <summary>EST listener.</summary>
    public EstOptions Est { get; set; } = new();

    /// <summary>Stations allowed to enroll.</summary>
    public List<StationOptions> Stations { get; set; } = [];

    /// <summary>The single profile (the one-profile form); ignored when <see cref="Profiles"/> is not empty.</summary>
    public ProfileOptions Profile { get; set; } = new();

    /// <summary>The profiles this factory's issuing CA serves (FactoryCa:Profiles:i); empty means the single <see cref="Profile"/>.</summary>
    public List<ProfileOptions> Profiles { get; set; } = [];

    /// <summary>The profile used when a request names none (no label); empty means the first profile.</summary>
    public string DefaultProfile { get; set; } = string.Empty;

    /// <summary>The configured profiles with the configuration key prefix of each (FactoryCa:Profile or FactoryCa:Profiles:i).</summary>
    public IReadOnlyList<(string Key, ProfileOptions Profile)> EffectiveProfiles() => Profiles.Count == 0
        ? [($"{SectionName}:Profile", Profile)]
        : Profiles.Select((p, i) => ($"{SectionName}:Profiles:{i}", p)).ToList();

    /// <summary>Builds the immutable profile set (every profile validated).</summary>
    /// <exception cref="ArgumentException">A profile is invalid (see <see cref="FactoryCaOptionsValidator"/> for keyed messages).</exception>
    /// <exception cref="FormatException">A validity is neither a TimeSpan nor "NoWellDefinedExpiration".</exception>
    public CertificateProfileSet ToProfileSet() =>
        new(EffectiveProfiles().Select(p => p.Profile.ToProfile()), string.IsNullOrEmpty(DefaultProfile) ? null : DefaultProfile);

    /// <summary>Bounded divergence from the mirror: how much of the journal may lack a mirror receipt (FactoryCa:Divergence).</summary>
    public OfflinePki.Sync.DivergenceOptions Divergence { get; set; } = new();

    /// <summary>Production orders (FactoryCa:Orders): whether every enrollment must name one.</summary>
    public OfflinePki.Orders.OrderPolicyOptions Orders { get; set; } = new();

    /// <summary>Makes every relative path absolute against <paramref name="baseDirectory"/>.</summary>
    public void ResolvePaths(string baseDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(baseDirectory);
        string R(string p) => string.IsNullOrEmpty(p) ? p : Path.GetFullPath(p, baseDirectory);
        DataDirectory = R(DataDirectory);
        RootCertificate = R(RootCertificate);
        IssuingCa.Certificate = R(IssuingCa.Certificate);
        IssuingCa.Key.ResolvePaths(baseDirectory);
        JournalSigner.Certificate = R(JournalSigner.Certificate);
        JournalSigner.Key.ResolvePaths(baseDirectory);
        Est.ServerCertificate = R(Est.ServerCertificate);
        Est.ServerKey ??= new(); // "ServerKey": null in JSON; validation then names the key
        Est.ServerKey.ResolvePaths(baseDirectory);
        Est.RaCaCertificate = R(Est.RaCaCertificate);
    }
}

/// <summary>A PEM certificate and its key.</summary>
public sealed class KeyedCertificateOptions
{
    /// <summary>PEM certificate path.</summary>
    public string Certificate { get; set; } = string.Empty;

    /// <summary>The private key.</summary>
    public KeyOptions Key { get; set; } = new();
}

/// <summary>Where a private key lives: a software PKCS#8 file or a PKCS#11 token (see <see cref="Keys.SigningKeyOptions"/>).</summary>
public sealed class KeyOptions : Keys.SigningKeyOptions
{
}

/// <summary>The EST (RFC 7030) listener.</summary>
public sealed class EstOptions
{
    /// <summary>https://IP:PORT to listen on (port 0 picks a free port; host may be an IP, "localhost" or "*").</summary>
    public string Listen { get; set; } = string.Empty;

    /// <summary>PEM TLS server certificate.</summary>
    public string ServerCertificate { get; set; } = string.Empty;

    /// <summary>TLS server key: a PEM key file path (string) or a key section with a PKCS#11 URI (see <see cref="Keys.TlsKeyOptions"/>).</summary>
    public Keys.TlsKeyOptions ServerKey { get; set; } = new();

    /// <summary>PEM RA/TLS CA that certifies station client certificates.</summary>
    public string RaCaCertificate { get; set; } = string.Empty;

    /// <summary>Largest request body, in bytes (1024..1048576); larger requests get 413.</summary>
    public long MaxRequestBytes { get; set; } = 16384;

    /// <summary>Retry-After sent with 503 when the journal or CA key is unavailable.</summary>
    public TimeSpan RetryAfter { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// EST labels (RFC 7030 §3.2.2): /.well-known/est/&lt;label&gt;/&lt;operation&gt; selects a profile and optionally an order.
    /// Label names are 1-64 of [A-Za-z0-9._-] and not an operation name.
    /// </summary>
    public Dictionary<string, EstLabelOptions> Labels { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>What an EST label selects (FactoryCa:Est:Labels:&lt;label&gt;).</summary>
public sealed class EstLabelOptions
{
    /// <summary>The profile name (one of the configured profiles).</summary>
    public string Profile { get; set; } = string.Empty;

    /// <summary>A production order id every certificate under this label consumes; empty for none (the X-Order-Id header may give one).</summary>
    public string OrderId { get; set; } = string.Empty;
}

/// <summary>One station allowed to enroll.</summary>
public sealed class StationOptions
{
    /// <summary>Stable station id (journaled).</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>Subject CN of its TLS client certificate.</summary>
    public string CertificateSubjectCn { get; set; } = string.Empty;

    /// <summary>Profile names it may request; empty means every profile.</summary>
    public List<string> Profiles { get; set; } = [];

    /// <summary>Production order ids it may consume; empty means every accepted order.</summary>
    public List<string> Orders { get; set; } = [];

    /// <summary>True to refuse every enrollment from this station (HTTP 403) without removing it from the list.</summary>
    public bool Suspended { get; set; }

    /// <summary>Most enrollments per minute (a token bucket, bursts up to one minute's worth); 0 means no limit.</summary>
    public int RateLimitPerMinute { get; set; }

    /// <summary>True when the station may use EST serverkeygen (RFC 7030 §4.4).</summary>
    public bool AllowServerKeyGen { get; set; }
}

/// <summary>One certificate profile (see <see cref="CertificateProfile"/>).</summary>
public sealed class ProfileOptions
{
    /// <summary>idevid (default), tls-client or matter-dac.</summary>
    public string Kind { get; set; } = "idevid";

    /// <summary>matter-dac: Matter vendor id, 4 hex digits (e.g. "FFF1").</summary>
    public string VendorId { get; set; } = string.Empty;

    /// <summary>matter-dac: Matter product id, 4 hex digits (e.g. "8000").</summary>
    public string ProductId { get; set; } = string.Empty;

    /// <summary>True when EST serverkeygen may be used with this profile (the station must allow it too).</summary>
    public bool AllowServerKeyGen { get; set; }

    /// <summary>tls-client: also write the SAN hardwareModuleName (RFC 4108 §5); idevid always has it, matter-dac never.</summary>
    public bool IncludeHardwareModuleName { get; set; }

    /// <summary>Device key types accepted, in preference order, of P-256, P-384, RSA; empty for the kind's default.</summary>
    public List<string> KeyTypes { get; set; } = [];

    /// <summary>The literal for RFC 5280 §4.1.2.5 notAfter 99991231235959Z.</summary>
    public const string NoWellDefinedExpiration = "NoWellDefinedExpiration";

    /// <summary>Profile name.</summary>
    public string Name { get; set; } = "idevid";

    /// <summary>Subject CN.</summary>
    public string SubjectCommonName { get; set; } = string.Empty;

    /// <summary>Subject O.</summary>
    public string SubjectOrganization { get; set; } = string.Empty;

    /// <summary>A TimeSpan ("3650.00:00:00") or "NoWellDefinedExpiration".</summary>
    public string Validity { get; set; } = NoWellDefinedExpiration;

    /// <summary>CRL URL.</summary>
    public string CrlDistributionPointUrl { get; set; } = string.Empty;

    /// <summary>OCSP URL.</summary>
    public string OcspUrl { get; set; } = string.Empty;

    /// <summary>caIssuers URL.</summary>
    public string CaIssuersUrl { get; set; } = string.Empty;

    /// <summary>hwType OID; default <see cref="CertificateProfile.DefaultHardwareModuleType"/>.</summary>
    public string? HardwareModuleType { get; set; }

    /// <summary>Device serial pattern.</summary>
    public string DeviceIdPattern { get; set; } = "^[A-Za-z0-9-]{4,64}$";

    /// <summary>Device-ID check digit: none (default), luhn or iso7064-mod37-36 (see <see cref="Policy.DeviceIdFormat"/>).</summary>
    public string DeviceIdCheckDigit { get; set; } = "none";

    /// <summary>Delta CRL URL written as freshestCRL into certificates (RFC 5280 §4.2.1.15); empty (default) for none.</summary>
    public string FreshestCrlUrl { get; set; } = string.Empty;

    /// <summary>CRL partitions (RFC 5280 §5.2.5); 1 (default) for one CRL. Must equal MirrorCa:Crl:Partitions.</summary>
    public int CrlPartitions { get; set; } = 1;

    /// <summary>Builds the immutable profile.</summary>
    /// <exception cref="ArgumentException">A value is invalid; ParamName names it.</exception>
    /// <exception cref="FormatException">Validity is neither a TimeSpan nor "NoWellDefinedExpiration".</exception>
    public CertificateProfile ToProfile()
    {
        Policy.DeviceIdFormat.Parse(DeviceIdCheckDigit, "deviceIdCheckDigit");
        TimeSpan? validity = null;
        if (!string.Equals(Validity, NoWellDefinedExpiration, StringComparison.Ordinal))
        {
            validity = TimeSpan.Parse(Validity, CultureInfo.InvariantCulture);
        }

        var kind = CertificateProfile.ParseKind(Kind);
        return new CertificateProfile(Name, SubjectCommonName, SubjectOrganization, validity,
            Url(CrlDistributionPointUrl, "crlDistributionPointUrl"), Url(OcspUrl, "ocspUrl"), Url(CaIssuersUrl, "caIssuersUrl"),
            HardwareModuleType, DeviceIdPattern)
        {
            FreshestCrlUrl = string.IsNullOrEmpty(FreshestCrlUrl) ? null : Url(FreshestCrlUrl, "freshestCrlUrl"),
            CrlPartitions = CrlPartitions,
            Kind = kind,
            MatterVendorId = Hex16(VendorId, "VendorId"),
            MatterProductId = Hex16(ProductId, "ProductId"),
            AllowServerKeyGen = AllowServerKeyGen,
            IncludeHardwareModuleName = IncludeHardwareModuleName,
            AllowedKeyTypes = KeyTypes,
        }.EnsureValid();
    }

    // Matter Core §6.5.6.1: a 16-bit id written as 4 hex digits.
    private static ushort? Hex16(string value, string param)
    {
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }

        string v = value.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? value[2..] : value;
        return v.Length == 4 && ushort.TryParse(v, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var id)
            ? id : throw new ArgumentException($"'{value}' is not 4 hex digits (e.g. FFF1)", param);
    }

    private static Uri Url(string value, string param) =>
        Uri.TryCreate(value, UriKind.Absolute, out var u) ? u : throw new ArgumentException($"'{value}' is not an absolute URL", param);
}

/// <summary>Validates <see cref="FactoryCaOptions"/> at startup; each failure names its configuration key.</summary>
public sealed class FactoryCaOptionsValidator : IValidateOptions<FactoryCaOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, FactoryCaOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        const string S = FactoryCaOptions.SectionName;

        if (!System.Text.RegularExpressions.Regex.IsMatch(options.FactoryId, "^[A-Za-z0-9_-]{1,32}$"))
        {
            errors.Add($"{S}:FactoryId: '{options.FactoryId}' must be 1-32 of [A-Za-z0-9_-]");
        }

        if (options.Environment is not ("dev" or "test" or "staging" or "production"))
        {
            errors.Add($"{S}:Environment: '{options.Environment}' must be dev, test, staging or production");
        }

        var root = Cert(errors, $"{S}:RootCertificate", options.RootCertificate);
        var issuing = Cert(errors, $"{S}:IssuingCa:Certificate", options.IssuingCa.Certificate);
        errors.AddRange(Keys.SigningKeyOptions.Validate($"{S}:IssuingCa:Key", options.IssuingCa.Key));
        errors.AddRange(Keys.SigningKeyOptions.Validate($"{S}:JournalSigner:Key", options.JournalSigner.Key));
        Cert(errors, $"{S}:Est:ServerCertificate", options.Est.ServerCertificate);
        errors.AddRange(Keys.SigningKeyOptions.Validate($"{S}:Est:ServerKey", options.Est.ServerKey));
        var raCa = Cert(errors, $"{S}:Est:RaCaCertificate", options.Est.RaCaCertificate);

        foreach (var (k, c) in new[] { ($"{S}:RootCertificate", root), ($"{S}:IssuingCa:Certificate", issuing) })
        {
            if (c is not null && PkiEnvironment.Check(k, $"{S}:Environment", options.Environment, c) is { } mixed)
            {
                errors.Add(mixed);
            }
        }

        if (root is not null && issuing is not null && !ChainsTo(issuing, root))
        {
            errors.Add($"{S}:IssuingCa:Certificate: '{issuing.Subject}' does not chain to {S}:RootCertificate '{root.Subject}'");
        }

        if (raCa is not null && root is not null && raCa.RawDataMemory.Span.SequenceEqual(root.RawDataMemory.Span))
        {
            errors.Add($"{S}:Est:RaCaCertificate: must be a separate TLS/RA CA, not the device root");
        }

        if (!ListenAddress.TryParse(options.Est.Listen, Uri.UriSchemeHttps, out _, out string? listenError))
        {
            errors.Add($"{S}:Est:Listen: {listenError}");
        }

        if (options.Est.MaxRequestBytes is < 1024 or > 1024 * 1024)
        {
            errors.Add($"{S}:Est:MaxRequestBytes: {options.Est.MaxRequestBytes} is outside 1024..1048576");
        }

        if (options.Est.RetryAfter <= TimeSpan.Zero || options.Est.RetryAfter > TimeSpan.FromHours(1))
        {
            errors.Add($"{S}:Est:RetryAfter: {options.Est.RetryAfter} must be positive and at most 01:00:00");
        }

        if (options.Stations.Count == 0)
        {
            errors.Add($"{S}:Stations: at least one station is required");
        }

        var profileNames = ValidateProfiles(errors, options, issuing);

        for (int i = 0; i < options.Stations.Count; i++)
        {
            var s = options.Stations[i];
            if (string.IsNullOrWhiteSpace(s.Id) || string.IsNullOrWhiteSpace(s.CertificateSubjectCn))
            {
                errors.Add($"{S}:Stations:{i}: Id and CertificateSubjectCn are required");
            }

            foreach (var profile in s.Profiles.Where(p => !profileNames.Contains(p)))
            {
                errors.Add($"{S}:Stations:{i}:Profiles: unknown profile '{profile}' (profiles are {string.Join(", ", profileNames)})");
            }
        }

        foreach (var dup in options.Stations.GroupBy(s => s.CertificateSubjectCn, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            errors.Add($"{S}:Stations: CertificateSubjectCn '{dup.Key}' is listed {dup.Count()} times");
        }

        for (int i = 0; i < options.Stations.Count; i++)
        {
            foreach (var order in options.Stations[i].Orders.Where(o => !OfflinePki.Orders.ProductionOrder.IsValidOrderId(o)))
            {
                errors.Add($"{S}:Stations:{i}:Orders: '{order}' is not an order id (1-64 of [A-Za-z0-9._-])");
            }
        }

        foreach (var dup in options.Stations.GroupBy(s => s.Id, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            errors.Add($"{S}:Stations: Id '{dup.Key}' is listed {dup.Count()} times");
        }

        errors.AddRange(options.Divergence.Validate(FactoryCaOptions.SectionName + ":" + OfflinePki.Sync.DivergenceOptions.Section));
        errors.AddRange(Keys.Pkcs11ModuleClaims.SharedModuleErrors(
            [($"{S}:IssuingCa:Key", options.IssuingCa.Key), ($"{S}:JournalSigner:Key", options.JournalSigner.Key)],
            [($"{S}:Est:ServerKey", options.Est.ServerKey)]));
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>Validates every profile (keyed FactoryCa:Profile:X or FactoryCa:Profiles:i:X), the default profile and the EST labels.</summary>
    private static HashSet<string> ValidateProfiles(List<string> errors, FactoryCaOptions options, X509Certificate2? issuing)
    {
        const string S = FactoryCaOptions.SectionName;
        var names = new HashSet<string>(StringComparer.Ordinal);
        if (options.Profiles.Count > 0 && !string.IsNullOrEmpty(options.Profile.SubjectCommonName))
        {
            errors.Add($"{S}:Profile: give either {S}:Profile (one profile) or {S}:Profiles (a list), not both");
        }

        foreach (var (prefix, po) in options.EffectiveProfiles())
        {
            try
            {
                var profile = po.ToProfile();
                if (!names.Add(profile.Name))
                {
                    errors.Add($"{prefix}:Name: profile name '{profile.Name}' is used twice");
                }

                if (profile.Kind == CertificateProfileKind.MatterDac && issuing is not null
                    && issuing.GetECDsaPublicKey() is not { KeySize: 256 })
                {
                    errors.Add($"{prefix}:Kind: a matter-dac profile needs a P-256 issuing CA signing ecdsa-with-SHA256 (Matter Core §6.1); {S}:IssuingCa:Certificate is not P-256");
                }
            }
            catch (ArgumentException ex)
            {
                string key = ex.ParamName is { Length: > 0 } p ? char.ToUpperInvariant(p[0]) + p[1..] : "?";
                errors.Add($"{prefix}:{key}: {FirstLine(ex.Message)}");
                if (!string.IsNullOrEmpty(po.Name))
                {
                    names.Add(po.Name);
                }
            }
            catch (FormatException)
            {
                errors.Add($"{prefix}:Validity: '{po.Validity}' is neither a TimeSpan (d.hh:mm:ss) nor '{ProfileOptions.NoWellDefinedExpiration}'");
                names.Add(po.Name);
            }
        }

        if (!string.IsNullOrEmpty(options.DefaultProfile) && !names.Contains(options.DefaultProfile))
        {
            errors.Add($"{S}:DefaultProfile: '{options.DefaultProfile}' is not a configured profile ({string.Join(", ", names)})");
        }

        foreach (var (label, target) in options.Est.Labels)
        {
            if (!System.Text.RegularExpressions.Regex.IsMatch(label, "^[A-Za-z0-9._-]{1,64}$") || EstOperationNames.Contains(label))
            {
                errors.Add($"{S}:Est:Labels:{label}: a label is 1-64 of [A-Za-z0-9._-] and not an EST operation name (RFC 7030 §3.2.2)");
            }

            if (!names.Contains(target.Profile))
            {
                errors.Add($"{S}:Est:Labels:{label}:Profile: '{target.Profile}' is not a configured profile ({string.Join(", ", names)})");
            }
        }

        return names;
    }

    /// <summary>The RFC 7030 operation path segments, which cannot be labels.</summary>
    internal static readonly HashSet<string> EstOperationNames = new(StringComparer.OrdinalIgnoreCase)
    {
        "cacerts", "simpleenroll", "simplereenroll", "fullcmc", "serverkeygen", "csrattrs",
    };

    private static string FirstLine(string message)
    {
        int i = message.IndexOf(" (Parameter", StringComparison.Ordinal);
        return i >= 0 ? message[..i] : message;
    }

    private static bool FileExists(List<string> errors, string key, string path)
    {
        if (string.IsNullOrEmpty(path))
        {
            errors.Add($"{key}: required");
            return false;
        }

        if (!File.Exists(path))
        {
            errors.Add($"{key}: file '{path}' not found");
            return false;
        }

        return true;
    }

    private static X509Certificate2? Cert(List<string> errors, string key, string path)
    {
        if (!FileExists(errors, key, path))
        {
            return null;
        }

        try
        {
            return X509CertificateLoader.LoadCertificateFromFile(path);
        }
        catch (System.Security.Cryptography.CryptographicException ex)
        {
            errors.Add($"{key}: file '{path}' is not a certificate: {ex.Message}");
            return null;
        }
    }

    private static bool ChainsTo(X509Certificate2 cert, X509Certificate2 root)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.IgnoreNotTimeValid;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        return chain.Build(cert);
    }

    /// <summary>The station list as policy entries.</summary>
    internal static IEnumerable<StationEntry> Stations(FactoryCaOptions o) => o.Stations.Select(s => new StationEntry(s.Id, s.CertificateSubjectCn, s.Profiles)
    {
        Orders = s.Orders, Suspended = s.Suspended, RateLimitPerMinute = s.RateLimitPerMinute, AllowServerKeyGen = s.AllowServerKeyGen,
    });
}
