using Microsoft.Extensions.Options;

namespace OfflinePki.Sync;

/// <summary>Factory-side sync settings (configuration section "Sync").</summary>
public sealed class SyncOptions
{
    /// <summary>The configuration section name.</summary>
    public const string Section = "Sync";

    /// <summary>Whether the scheduled sync runs (default true). On-demand syncs work either way.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The mirror's sync endpoint, "https://mirror.example:8443/".</summary>
    public string MirrorUrl { get; set; } = string.Empty;

    /// <summary>Time between scheduled syncs (default 5 min; at least 1 s).</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Deadline of one GetHead call (default 30 s).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Deadline of one PushEntries call, which may carry a large backlog (default 10 min).</summary>
    public TimeSpan PushTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>PEM file of our TLS client certificate (CN e.g. "factory-F1-sync", clientAuth EKU).</summary>
    public string ClientCertificatePath { get; set; } = string.Empty;

    /// <summary>PEM file of the client certificate's private key (or set <see cref="ClientKey"/> instead).</summary>
    public string ClientKeyPath { get; set; } = string.Empty;

    /// <summary>
    /// The client certificate's private key as a key section (a PKCS#11 URI with Module and a PIN source, or a File),
    /// instead of <see cref="ClientKeyPath"/>; set exactly one of them.
    /// </summary>
    public OfflinePki.Keys.TlsKeyOptions? ClientKey { get; set; }

    /// <summary>The client key in effect: <see cref="ClientKey"/> when set, otherwise <see cref="ClientKeyPath"/> as a file key.</summary>
    public OfflinePki.Keys.TlsKeyOptions EffectiveClientKey =>
        ClientKey is { IsEmpty: false } ? ClientKey : OfflinePki.Keys.TlsKeyOptions.FromPath(ClientKeyPath);

    /// <summary>PEM file of the TLS CA that must have issued the mirror's server certificate.</summary>
    public string ServerTrustAnchorPath { get; set; } = string.Empty;

    /// <summary>Most entries per EntryBatch message (default 512).</summary>
    public int BatchMaxEntries { get; set; } = 512;

    /// <summary>Target size of one EntryBatch message, in bytes (default 1 MiB; a batch holds at least one entry).</summary>
    public int BatchMaxBytes { get; set; } = 1 << 20;

    /// <summary>
    /// Entries after which a push ends at the next checkpoint (default 100,000; 1 to 10,000,000). The mirror applies
    /// each push in one transaction, so this bounds its write-ahead log and what a cut link costs; a longer backlog
    /// goes as several pushes in one sync.
    /// </summary>
    public int PushMaxEntries { get; set; } = 100_000;
}

/// <summary>Cross-field validation of <see cref="SyncOptions"/>, run at startup (ValidateOnStart).</summary>
public sealed class SyncOptionsValidator : IValidateOptions<SyncOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, SyncOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        if (!Uri.TryCreate(options.MirrorUrl, UriKind.Absolute, out var url) || url.Scheme != Uri.UriSchemeHttps)
        {
            errors.Add($"Sync:MirrorUrl must be an absolute https URL (got '{options.MirrorUrl}').");
        }

        if (options.Interval < TimeSpan.FromSeconds(1))
        {
            errors.Add($"Sync:Interval must be at least 00:00:01 (got {options.Interval}).");
        }

        if (options.Timeout <= TimeSpan.Zero || options.PushTimeout <= TimeSpan.Zero)
        {
            errors.Add("Sync:Timeout and Sync:PushTimeout must be positive.");
        }

        bool keySection = options.ClientKey is { IsEmpty: false };
        if (keySection && !string.IsNullOrWhiteSpace(options.ClientKeyPath))
        {
            errors.Add("Sync: set exactly one of Sync:ClientKeyPath or Sync:ClientKey.");
        }
        else if (keySection)
        {
            errors.AddRange(OfflinePki.Keys.SigningKeyOptions.Validate("Sync:ClientKey", options.ClientKey!));
        }

        var files = new List<(string, string)> { ("ClientCertificatePath", options.ClientCertificatePath), ("ServerTrustAnchorPath", options.ServerTrustAnchorPath) };
        if (!keySection)
        {
            files.Insert(1, ("ClientKeyPath", options.ClientKeyPath));
        }

        foreach (var (key, path) in files)
        {
            if (string.IsNullOrWhiteSpace(path))
            {
                errors.Add($"Sync:{key} is required.");
            }
            else if (!File.Exists(path))
            {
                errors.Add($"Sync:{key} '{path}' does not exist.");
            }
        }

        if (options.BatchMaxEntries is < 1 or > 100_000)
        {
            errors.Add($"Sync:BatchMaxEntries must be in 1..100000 (got {options.BatchMaxEntries}).");
        }

        if (options.BatchMaxBytes is < 1024 or > 3 << 20)
        {
            errors.Add($"Sync:BatchMaxBytes must be in 1 KiB..3 MiB, under the 4 MiB gRPC message limit (got {options.BatchMaxBytes}).");
        }

        if (options.PushMaxEntries is < 1 or > 10_000_000)
        {
            errors.Add($"Sync:PushMaxEntries must be in 1..10000000 (got {options.PushMaxEntries}).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
