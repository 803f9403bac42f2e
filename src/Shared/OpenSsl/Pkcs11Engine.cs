using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace OfflinePki.Keys;

/// <summary>
/// The process's OpenSSL "pkcs11" engine (libp11, Debian <c>libengine-pkcs11-openssl</c>) and its one PKCS#11 module,
/// for TLS keys only (SslStream needs an OpenSSL key; signing keys use Pkcs11Interop, see <c>Keys/Pkcs11</c>), and
/// never on a module the signing keys drive (<see cref="Pkcs11ModuleClaims"/>), driven through libcrypto's ENGINE API: <c>MODULE_PATH</c> names the module, <c>PIN</c> is set in memory immediately
/// before each key load (never put into the URI, so libp11's own stderr diagnostics and OpenSSL's error strings cannot
/// carry it), and keys are loaded with <c>ENGINE_load_private_key</c> into a <see cref="SafeEvpPKeyHandle"/>.
/// <para>
/// Recovery: a PKCS#11 module (SoftHSM2 in particular) does not notice a token that comes back, and libp11 keeps its
/// slots, sessions and login state for the life of an engine, so after the module is re-initialised an old engine
/// only ever meets stale session handles. <see cref="Reset"/> therefore calls the module's own <c>C_Finalize</c> and
/// <c>C_Initialize</c> (the module rescans its tokens) and bumps <see cref="Generation"/>; the next <see cref="Open"/>
/// loads a fresh libp11 engine instance (a new ENGINE bound by libp11's <c>bind_engine</c>, not added to OpenSSL's
/// engine list, so it has its own slots, sessions and login), and keys opened under an older generation reopen
/// themselves before their next signature.
/// Every engine instance keeps a functional reference for the life of the process: libp11's finish function calls
/// <c>C_Finalize</c>, which would tear the module down under the newer instance (cost: one small engine context per
/// successful module re-initialisation).
/// </para>
/// <para>
/// Before a key load the token is checked through the module itself (<c>C_GetSlotList</c>, <c>C_GetTokenInfo</c>): a
/// missing module file, a module that fails <c>C_Initialize</c>, a token that is not present, and a token that reports
/// <c>CKF_USER_PIN_LOCKED</c> (PKCS#11 v2.40 §3.2) each give their own message, and a locked token is never sent a
/// login (so a retrying daemon cannot make a lockout worse).
/// </para>
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class Pkcs11Engine
{
    private const string Crypto = LibCrypto.Name;
    private const ulong CkfUserPinLocked = 0x00040000;
    private static readonly Lock Gate = new();
    private static string? _module;
    private static long _generation;
    private static IntPtr _library;
    private static IntPtr _engine;
    private static IntPtr _engineLibrary;
    private static long _engineGeneration = -1;
    private static ulong? _initResult;
    private static ulong _highWater;
    private static ulong _burnTarget;

    /// <summary>Per-process key for remembering a refused PIN by its HMAC (the PIN itself is never kept).</summary>
    private static readonly byte[] PinMacKey = RandomNumberGenerator.GetBytes(32);

    /// <summary>Token label to the HMAC of the PIN it last refused and when.</summary>
    private static readonly Dictionary<string, (byte[] Mac, DateTimeOffset At)> RefusedPins = new(StringComparer.Ordinal);

    /// <summary>
    /// How long a PIN the token refused (CKR_PIN_INCORRECT) is not presented again (default 10 min): a daemon retrying
    /// every few seconds with a stale PIN file would otherwise use up the token's lockout counter. A different PIN (the
    /// PIN source was corrected) is tried at once.
    /// </summary>
    public static TimeSpan RefusedPinHold { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Clock for <see cref="RefusedPinHold"/> (tests inject one).</summary>
    public static TimeProvider Time { get; set; } = TimeProvider.System;

    /// <summary>Bumped by every <see cref="Reset"/>.</summary>
    public static long Generation => Interlocked.Read(ref _generation);

    /// <summary>The module this process uses (one per process; libp11 loads one module per engine).</summary>
    public static string? ModulePath { get { lock (Gate) { return _module; } } }

    /// <summary>Opens a private key. Returns the handle and the generation it was opened under.</summary>
    /// <param name="label">Config key for messages.</param>
    /// <param name="modulePath">PKCS#11 module.</param>
    /// <param name="uri">RFC 7512 URI without PIN.</param>
    /// <param name="pin">User PIN bytes (not kept).</param>
    /// <param name="afterReset">Unused since each generation has its own engine instance; kept for callers.</param>
    /// <exception cref="SigningKeyUnavailableException">Module missing or failing, token missing or locked, PIN or object
    /// refused; the message names <paramref name="label"/> (and <c>label:Module</c> for the module), never the PIN.</exception>
    public static (SafeEvpPKeyHandle Handle, long Generation) Open(string label, string modulePath, string uri, byte[] pin, bool afterReset)
    {
        _ = afterReset;
        Pkcs11ModuleClaims.Claim(label, modulePath, Pkcs11ModuleClaims.EngineStack);
        lock (Gate)
        {
            if (_module is not null && !string.Equals(_module, modulePath, StringComparison.Ordinal))
            {
                throw new SigningKeyUnavailableException(
                    $"{label}:Module: PKCS#11 module '{modulePath}' differs from '{_module}' already in use; one process uses one module");
            }

            if (!File.Exists(modulePath))
            {
                throw new SigningKeyUnavailableException(
                    $"{label}:Module: PKCS#11 module '{modulePath}' not found (moved away or uninstalled); the key stays unavailable until the file is back");
            }

            _module ??= modulePath;
            EnsureInitialised(label, uri);
            CheckToken(label, uri);
            string tokenKey = UriAttribute(uri, "token") ?? uri;
            byte[] pinMac = HMACSHA256.HashData(PinMacKey, pin);
            if (RefusedPins.TryGetValue(tokenKey, out var refused) && CryptographicOperations.FixedTimeEquals(refused.Mac, pinMac)
                && Time.GetUtcNow() - refused.At < RefusedPinHold)
            {
                throw new SigningKeyUnavailableException(
                    $"{label}: PKCS#11 key '{uri}' unavailable: PIN refused by the token (CKR_PIN_INCORRECT) at {refused.At:u}; the same PIN is not tried again "
                    + $"before {refused.At + RefusedPinHold:u} so that retries cannot lock the token; correct the PIN source and the new PIN is tried at once");
            }

            IntPtr e = EnsureEngine(label);

            byte[] pinZ = new byte[pin.Length + 1];
            try
            {
                pin.CopyTo(pinZ, 0);
                ERR_clear_error();
                if (ENGINE_ctrl_cmd_string(e, Z("PIN"), pinZ, 0) != 1)
                {
                    throw new SigningKeyUnavailableException($"{label}: the pkcs11 engine refused the PIN control");
                }

                IntPtr pkey = ENGINE_load_private_key(e, Z(uri), IntPtr.Zero, IntPtr.Zero);
                if (pkey == IntPtr.Zero)
                {
                    string errors = DrainErrors();
                    string cause = Classify(errors);
                    if (cause.Contains("CKR_PIN_INCORRECT", StringComparison.Ordinal))
                    {
                        RefusedPins[tokenKey] = (pinMac, Time.GetUtcNow());
                    }

                    throw new SigningKeyUnavailableException($"{label}: PKCS#11 key '{uri}' cannot be opened ({cause}): {errors}");
                }

                _ = RefusedPins.Remove(tokenKey);
                _highWater = Math.Max(_highWater, NewSessionHandle());
                return (new SafeEvpPKeyHandle(pkey, ownsHandle: true), _generation);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(pinZ);
                ERR_clear_error();
            }
        }
    }

    /// <summary>
    /// Re-initialises the module (<c>C_Finalize</c> then <c>C_Initialize</c> with OS locking), unless another key
    /// already did so since <paramref name="observedGeneration"/>. Handles opened before become unusable; the next
    /// <see cref="Open"/> uses a fresh engine instance. With the module file gone the module is finalised and not
    /// initialised again (as a module that cannot be loaded), so keys stay unavailable until the file is back.
    /// </summary>
    public static void Reset(long observedGeneration)
    {
        lock (Gate)
        {
            if (_generation != observedGeneration || _module is null)
            {
                return;
            }

            if (_library != IntPtr.Zero && NativeLibrary.TryGetExport(_library, "C_Finalize", out IntPtr fin))
            {
                if (_initResult is 0)
                {
                    // The module is live: a session opened now has the highest number so far (exact, plus a little for
                    // concurrent users); if no token is present to open one on, fall back to the last measurement plus
                    // a margin for what libp11's session pools and object lookups handed out since.
                    ulong now = NewSessionHandle();
                    _burnTarget = Math.Max(_burnTarget, now != 0 ? now + 64 : _highWater + 4096);
                }

                unsafe
                {
                    _ = ((delegate* unmanaged<IntPtr, nuint>)fin)(IntPtr.Zero);
                }

                _initResult = null;
                if (File.Exists(_module) && TryInitialise())
                {
                    BurnHandles();
                }
            }

            _generation++;
        }
    }

    /// <summary>
    /// Finalises the module if it is initialised (the module file is gone: a re-initialisation could not load it), so
    /// every PKCS#11 key of the process fails closed and reopens, with its own message, once the file is back.
    /// </summary>
    public static void FinaliseIfInitialised()
    {
        lock (Gate)
        {
            if (_initResult is 0)
            {
                Reset(_generation);
            }
        }
    }

    /// <summary>Loads the module once and calls C_Initialize if it is not initialised (first use, or after a failed reset).</summary>
    private static void EnsureInitialised(string label, string uri)
    {
        if (_library == IntPtr.Zero)
        {
            if (!NativeLibrary.TryLoad(_module!, out _library))
            {
                throw new SigningKeyUnavailableException($"{label}:Module: PKCS#11 module '{_module}' cannot be loaded (not a shared library for this platform?)");
            }
        }

        if (_initResult is 0)
        {
            return;
        }

        if (!TryInitialise())
        {
            throw new SigningKeyUnavailableException(
                $"{label}: PKCS#11 key '{uri}' unavailable: module '{_module}' cannot be initialised (C_Initialize returned {CkrName(_initResult!.Value)}): its token store or device is unreachable (token removed?)");
        }
    }

    /// <summary>
    /// Handles from before a re-initialisation are still held by the old engine instances (and by TLS contexts that
    /// .NET may keep): a module that numbers handles from 1 again after C_Initialize (SoftHSM2 does) would let such a
    /// stale handle name a different session or key of the new instance, and sign with the wrong key. So, after a
    /// re-initialisation, sessions are opened and closed until the module hands out numbers above every handle seen
    /// before; stale handles then fail (CKR_SESSION_HANDLE_INVALID) instead of aliasing. The cost per reset is one
    /// open/close per handle the module handed out before (SoftHSM2: a few microseconds each).
    /// </summary>
    private static void BurnHandles()
    {
        ulong target = _burnTarget;
        for (int i = 0; i < 1_000_000; i++)
        {
            ulong h = NewSessionHandle();
            if (h == 0 || h > target)
            {
                return;
            }
        }
    }

    /// <summary>Opens and closes a read-only session on the first slot with a token; returns its handle (0 if none).</summary>
    private static ulong NewSessionHandle()
    {
        if (!NativeLibrary.TryGetExport(_library, "C_GetSlotList", out IntPtr getSlots)
            || !NativeLibrary.TryGetExport(_library, "C_OpenSession", out IntPtr open)
            || !NativeLibrary.TryGetExport(_library, "C_CloseSession", out IntPtr close))
        {
            return 0;
        }

        unsafe
        {
            ulong count = 1;
            ulong slot = 0;
            ulong rv = ((delegate* unmanaged<byte, ulong*, ulong*, nuint>)getSlots)(1, &slot, &count);
            if ((rv != 0 && rv != 0x150) || count == 0)
            {
                return 0; // 0x150 CKR_BUFFER_TOO_SMALL: the first slot was still written
            }

            ulong session = 0;
            if (((delegate* unmanaged<ulong, ulong, IntPtr, IntPtr, ulong*, nuint>)open)(slot, 4, IntPtr.Zero, IntPtr.Zero, &session) != 0)
            {
                return 0;
            }

            _ = ((delegate* unmanaged<ulong, nuint>)close)(session);
            return session;
        }
    }

    private static bool TryInitialise()
    {
        if (!NativeLibrary.TryGetExport(_library, "C_Initialize", out IntPtr init))
        {
            _initResult = 0; // not a flat-export module: leave initialisation to libp11
            return true;
        }

        ulong rv;
        unsafe
        {
            // CK_C_INITIALIZE_ARGS: four null mutex callbacks, flags = CKF_OS_LOCKING_OK (2), pReserved = null.
            nuint* args = stackalloc nuint[6];
            args[0] = args[1] = args[2] = args[3] = args[5] = 0;
            args[4] = 2;
            rv = ((delegate* unmanaged<IntPtr, nuint>)init)((IntPtr)args);
        }

        _initResult = rv == 0x191 ? 0 : rv; // CKR_CRYPTOKI_ALREADY_INITIALIZED
        return _initResult == 0;
    }

    /// <summary>
    /// Finds the URI's token through the module: absent is "not present", CKF_USER_PIN_LOCKED is refused without a
    /// login attempt. A URI without a token attribute, or a module without flat exports, skips the check.
    /// </summary>
    private static void CheckToken(string label, string uri)
    {
        string? token = UriAttribute(uri, "token");
        if (token is null
            || !NativeLibrary.TryGetExport(_library, "C_GetSlotList", out IntPtr getSlots)
            || !NativeLibrary.TryGetExport(_library, "C_GetTokenInfo", out IntPtr getInfo))
        {
            return;
        }

        unsafe
        {
            var slotList = (delegate* unmanaged<byte, ulong*, ulong*, nuint>)getSlots;
            var tokenInfo = (delegate* unmanaged<ulong, byte*, nuint>)getInfo;
            ulong count = 0;
            ulong rv = slotList(1, null, &count);
            if (rv != 0)
            {
                throw new SigningKeyUnavailableException($"{label}: PKCS#11 key '{uri}' unavailable: module '{_module}' cannot list its slots (C_GetSlotList returned {CkrName(rv)})");
            }

            var slots = new ulong[Math.Max(count, 1)];
            fixed (ulong* p = slots)
            {
                rv = slotList(1, p, &count);
            }

            if (rv != 0)
            {
                throw new SigningKeyUnavailableException($"{label}: PKCS#11 key '{uri}' unavailable: module '{_module}' cannot list its slots (C_GetSlotList returned {CkrName(rv)})");
            }

            // CK_TOKEN_INFO (LP64): label[32], manufacturerID[32], model[16], serialNumber[16], CK_FLAGS flags at offset 96, ...
            byte* info = stackalloc byte[512];
            for (ulong i = 0; i < count; i++)
            {
                if (tokenInfo(slots[i], info) != 0)
                {
                    continue;
                }

                string tokenLabel = Encoding.UTF8.GetString(new ReadOnlySpan<byte>(info, 32)).TrimEnd(' ', '\0');
                if (!string.Equals(tokenLabel, token, StringComparison.Ordinal))
                {
                    continue;
                }

                ulong flags = *(ulong*)(info + 96);
                if ((flags & CkfUserPinLocked) != 0)
                {
                    throw new SigningKeyUnavailableException(
                        $"{label}: PKCS#11 key '{uri}' unavailable: token '{token}' reports its user PIN locked (CKF_USER_PIN_LOCKED); no login attempted; the security officer must unlock it (C_InitPIN), then the key reopens on its own");
                }

                return;
            }
        }

        throw new SigningKeyUnavailableException($"{label}: PKCS#11 key '{uri}' unavailable: token '{token}' is not present in module '{_module}'");
    }

    private static IntPtr EnsureEngine(string label)
    {
        if (_engine != IntPtr.Zero && _engineGeneration == _generation)
        {
            return _engine;
        }

        // A fresh ENGINE bound by libp11's own bind_engine (what the "dynamic" loader calls; a second dynamic LOAD of
        // the same .so is refused by OpenSSL 3.0), with this process's OpenSSL state so no callbacks are replaced.
        string path = EngineSharedObject();
        ERR_clear_error();
        if (_engineLibrary == IntPtr.Zero && !NativeLibrary.TryLoad(path, out _engineLibrary))
        {
            throw new SigningKeyUnavailableException($"{label}: OpenSSL engine 'pkcs11' ({path}) cannot be loaded (install libengine-pkcs11-openssl)");
        }

        if (!NativeLibrary.TryGetExport(_engineLibrary, "bind_engine", out IntPtr bind))
        {
            throw new SigningKeyUnavailableException($"{label}: '{path}' is not an OpenSSL dynamic engine (no bind_engine)");
        }

        IntPtr e = ENGINE_new();
        int bound;
        byte[] id = Z("pkcs11");
        unsafe
        {
            // dynamic_fns: static_state, then malloc/realloc/free (unused when static_state matches).
            IntPtr* fns = stackalloc IntPtr[4];
            fns[0] = ENGINE_get_static_state();
            fns[1] = fns[2] = fns[3] = IntPtr.Zero;
            fixed (byte* idp = id)
            {
                bound = e == IntPtr.Zero ? 0 : ((delegate* unmanaged<IntPtr, byte*, IntPtr*, int>)bind)(e, idp, fns);
            }
        }

        if (bound != 1)
        {
            string errors = DrainErrors();
            if (e != IntPtr.Zero)
            {
                _ = ENGINE_free(e);
            }

            throw new SigningKeyUnavailableException($"{label}: OpenSSL engine 'pkcs11' ({path}) refused to bind: {errors}");
        }

        if (ENGINE_init(e) != 1)
        {
            string errors = DrainErrors();
            _ = ENGINE_free(e);
            throw new SigningKeyUnavailableException($"{label}: OpenSSL engine 'pkcs11' cannot be initialised: {errors}");
        }

        if (ENGINE_ctrl_cmd_string(e, Z("MODULE_PATH"), Z(_module!), 0) != 1)
        {
            throw new SigningKeyUnavailableException($"{label}:Module: the pkcs11 engine refused MODULE_PATH '{_module}'");
        }

        // The previous instance keeps its functional reference (see the class remarks); only this one is used from now on.
        _engine = e;
        _engineGeneration = _generation;
        return e;
    }

    private static string EngineSharedObject()
    {
        string? dir = Environment.GetEnvironmentVariable("OPENSSL_ENGINES");
        if (string.IsNullOrEmpty(dir))
        {
            // "ENGINESDIR: \"/usr/lib/x86_64-linux-gnu/engines-3\""
            string s = Marshal.PtrToStringUTF8(OpenSSL_version(5)) ?? string.Empty;
            int a = s.IndexOf('"', StringComparison.Ordinal);
            int b = s.LastIndexOf('"');
            dir = a >= 0 && b > a ? s[(a + 1)..b] : "/usr/lib/x86_64-linux-gnu/engines-3";
        }

        return Path.Combine(dir, "pkcs11.so");
    }

    /// <summary>A percent-decoded path attribute of an RFC 7512 URI, or null.</summary>
    private static string? UriAttribute(string uri, string name)
    {
        if (!uri.StartsWith("pkcs11:", StringComparison.Ordinal))
        {
            return null;
        }

        string path = uri[7..];
        int q = path.IndexOf('?', StringComparison.Ordinal);
        if (q >= 0)
        {
            path = path[..q];
        }

        foreach (string part in path.Split(';'))
        {
            int eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && string.Equals(part[..eq], name, StringComparison.Ordinal))
            {
                return Uri.UnescapeDataString(part[(eq + 1)..]);
            }
        }

        return null;
    }

    /// <summary>A short cause for the operator from libp11's error strings (the CKR names libp11 reports).</summary>
    private static string Classify(string errors)
    {
        if (errors.Contains("PIN incorrect", StringComparison.OrdinalIgnoreCase) || errors.Contains("PIN_INCORRECT", StringComparison.Ordinal))
        {
            return "PIN refused by the token (CKR_PIN_INCORRECT): check the PIN source";
        }

        if (errors.Contains("PIN locked", StringComparison.OrdinalIgnoreCase) || errors.Contains("PIN_LOCKED", StringComparison.Ordinal))
        {
            return "login refused: user PIN locked (CKR_PIN_LOCKED); the security officer must unlock it";
        }

        return "token missing, PIN refused or locked, or no such object";
    }

    private static string DrainErrors()
    {
        var sb = new StringBuilder();
        var buffer = new byte[256];
        for (int i = 0; i < 8; i++)
        {
            ulong code = ERR_get_error();
            if (code == 0)
            {
                break;
            }

            ERR_error_string_n(code, buffer, (nuint)buffer.Length);
            int n = Array.IndexOf(buffer, (byte)0);
            if (sb.Length > 0)
            {
                sb.Append("; ");
            }

            sb.Append(Encoding.UTF8.GetString(buffer, 0, n < 0 ? buffer.Length : n));
        }

        ERR_clear_error();
        return sb.Length == 0 ? "no OpenSSL error recorded" : sb.ToString();
    }

    private static string CkrName(ulong rv) => rv switch
    {
        0x05 => "CKR_GENERAL_ERROR",
        0x06 => "CKR_FUNCTION_FAILED",
        0x30 => "CKR_DEVICE_ERROR",
        0x32 => "CKR_DEVICE_REMOVED",
        0xA0 => "CKR_PIN_INCORRECT",
        0xA4 => "CKR_PIN_LOCKED",
        0xE0 => "CKR_TOKEN_NOT_PRESENT",
        0x190 => "CKR_CRYPTOKI_NOT_INITIALIZED",
        _ => "0x" + rv.ToString("X", System.Globalization.CultureInfo.InvariantCulture),
    };

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
    private static extern int ENGINE_init(IntPtr e);

    [DllImport(Crypto)]
    private static extern IntPtr ENGINE_new();

    [DllImport(Crypto)]
    private static extern IntPtr ENGINE_get_static_state();

    [DllImport(Crypto)]
    private static extern int ENGINE_free(IntPtr e);

    [DllImport(Crypto)]
    private static extern IntPtr ENGINE_load_private_key(IntPtr e, byte[] keyId, IntPtr uiMethod, IntPtr callbackData);

    [DllImport(Crypto)]
    private static extern ulong ERR_get_error();

    [DllImport(Crypto)]
    private static extern void ERR_clear_error();

    [DllImport(Crypto)]
    private static extern void ERR_error_string_n(ulong e, byte[] buf, nuint len);

    [DllImport(Crypto)]
    private static extern IntPtr OpenSSL_version(int type);
}
