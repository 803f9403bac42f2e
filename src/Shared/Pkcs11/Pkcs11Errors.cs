using System.Runtime.InteropServices;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;

namespace OfflinePki.Keys.Pkcs11;

/// <summary>
/// What the Pkcs11Interop code shares: the loader fix for Debian's <c>libdl</c>, and the operator's reading of
/// <c>CKR_*</c> return values (PKCS#11 v2.40 §5.1), by code and never by message text.
/// </summary>
public static class Pkcs11Errors
{
    private static int _resolverSet;

    /// <summary>
    /// Pkcs11Interop 5.3.0 imports <c>dlopen</c> from "libdl"; Debian 12 ships only <c>libdl.so.2</c> (glibc ≥ 2.34
    /// folds it into libc), so without this resolver <c>LoadPkcs11Library</c> throws <see cref="DllNotFoundException"/>.
    /// Idempotent; a resolver someone else set on that assembly is kept.
    /// </summary>
    public static void EnsureNativeResolver()
    {
        if (Interlocked.Exchange(ref _resolverSet, 1) == 1)
        {
            return;
        }

        try
        {
            NativeLibrary.SetDllImportResolver(typeof(Pkcs11InteropFactories).Assembly, static (name, assembly, path) =>
                OperatingSystem.IsLinux() && string.Equals(name, "libdl", StringComparison.Ordinal) && NativeLibrary.TryLoad("libdl.so.2", out IntPtr h)
                    ? h
                    : IntPtr.Zero);
        }
        catch (InvalidOperationException)
        {
            // A resolver is already set for the assembly (by the host): keep it.
        }
    }

    /// <summary>The operator's reading of a failed <c>C_Login</c>, by return value (never by message text).</summary>
    /// <param name="rv">The return value.</param>
    public static string DescribeLogin(CKR rv) => rv switch
    {
        CKR.CKR_PIN_INCORRECT => "PIN refused by the token (CKR_PIN_INCORRECT): check the PIN source",
        CKR.CKR_PIN_LOCKED => "login refused: user PIN locked (CKR_PIN_LOCKED); the security officer must unlock it (C_InitPIN), then the key reopens on its own",
        CKR.CKR_PIN_EXPIRED => "login refused: the user PIN has expired (CKR_PIN_EXPIRED); change it on the token and in the PIN source",
        CKR.CKR_PIN_LEN_RANGE => "PIN refused by the token (CKR_PIN_LEN_RANGE: wrong length): check the PIN source",
        CKR.CKR_USER_PIN_NOT_INITIALIZED => "login refused: the token has no user PIN yet (CKR_USER_PIN_NOT_INITIALIZED); the security officer must set it (C_InitPIN)",
        _ => "login refused (" + Name(rv) + ")",
    };

    /// <summary>The CKR constant's name, e.g. "CKR_PIN_INCORRECT", or hex for a vendor code.</summary>
    /// <param name="rv">The return value.</param>
    public static string Name(CKR rv) => Enum.IsDefined(rv) ? rv.ToString() : "0x" + ((ulong)rv).ToString("X", System.Globalization.CultureInfo.InvariantCulture);
}
