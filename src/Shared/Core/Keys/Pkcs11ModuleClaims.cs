namespace OfflinePki.Keys;

/// <summary>
/// Which stack drives each PKCS#11 module in this process. A module is initialised once per process (PKCS#11 v2.40
/// §5.4: <c>C_Initialize</c>/<c>C_Finalize</c> act on the whole application), so two stacks over one module (the
/// Pkcs11Interop signing keys and the OpenSSL engine TLS keys) would finalise each other's sessions and logins.
/// The first stack to open a module claims it; the other is refused with an error naming both keys.
/// Modules are told apart by their resolved path (symbolic links followed), so a copy of a module at another path is
/// a separate module (it is loaded separately, with its own state).
/// </summary>
public static class Pkcs11ModuleClaims
{
    /// <summary>The stack of the signing keys (Pkcs11Interop).</summary>
    public const string SigningStack = "Pkcs11Interop (signing keys)";

    /// <summary>The stack of the TLS keys (OpenSSL's pkcs11 engine).</summary>
    public const string EngineStack = "the OpenSSL pkcs11 engine (TLS keys)";

    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, (string Stack, string ConfigKey)> Claims = new(StringComparer.Ordinal);

    /// <summary>Claims <paramref name="modulePath"/> for <paramref name="stack"/>; a second claim by the same stack is a no-op.</summary>
    /// <param name="configKey">The key that opens the module, for the error (e.g. "FactoryCa:Est:ServerKey").</param>
    /// <param name="modulePath">The module path as configured.</param>
    /// <param name="stack"><see cref="SigningStack"/> or <see cref="EngineStack"/>.</param>
    /// <exception cref="SigningKeyUnavailableException">The module is already driven by the other stack; the message names both
    /// keys and says to give the TLS keys another module (or a token of their own behind another module path), or file keys.</exception>
    public static void Claim(string configKey, string modulePath, string stack)
    {
        ArgumentException.ThrowIfNullOrEmpty(configKey);
        ArgumentException.ThrowIfNullOrEmpty(modulePath);
        ArgumentException.ThrowIfNullOrEmpty(stack);
        string id = Canonical(modulePath);
        lock (Gate)
        {
            if (Claims.TryGetValue(id, out var held))
            {
                if (string.Equals(held.Stack, stack, StringComparison.Ordinal))
                {
                    return;
                }

                throw new SigningKeyUnavailableException(
                    $"{configKey}:Module: PKCS#11 module '{modulePath}' is already driven by {held.Stack} for {held.ConfigKey} in this process; "
                    + $"one module must not be driven by two stacks (each would finalise the other's sessions and logins): keep TLS keys in files, "
                    + "or give the engine TLS keys a module of their own");
            }

            Claims[id] = (stack, configKey);
        }
    }

    /// <summary>
    /// Startup check of one daemon's configuration: a PKCS#11 module named by a TLS key (engine) and by a signing key
    /// (Pkcs11Interop) is refused, one error per TLS key, naming both keys.
    /// </summary>
    /// <param name="signingKeys">The signing keys (config key and options).</param>
    /// <param name="tlsKeys">The TLS keys (config key and options).</param>
    public static IReadOnlyList<string> SharedModuleErrors(IEnumerable<(string ConfigKey, SigningKeyOptions Options)> signingKeys, IEnumerable<(string ConfigKey, SigningKeyOptions Options)> tlsKeys)
    {
        ArgumentNullException.ThrowIfNull(signingKeys);
        ArgumentNullException.ThrowIfNull(tlsKeys);
        var signing = signingKeys.Where(k => k.Options is { IsPkcs11: true, Module.Length: > 0 }).ToList();
        var errors = new List<string>();
        foreach (var (key, options) in tlsKeys.Where(k => k.Options is { IsPkcs11: true, Module.Length: > 0 }))
        {
            string id = Canonical(options.Module!);
            if (signing.FirstOrDefault(s => string.Equals(Canonical(s.Options.Module!), id, StringComparison.Ordinal)) is { ConfigKey: not null } clash)
            {
                errors.Add($"{key}:Module: PKCS#11 module '{options.Module}' is also the module of {clash.ConfigKey}; a TLS key (OpenSSL engine) and a signing key "
                    + "(Pkcs11Interop) must not drive one module in one process: keep TLS keys in files, or give the TLS keys a module path of their own");
            }
        }

        return errors;
    }

    /// <summary>The stack holding <paramref name="modulePath"/>, or null.</summary>
    public static string? HolderOf(string modulePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(modulePath);
        string id = Canonical(modulePath);
        lock (Gate)
        {
            return Claims.TryGetValue(id, out var held) ? held.Stack : null;
        }
    }

    private static string Canonical(string path)
    {
        string full = Path.GetFullPath(path);
        try
        {
            return File.ResolveLinkTarget(full, returnFinalTarget: true)?.FullName ?? full;
        }
        catch (IOException)
        {
            return full;
        }
    }
}
