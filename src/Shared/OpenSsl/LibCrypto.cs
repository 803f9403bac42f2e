using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace OfflinePki.Keys;

/// <summary>
/// What the direct libcrypto callers share (<see cref="Pkcs11Engine"/>, the CSR proof-of-possession verifier and the
/// issuer's self-check): the library name, the curve NIDs, and an up-front check that every entry point exists.
/// </summary>
internal static class LibCrypto
{
    /// <summary>OpenSSL 3's libcrypto, as Debian and the runtime's own OpenSSL shim load it.</summary>
    public const string Name = "libcrypto.so.3";

    /// <summary>NID_X9_62_prime256v1 (P-256).</summary>
    public const int NidPrime256v1 = 415;

    /// <summary>NID_secp384r1 (P-384).</summary>
    public const int NidSecp384r1 = 715;

    /// <summary>The digest an ECDSA signature covers (SEC 1 §4.1.4 step 2), written to <paramref name="digest"/>.</summary>
    /// <param name="hash">SHA-256, SHA-384 or SHA-512.</param>
    /// <param name="data">The signed bytes.</param>
    /// <param name="digest">At least 64 bytes.</param>
    /// <returns>The digest length in bytes.</returns>
    /// <exception cref="ArgumentException">Another hash.</exception>
    public static int Digest(HashAlgorithmName hash, ReadOnlySpan<byte> data, Span<byte> digest) => hash.Name switch
    {
        "SHA256" => SHA256.HashData(data, digest),
        "SHA384" => SHA384.HashData(data, digest),
        "SHA512" => SHA512.HashData(data, digest),
        _ => throw new ArgumentException($"unsupported hash {hash.Name}", nameof(hash)),
    };

    /// <summary>
    /// Resolves every [DllImport] method of <paramref name="type"/> now, so that a missing entry point turns a fast
    /// path off at set-up instead of failing a request later.
    /// </summary>
    /// <returns>False on Windows/macOS, or when the library or an entry point is missing.</returns>
    public static bool TryPrelink(Type type)
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            foreach (var m in type.GetMethods(BindingFlags.NonPublic | BindingFlags.Static))
            {
                if (m.IsDefined(typeof(DllImportAttribute), false))
                {
                    Marshal.Prelink(m);
                }
            }

            return true;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }
}
