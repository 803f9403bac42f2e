using System.Runtime.InteropServices;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Hsm;

/// <summary>
/// One SoftHSM2 token store for the test process (SOFTHSM2_CONF is set in the native environment, which the
/// module reads at C_Initialize). Tokens are made with softhsm2-util and keys imported with pkcs11-tool, as an
/// operator would.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class SoftHsm
{
    public const string Module = "/usr/lib/softhsm/libsofthsm2.so";
    private static readonly Lazy<string> Root = new(Init);

    public const string Pin = "1234-user";

    private static readonly Lazy<string> TlsModuleCopy = new(() =>
    {
        string dir = Path.Combine(Directory, "tls-module");
        System.IO.Directory.CreateDirectory(dir);
        string copy = Path.Combine(dir, "libsofthsm2.so");
        File.Copy(Module, copy, overwrite: true);
        return copy;
    });

    /// <summary>
    /// A copy of the module for the engine (TLS) keys: one module is never driven by both the signing stack
    /// (Pkcs11Interop) and the OpenSSL engine in one process, and the test process has both. The copy is loaded
    /// separately and serves the same token store.
    /// </summary>
    public static string TlsModule => TlsModuleCopy.Value;

    /// <summary>Tokens made before any key is opened in this process (libp11 enumerates slots once): each holds a P-256 key "signer".</summary>
    public const int PoolSize = 16;
    private static int _nextToken = -1;

    /// <summary>The issuing CA of TestPki.Default (issuing-ca-F1.key), imported as pkcs11:token=factory-ca;object=issuing-ca.</summary>
    public const string FactoryToken = "factory-ca";

    /// <summary>Takes an unused pool token (label "pool-N", PIN <see cref="Pin"/>, key "signer").</summary>
    public static string TakeToken()
    {
        _ = Directory;
        int i = Interlocked.Increment(ref _nextToken);
        if (i >= PoolSize)
        {
            throw new InvalidOperationException("SoftHsm pool exhausted: raise PoolSize");
        }

        return "pool-" + i;
    }

    /// <summary>The directory holding softhsm2.conf and tokens/.</summary>
    public static string Directory => Root.Value;

    public static string TokenDir => Path.Combine(Directory, "tokens");

    public static string Conf => Path.Combine(Directory, "softhsm2.conf");

    public static Dictionary<string, string> Env => new() { ["SOFTHSM2_CONF"] = Conf };

    /// <summary>Creates a token labelled <paramref name="label"/> with the user PIN, returns nothing.</summary>
    public static void InitToken(string label, string pin, string soPin = "so-12345678")
    {
        Tool.Run("softhsm2-util", ["--init-token", "--free", "--label", label, "--so-pin", soPin, "--pin", pin], env: Env)
            .EnsureSuccess("softhsm2-util --init-token");
    }

    /// <summary>Imports a PEM PKCS#8 private key (from dev-pki.sh) as object <paramref name="objectLabel"/>.</summary>
    public static void ImportKey(string token, string pin, string pemKey, string objectLabel, string id)
    {
        string der = Path.Combine(Directory, Guid.NewGuid().ToString("N") + ".der");
        Tool.OpenSsl("pkey", "-in", pemKey, "-outform", "DER", "-out", der).EnsureSuccess("openssl pkey");
        try
        {
            Tool.Run("pkcs11-tool", ["--module", Module, "--token-label", token, "--login", "--pin", pin,
                "--write-object", der, "--type", "privkey", "--label", objectLabel, "--id", id, "--usage-sign"], env: Env)
                .EnsureSuccess("pkcs11-tool --write-object");
        }
        finally
        {
            File.Delete(der);
        }

        SigningRescan();
    }

    /// <summary>
    /// Makes the in-process signing module (Pkcs11Interop) see objects written by another process since it started:
    /// SoftHSM2 does not always notice them in a token it has open. Keys of the process reopen on their next signature.
    /// </summary>
    public static void SigningRescan() => OfflinePki.Keys.Pkcs11.Pkcs11Module.FinaliseIfLoaded(Module);

    /// <summary>Imports a PEM private key and its public key (same CKA_ID, which libp11 needs for EC keys) as <paramref name="objectLabel"/>.</summary>
    public static void ImportKeyPair(string token, string pin, string pemKey, string objectLabel, string id)
    {
        ImportKey(token, pin, pemKey, objectLabel, id);
        string pub = Path.Combine(Directory, Guid.NewGuid().ToString("N") + ".pub.der");
        Tool.OpenSsl("pkey", "-in", pemKey, "-pubout", "-outform", "DER", "-out", pub).EnsureSuccess("openssl pkey -pubout");
        try
        {
            Tool.Run("pkcs11-tool", ["--module", Module, "--token-label", token, "--login", "--pin", pin,
                "--write-object", pub, "--type", "pubkey", "--label", objectLabel, "--id", id], env: Env)
                .EnsureSuccess("pkcs11-tool --write-object pubkey");
        }
        finally
        {
            File.Delete(pub);
        }

        SigningRescan();
    }

    /// <summary>Generates a P-256 key pair in the token.</summary>
    public static void GenerateKey(string token, string pin, string objectLabel, string id)
    {
        Tool.Run("pkcs11-tool", ["--module", Module, "--token-label", token, "--login", "--pin", pin,
            "--keypairgen", "--key-type", "EC:prime256v1", "--label", objectLabel, "--id", id], env: Env)
            .EnsureSuccess("pkcs11-tool --keypairgen");
        SigningRescan();
    }

    /// <summary>Changes the user PIN with pkcs11-tool.</summary>
    public static void ChangePin(string token, string oldPin, string newPin)
    {
        Tool.Run("pkcs11-tool", ["--module", Module, "--token-label", token, "--login", "--pin", oldPin, "--change-pin", "--new-pin", newPin], env: Env)
            .EnsureSuccess("pkcs11-tool --change-pin");
    }

    /// <summary>
    /// Moves SoftHSM2's token directory away (every token disappears, C_Initialize fails as with a module whose
    /// device is gone); returns a restore action. <paramref name="label"/> must exist.
    /// </summary>
    public static Action RemoveToken(string label)
    {
        _ = TokenDirectoryOf(label);
        string dir = TokenDir;
        string away = dir + ".away";
        System.IO.Directory.Move(dir, away);
        return () => System.IO.Directory.Move(away, dir);
    }

    /// <summary>
    /// Sets or clears CKF_USER_PIN_LOCKED in the token's stored flags, the state a token reports after too many wrong
    /// user PINs (PKCS#11 v2.40 §3.2) until the security officer re-initialises the user PIN. SoftHSM2 2.6 keeps no
    /// lockout counter of its own but stores its token flags (CKA_OS_TOKENFLAGS, a ULONG attribute in token.object,
    /// big-endian, after an 8-byte generation counter) and reports them from C_GetTokenInfo after a (re)initialisation;
    /// the generation counter is bumped so a running module re-reads the file instead of overwriting it.
    /// </summary>
    public static void SetUserPinLocked(string label, bool locked)
    {
        string file = Path.Combine(TokenDirectoryOf(label), "token.object");
        byte[] b = File.ReadAllBytes(file);
        byte[] pattern = [0, 0, 0, 0, 0x80, 0, 0x53, 0x4B, 0, 0, 0, 0, 0, 0, 0, 2]; // CKA_OS_TOKENFLAGS, ULONG_ATTR
        int i = b.AsSpan().IndexOf(pattern);
        if (i < 0)
        {
            throw new InvalidOperationException($"no token flags in {file}");
        }

        var value = b.AsSpan(i + pattern.Length, 8);
        ulong flags = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(value);
        flags = locked ? flags | 0x00040000UL : flags & ~0x00040000UL;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(value, flags);
        ulong generation = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(0, 8));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(0, 8), generation + 1);
        using var f = new FileStream(file, FileMode.Open, FileAccess.Write);
        f.Write(b);
        f.SetLength(b.Length);
    }

    /// <summary>Writes a PIN file (0600) and returns its path.</summary>
    public static string PinFile(string pin)
    {
        string p = Path.Combine(Directory, Guid.NewGuid().ToString("N") + ".pin");
        File.WriteAllText(p, pin + "\n");
        File.SetUnixFileMode(p, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return p;
    }

    private static string TokenDirectoryOf(string label)
    {
        foreach (var d in System.IO.Directory.GetDirectories(TokenDir))
        {
            string tokenObject = Path.Combine(d, "token.object");
            if (File.Exists(tokenObject) && File.ReadAllText(tokenObject, System.Text.Encoding.Latin1).Contains(label, StringComparison.Ordinal))
            {
                return d;
            }
        }

        throw new InvalidOperationException($"no SoftHSM2 token directory for '{label}'");
    }

    private static string Init()
    {
        string dir = Path.Combine(Path.GetTempPath(), "offlinepki-tests", "softhsm-" + Guid.NewGuid().ToString("N")[..8]);
        System.IO.Directory.CreateDirectory(Path.Combine(dir, "tokens"));
        File.WriteAllText(Path.Combine(dir, "softhsm2.conf"),
            $"directories.tokendir = {Path.Combine(dir, "tokens")}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n");
        if (setenv("SOFTHSM2_CONF", Path.Combine(dir, "softhsm2.conf"), 1) != 0)
        {
            throw new InvalidOperationException("setenv SOFTHSM2_CONF failed");
        }

        Environment.SetEnvironmentVariable("SOFTHSM2_CONF", Path.Combine(dir, "softhsm2.conf"));
        var env = new Dictionary<string, string> { ["SOFTHSM2_CONF"] = Path.Combine(dir, "softhsm2.conf") };
        for (int i = 0; i < PoolSize; i++)
        {
            Tool.Run("softhsm2-util", ["--init-token", "--free", "--label", "pool-" + i, "--so-pin", "so-12345678", "--pin", Pin], env: env).EnsureSuccess("init-token");
            Tool.Run("pkcs11-tool", ["--module", Module, "--token-label", "pool-" + i, "--login", "--pin", Pin,
                "--keypairgen", "--key-type", "EC:prime256v1", "--label", "signer", "--id", "01"], env: env).EnsureSuccess("keypairgen");
        }

        Tool.Run("softhsm2-util", ["--init-token", "--free", "--label", FactoryToken, "--so-pin", "so-12345678", "--pin", Pin], env: env).EnsureSuccess("init-token");
        string der = Path.Combine(dir, "issuing.der");
        Tool.OpenSsl("pkey", "-in", TestPki.Default.PathOf("issuing-ca-F1.key"), "-outform", "DER", "-out", der).EnsureSuccess("pkey");
        Tool.Run("pkcs11-tool", ["--module", Module, "--token-label", FactoryToken, "--login", "--pin", Pin,
            "--write-object", der, "--type", "privkey", "--label", "issuing-ca", "--id", "01", "--usage-sign"], env: env).EnsureSuccess("write-object");
        File.Delete(der);
        // libp11 takes the EC point from the public key object: import it alongside, same CKA_ID.
        string pub = Path.Combine(dir, "issuing-pub.der");
        Tool.OpenSsl("pkey", "-in", TestPki.Default.PathOf("issuing-ca-F1.key"), "-pubout", "-outform", "DER", "-out", pub).EnsureSuccess("pkey -pubout");
        Tool.Run("pkcs11-tool", ["--module", Module, "--token-label", FactoryToken, "--login", "--pin", Pin,
            "--write-object", pub, "--type", "pubkey", "--label", "issuing-ca", "--id", "01"], env: env).EnsureSuccess("write-object pubkey");
        return dir;
    }

    [DllImport("libc", CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern int setenv(string name, string value, int overwrite);
}

/// <summary>Test access to the engine reset (makes the in-process module see tokens created after it started).</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class EngineControl
{
    public static void Rescan() => OfflinePki.Keys.Pkcs11Engine.Reset(OfflinePki.Keys.Pkcs11Engine.Generation);
}
