namespace OfflinePki.Keys;

/// <summary>One key's state for a daemon's status and health output. Never carries a PIN or passphrase.</summary>
/// <param name="ConfigKey">The configuration key naming the key, e.g. "FactoryCa:IssuingCa:Key".</param>
/// <param name="Backend">"pkcs11" or "file".</param>
/// <param name="Location">The RFC 7512 URI (without PIN) or the file path.</param>
/// <param name="Available">True when the key signed its probe just now (or is a file key).</param>
/// <param name="Reason">Why the key is unavailable (module, token, PIN state), or null.</param>
public sealed record KeyHealthEntry(string ConfigKey, string Backend, string Location, bool Available, string? Reason);

/// <summary>
/// The keys a daemon signs with (CA, journal, OCSP, receipt and TLS keys), checked on demand for its status and
/// health output. A check probes every PKCS#11 key with a signature through its normal path, so a check also drives
/// recovery (a failed key is reopened, within its retry backoff, when the token is back); it first checks that the
/// PKCS#11 module file is still there, and if it is gone finalises the module, so every PKCS#11 key of the process
/// fails closed (503) with a message naming <c>ConfigKey:Module</c> until the file returns.
/// </summary>
public sealed class KeyHealthBoard
{
    private static readonly byte[] Probe = "OfflinePki health probe"u8.ToArray();
    private readonly Lock _gate = new();
    private readonly List<(string ConfigKey, Func<KeyHealthEntry> Check)> _keys = [];

    /// <summary>Tracks a signing key loaded from <paramref name="options"/> under <paramref name="configKey"/>.</summary>
    /// <param name="configKey">Configuration key naming it.</param>
    /// <param name="key">The loaded key.</param>
    /// <param name="options">Its options (module path, URI or file); no secrets are read from them.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public void Track(string configKey, ISigningKey key, SigningKeyOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(configKey);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(options);
        Add(configKey, () =>
        {
            if (!options.IsPkcs11)
            {
                return new KeyHealthEntry(configKey, "file", options.File, true, null);
            }

            if (ModuleGone(configKey, options) is { } gone)
            {
                return new KeyHealthEntry(configKey, "pkcs11", options.Pkcs11Uri!, false, gone);
            }

            try
            {
                _ = key.Sign(Probe);
                return new KeyHealthEntry(configKey, "pkcs11", options.Pkcs11Uri!, true, null);
            }
            catch (SigningKeyUnavailableException ex)
            {
                return new KeyHealthEntry(configKey, "pkcs11", options.Pkcs11Uri!, false, ex.Message);
            }
        });
    }

    /// <summary>Tracks a TLS key (server or client) under <paramref name="configKey"/>.</summary>
    /// <param name="configKey">Configuration key naming it, e.g. "FactoryCa:Est:ServerKey".</param>
    /// <param name="tls">The certificate source.</param>
    /// <param name="options">Its key options.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public void Track(string configKey, TlsCertificateSource tls, SigningKeyOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(configKey);
        ArgumentNullException.ThrowIfNull(tls);
        ArgumentNullException.ThrowIfNull(options);
        Add(configKey, () =>
        {
            if (!tls.IsPkcs11)
            {
                return new KeyHealthEntry(configKey, "file", options.File, true, null);
            }

            if (ModuleGone(configKey, options) is { } gone)
            {
                return new KeyHealthEntry(configKey, "pkcs11", options.Pkcs11Uri!, false, gone);
            }

            var reason = tls.Check();
            return new KeyHealthEntry(configKey, "pkcs11", options.Pkcs11Uri!, reason is null, reason);
        });
    }

    /// <summary>Checks every tracked key now (PKCS#11 keys sign a probe), in the order they were tracked.</summary>
    public IReadOnlyList<KeyHealthEntry> Check()
    {
        List<Func<KeyHealthEntry>> checks;
        lock (_gate)
        {
            checks = _keys.Select(k => k.Check).ToList();
        }

        return checks.Select(c => c()).ToList();
    }

    /// <summary>Checks every key; true when all are available, else false with the first reason.</summary>
    /// <param name="reason">The first unavailable key's reason, or null.</param>
    public bool IsReady(out string? reason)
    {
        var bad = Check().FirstOrDefault(e => !e.Available);
        reason = bad?.Reason;
        return bad is null;
    }

    private void Add(string configKey, Func<KeyHealthEntry> check)
    {
        lock (_gate)
        {
            _keys.RemoveAll(k => string.Equals(k.ConfigKey, configKey, StringComparison.Ordinal));
            _keys.Add((configKey, check));
        }
    }

    /// <summary>A missing module file: the module is finalised (not re-initialised) so every key fails closed; returns the reason.</summary>
    private static string? ModuleGone(string configKey, SigningKeyOptions options)
    {
        if (string.IsNullOrEmpty(options.Module) || File.Exists(options.Module) || !OperatingSystem.IsLinux())
        {
            return null;
        }

        if (Pkcs11ModuleClaims.HolderOf(options.Module) == Pkcs11ModuleClaims.EngineStack)
        {
            Pkcs11Engine.FinaliseIfInitialised();
        }
        else
        {
            Pkcs11.Pkcs11Module.FinaliseIfLoaded(options.Module);
        }

        return $"{configKey}:Module: PKCS#11 module '{options.Module}' not found (moved away or uninstalled); PKCS#11 keys are unavailable until the file is back";
    }
}
