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
/// Recovery: libp11 keeps the module initialised for the life of the engine, and a PKCS#11 module (SoftHSM2 in
/// particular) does not notice a token that comes back. <see cref="Reset"/> calls the module's <c>C_Finalize</c>,
/// drops the engine from OpenSSL's list and loads a fresh one, so the next key load re-runs <c>C_Initialize</c>
/// and sees the tokens as they are now. Each reset bumps <see cref="Generation"/>; keys opened under an older
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

    /// <summary>Bumped by every <see cref="Reset"/>.</summary>
    public static long Generation => Interlocked.Read(ref _generation);

    /// <summary>The module this process uses (one per process; libp11 loads one module per engine).</summary>
    public static string? ModulePath { get { lock (Gate) { return _module; } } }

    /// <summary>Opens a private key. Returns the handle and the generation it was opened under.</summary>
    /// <exception cref="SigningKeyUnavailableException">Module, token, PIN or object refused; <paramref name="label"/> names the key.</exception>
    public static (SafeEvpPKeyHandle Handle, long Generation) Open(string label, string modulePath, string uri, byte[] pin)
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

                if (ENGINE_ctrl_cmd_string(e, Z("PIN"), pinZ, 0) != 1)
                {
                    throw new SigningKeyUnavailableException($"{label}: the pkcs11 engine refused the PIN control");
                }

                try
                {
                    var handle = SafeEvpPKeyHandle.OpenPrivateKeyFromEngine(EngineId, uri);
                    return (handle, _generation);
                }
                catch (CryptographicException ex)
                {
                    throw new SigningKeyUnavailableException($"{label}: PKCS#11 key '{uri}' cannot be opened (token missing, PIN refused or locked, or no such object): {FirstLine(ex.Message)}", ex);
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
    /// Finalises the module and replaces the engine, unless another key already did so since
    /// <paramref name="observedGeneration"/>. Handles opened before become unusable.
    /// </summary>
    public static void Reset(long observedGeneration)
    {
        lock (Gate)
        {
            if (_generation != observedGeneration || _module is null)
            {
                return;
            }

            if (NativeLibrary.TryLoad(_module, out IntPtr lib))
            {
                if (NativeLibrary.TryGetExport(lib, "C_Finalize", out IntPtr fin))
                {
                    unsafe
                    {
                        _ = ((delegate* unmanaged<IntPtr, nuint>)fin)(IntPtr.Zero);
                    }
                }
            }

            IntPtr e = ENGINE_by_id(Z(EngineId));
            if (e != IntPtr.Zero)
            {
                _ = ENGINE_remove(e);
                ENGINE_free(e);
            }

            _module = null;
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
    private static extern int ENGINE_remove(IntPtr e);

    [DllImport(Crypto)]
    private static extern int ENGINE_free(IntPtr e);
}
