using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace OfflinePki.Keys;

/// <summary>
/// The process's one OpenSSL "pkcs11" engine (libp11, Debian <c>libengine-pkcs11-openssl</c>), driven through
/// libcrypto's ENGINE control API: <c>MODULE_PATH</c> names the PKCS#11 module, <c>PIN</c> is set in memory
/// immediately before each key load (never put into the URI, so libp11's own stderr diagnostics and OpenSSL's
/// error strings cannot carry it). Keys are opened with <see cref="SafeEvpPKeyHandle.OpenPrivateKeyFromEngine"/>.
/// <para>
/// Recovery: libp11 keeps the module initialised for the life of the engine (its finish function never unloads
/// it, and a removed engine cannot be bound again in the same process), and a PKCS#11 module (SoftHSM2 in
/// particular) does not notice a token that comes back. <see cref="Reset"/> calls the module's own
/// <c>C_Finalize</c> and <c>C_Initialize</c>, so the module rescans its tokens. Each reset bumps <see cref="Generation"/>; keys opened under an older
/// generation reopen themselves before their next signature.
/// </para>
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class Pkcs11Engine
{
    private const string Crypto = "libcrypto.so.3";
    private const string EngineId = "pkcs11";
    private static readonly Lock Gate = new();
    private static string? _module;
    private static long _generation;

    /// <summary>Lookups per open (see <see cref="Open"/>).</summary>
    private const int OpenAttempts = 10;

    /// <summary>Bumped by every <see cref="Reset"/>.</summary>
    public static long Generation => Interlocked.Read(ref _generation);

    /// <summary>The module this process uses (one per process; libp11 loads one module per engine).</summary>
    public static string? ModulePath { get { lock (Gate) { return _module; } } }

    /// <summary>Opens a private key. Returns the handle and the generation it was opened under.</summary>
    /// <param name="label">Config key for messages.</param>
    /// <param name="modulePath">PKCS#11 module.</param>
    /// <param name="uri">RFC 7512 URI without PIN.</param>
    /// <param name="pin">User PIN bytes (not kept).</param>
    /// <param name="afterReset">True right after <see cref="Reset"/>: retry the lookup while libp11 sheds stale sessions.</param>
    /// <exception cref="SigningKeyUnavailableException">Module, token, PIN or object refused; <paramref name="label"/> names the key.</exception>
    public static (SafeEvpPKeyHandle Handle, long Generation) Open(string label, string modulePath, string uri, byte[] pin, bool afterReset)
    {
        lock (Gate)
        {
            if (_module is not null && !string.Equals(_module, modulePath, StringComparison.Ordinal))
            {
                throw new SigningKeyUnavailableException(
                    $"{label}: PKCS#11 module '{modulePath}' differs from '{_module}' already in use; one process uses one module");
            }

            if (!File.Exists(modulePath))
            {
                throw new SigningKeyUnavailableException($"{label}: PKCS#11 module '{modulePath}' not found");
            }

            IntPtr e = ENGINE_by_id(Z(EngineId));
            if (e == IntPtr.Zero)
            {
                throw new SigningKeyUnavailableException($"{label}: OpenSSL engine 'pkcs11' cannot be loaded (install libengine-pkcs11-openssl)");
            }

            byte[] pinZ = new byte[pin.Length + 1];
            try
            {
                pin.CopyTo(pinZ, 0);
                if (_module is null)
                {
                    if (ENGINE_ctrl_cmd_string(e, Z("MODULE_PATH"), Z(modulePath), 0) != 1)
                    {
                        throw new SigningKeyUnavailableException($"{label}: the pkcs11 engine refused MODULE_PATH '{modulePath}'");
                    }

                    _module = modulePath;
                }

                // After a module re-initialisation libp11 meets its stale sessions and logins (one slot at a time) and
                // discards them as it goes, so right after a reset a lookup is retried a few times before the failure is
                // reported. (Caveat: with a wrong PIN that is up to OpenAttempts login attempts per retry interval.)
                int attempts = afterReset ? OpenAttempts : 1;
                for (int attempt = 1; ; attempt++)
                {
                    try
                    {
                        if (ENGINE_ctrl_cmd_string(e, Z("PIN"), pinZ, 0) != 1)
                        {
                            throw new SigningKeyUnavailableException($"{label}: the pkcs11 engine refused the PIN control");
                        }

                        return (SafeEvpPKeyHandle.OpenPrivateKeyFromEngine(EngineId, uri), _generation);
                    }
                    catch (CryptographicException) when (attempt < attempts)
                    {
                    }
                    catch (CryptographicException ex)
                    {
                        throw new SigningKeyUnavailableException($"{label}: PKCS#11 key '{uri}' cannot be opened (token missing, PIN refused or locked, or no such object): {FirstLine(ex.Message)}", ex);
                    }
                }
            }
            finally
            {
                CryptographicOperations.ZeroMemory(pinZ);
                ENGINE_free(e);
            }
        }
    }

    /// <summary>
    /// Re-initialises the module (<c>C_Finalize</c> then <c>C_Initialize</c> with OS locking), unless another key
    /// already did so since <paramref name="observedGeneration"/>. Handles opened before become unusable; libp11
    /// drops its stale sessions on failed lookups, so <see cref="Open"/> retries after a reset.
    /// </summary>
    public static void Reset(long observedGeneration)
    {
        lock (Gate)
        {
            if (_generation != observedGeneration || _module is null)
            {
                return;
            }

            if (NativeLibrary.TryLoad(_module, out IntPtr lib)
                && NativeLibrary.TryGetExport(lib, "C_Finalize", out IntPtr fin)
                && NativeLibrary.TryGetExport(lib, "C_Initialize", out IntPtr init))
            {
                unsafe
                {
                    _ = ((delegate* unmanaged<IntPtr, nuint>)fin)(IntPtr.Zero);
                    // CK_C_INITIALIZE_ARGS: four null mutex callbacks, flags = CKF_OS_LOCKING_OK (2), pReserved = null.
                    nuint* args = stackalloc nuint[6];
                    args[0] = args[1] = args[2] = args[3] = args[5] = 0;
                    args[4] = 2;
                    // A failure (e.g. SoftHSM2's token directory gone) leaves the module uninitialised; the next reset retries.
                    _ = ((delegate* unmanaged<IntPtr, nuint>)init)((IntPtr)args);
                }
            }

            _generation++;
        }
    }

    private static string FirstLine(string s)
    {
        int i = s.IndexOf('\n', StringComparison.Ordinal);
        return i < 0 ? s : s[..i];
    }

    private static byte[] Z(string s)
    {
        var b = new byte[Encoding.UTF8.GetByteCount(s) + 1];
        Encoding.UTF8.GetBytes(s, b);
        return b;
    }

    [DllImport(Crypto)]
    private static extern IntPtr ENGINE_by_id(byte[] id);

    [DllImport(Crypto)]
    private static extern int ENGINE_ctrl_cmd_string(IntPtr e, byte[] cmd, byte[]? arg, int optional);

    [DllImport(Crypto)]
    private static extern int ENGINE_free(IntPtr e);
}
