using System.Runtime.InteropServices;
using System.Security.Cryptography;
using OfflinePki.Keys;

namespace OfflinePki.Enrollment;

/// <summary>
/// Verifies one ECDSA signature (SEC 1 §4.1.4) under a P-256 or P-384 public key that is seen once: a CSR's proof of
/// possession (RFC 2986 §3), where every request brings a new device key.
/// </summary>
/// <remarks>
/// <para><b>Why not <see cref="ECDsa.Create(ECParameters)"/>.</b> Importing a public key through the runtime (or
/// <c>d2i_PUBKEY</c>) makes OpenSSL 3 build a fresh EC_GROUP for the named curve, whose Montgomery set-up costs
/// modular inversions: on our 2-core machine the import takes about 130 µs, against about 75 µs for the verify itself.
/// Here each curve's EC_GROUP is built once and copied into a bare EC_KEY per request (a copy, no inversions); the
/// point is decoded with <c>EC_KEY_oct2key</c>, which rejects a point that is not on the curve, and the signature is
/// checked with <c>ECDSA_verify</c>, which also rejects a non-canonical DER signature. For these prime-order curves
/// (cofactor 1) a point on the curve other than infinity has the full order, so this is the same check the runtime's
/// import makes. Measured with <c>bench stages</c> (csr intake).</para>
/// <para>These are OpenSSL's EC_KEY calls, deprecated (not removed) in OpenSSL 3. Where libcrypto 3 or the calls are
/// missing, <see cref="TryVerify"/> returns null and the caller falls back to the runtime's import.</para>
/// </remarks>
internal static class EcdsaPointVerifier
{
    private const string Crypto = LibCrypto.Name;

    private static readonly Lazy<(IntPtr P256, IntPtr P384)?> Groups = new(LoadGroups, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Whether the fast path is available on this machine (libcrypto 3 with the EC_KEY calls).</summary>
    public static bool Available => Groups.Value is not null;

    /// <summary>Verifies <paramref name="derSignature"/> (ECDSA-Sig-Value, RFC 3279 §2.2.3) over <paramref name="data"/>.</summary>
    /// <param name="coordinateBytes">32 for P-256, 48 for P-384.</param>
    /// <param name="uncompressedPoint">The public key as an uncompressed point (SEC 1 §2.3.3): 0x04 ‖ X ‖ Y.</param>
    /// <param name="data">The signed bytes (for a CSR, the DER CertificationRequestInfo).</param>
    /// <param name="hash">SHA-256, SHA-384 or SHA-512.</param>
    /// <param name="derSignature">The DER signature.</param>
    /// <returns>True if it verifies, false if not, null if the fast path is not available (use the runtime's import).</returns>
    /// <exception cref="CryptographicException">The point is not on the curve (or not an uncompressed point of its size).</exception>
    /// <exception cref="ArgumentException">An unsupported curve size or hash.</exception>
    public static bool? TryVerify(int coordinateBytes, ReadOnlySpan<byte> uncompressedPoint, ReadOnlySpan<byte> data, HashAlgorithmName hash, ReadOnlySpan<byte> derSignature)
    {
        if (Groups.Value is not { } groups)
        {
            return null;
        }

        IntPtr group = coordinateBytes switch
        {
            32 => groups.P256,
            48 => groups.P384,
            _ => throw new ArgumentException($"no curve with {coordinateBytes}-byte coordinates", nameof(coordinateBytes)),
        };
        if (uncompressedPoint.Length != 1 + (2 * coordinateBytes) || uncompressedPoint[0] != 0x04)
        {
            throw new CryptographicException("not an uncompressed point of the curve's size");
        }

        Span<byte> digest = stackalloc byte[64];
        int digestLength = LibCrypto.Digest(hash, data, digest);

        IntPtr key = EC_KEY_new();
        if (key == IntPtr.Zero)
        {
            throw new CryptographicException("EC_KEY_new failed (out of memory)");
        }

        try
        {
            if (EC_KEY_set_group(key, group) != 1)
            {
                ERR_clear_error();
                throw new CryptographicException("EC_KEY_set_group failed");
            }

            if (EC_KEY_oct2key(key, ref MemoryMarshal.GetReference(uncompressedPoint), (nuint)uncompressedPoint.Length, IntPtr.Zero) != 1)
            {
                ERR_clear_error();
                throw new CryptographicException("the public key is not a point on the curve");
            }

            int rc = ECDSA_verify(0, ref MemoryMarshal.GetReference(digest), digestLength, ref MemoryMarshal.GetReference(derSignature), derSignature.Length, key);
            if (rc != 1)
            {
                ERR_clear_error(); // 0: bad signature; -1: undecodable signature. Both are "does not verify".
            }

            return rc == 1;
        }
        finally
        {
            EC_KEY_free(key);
        }
    }

    private static (IntPtr, IntPtr)? LoadGroups()
    {
        if (!LibCrypto.TryPrelink(typeof(EcdsaPointVerifier)))
        {
            return null;
        }

        IntPtr p256 = EC_GROUP_new_by_curve_name(LibCrypto.NidPrime256v1), p384 = EC_GROUP_new_by_curve_name(LibCrypto.NidSecp384r1);
        if (p256 == IntPtr.Zero || p384 == IntPtr.Zero)
        {
            ERR_clear_error();
            return null;
        }

        return (p256, p384); // built once, kept for the process's lifetime
    }

#pragma warning disable SYSLIB1054, CA5392 // plain libcrypto calls, like Keys/Pkcs11Engine
    [DllImport(Crypto)]
    private static extern IntPtr EC_GROUP_new_by_curve_name(int nid);

    [DllImport(Crypto)]
    private static extern IntPtr EC_KEY_new();

    [DllImport(Crypto)]
    private static extern int EC_KEY_set_group(IntPtr key, IntPtr group);

    [DllImport(Crypto)]
    private static extern int EC_KEY_oct2key(IntPtr key, ref byte buf, nuint len, IntPtr ctx);

    [DllImport(Crypto)]
    private static extern int ECDSA_verify(int type, ref byte digest, int digestLength, ref byte signature, int signatureLength, IntPtr key);

    [DllImport(Crypto)]
    private static extern void EC_KEY_free(IntPtr key);

    [DllImport(Crypto)]
    private static extern void ERR_clear_error();
#pragma warning restore SYSLIB1054, CA5392
}
