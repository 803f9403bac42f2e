using System.Formats.Asn1;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace OfflinePki.Keys;

/// <summary>
/// Verifies ECDSA signatures (SEC 1 §4.1.4) under one public key that every call uses: an issuing CA's, inside
/// <see cref="SignatureCheckKey"/>, for the issuer's self-check of each fresh certificate signature and for the
/// mirror's check of every synced certificate. P-256 and P-384.
/// </summary>
/// <remarks>
/// <para><b>Why.</b> An ECDSA verify computes u1·G + u2·Q. OpenSSL keeps a precomputed table for the generator G, so
/// u1·G is cheap, but Q is treated as a new point on every call. Q here never changes, so this class builds a table
/// for it once: a copy of the curve's EC_GROUP whose generator is set to Q (<c>EC_GROUP_set_generator</c>), with
/// <c>EC_GROUP_precompute_mult</c>. Each verify is then two fixed-base multiplications. On our 2-core machine this is
/// about 38 µs against about 70 µs for <c>ECDSA_verify</c> (and more through the runtime's EVP path).</para>
/// <para><b>The check</b> is SEC 1 §4.1.4 step by step: the signature is a DER ECDSA-Sig-Value (RFC 3279 §2.2.3,
/// strict DER) with 1 ≤ r, s &lt; n; e is the leftmost bits of the hash, as many as n has; w = s⁻¹ mod n,
/// u1 = e·w, u2 = r·w; R = u1·G + u2·Q must not be the point at infinity; and x(R) mod n must equal r. The tests
/// compare it with the runtime's verifier on good, altered and foreign signatures.</para>
/// <para>These are OpenSSL's EC and BN calls from libcrypto 3. Where they are missing, <see cref="TryCreate"/>
/// returns null and <see cref="SignatureCheckKey"/> uses the runtime's verifier.</para>
/// </remarks>
internal sealed class FixedKeyEcdsaVerifier : IFixedKeyEcdsaVerifier
{
    private const string Crypto = LibCrypto.Name;

    private readonly SafeEcGroupHandle _curve;
    private readonly SafeEcGroupHandle _byKey;
    private readonly byte[] _order;
    private readonly int _size;

    private FixedKeyEcdsaVerifier(SafeEcGroupHandle curve, SafeEcGroupHandle byKey, byte[] order, int size)
    {
        _curve = curve;
        _byKey = byKey;
        _order = order;
        _size = size;
    }

    /// <summary>Builds the verifier for <paramref name="publicKey"/>, or returns null where libcrypto 3 is not usable.</summary>
    /// <param name="publicKey">A P-256 or P-384 public key.</param>
    /// <returns>The verifier; null for another curve, or when the OpenSSL calls are missing or fail.</returns>
    public static FixedKeyEcdsaVerifier? TryCreate(ECDsa publicKey)
    {
        ArgumentNullException.ThrowIfNull(publicKey);
        var p = publicKey.ExportParameters(false);
        int? nid = p.Curve.Oid.Value switch
        {
            "1.2.840.10045.3.1.7" => LibCrypto.NidPrime256v1,
            "1.3.132.0.34" => LibCrypto.NidSecp384r1,
            _ => null,
        };
        if (nid is null || p.Q.X is null || p.Q.Y is null || !LibCrypto.TryPrelink(typeof(FixedKeyEcdsaVerifier)))
        {
            return null;
        }

        int size = p.Q.X.Length;
        byte[] point = [0x04, .. p.Q.X, .. p.Q.Y];
        var curve = new SafeEcGroupHandle(EC_GROUP_new_by_curve_name(nid.Value));
        var byKey = new SafeEcGroupHandle(EC_GROUP_dup(curve));
        IntPtr q = EC_POINT_new(curve);
        IntPtr ctx = BN_CTX_new();
        byte[] order = new byte[size];
        try
        {
            if (curve.IsInvalid || byKey.IsInvalid || q == IntPtr.Zero || ctx == IntPtr.Zero
                || EC_POINT_oct2point(curve, q, ref point[0], (nuint)point.Length, ctx) != 1
                || EC_GROUP_set_generator(byKey, q, EC_GROUP_get0_order(curve), EC_GROUP_get0_cofactor(curve)) != 1
                || EC_GROUP_precompute_mult(byKey, ctx) != 1
                || BN_bn2binpad(EC_GROUP_get0_order(curve), ref order[0], size) != size)
            {
                ERR_clear_error();
                curve.Dispose();
                byKey.Dispose();
                return null;
            }
        }
        finally
        {
            EC_POINT_free(q);
            BN_CTX_free(ctx);
        }

        return new FixedKeyEcdsaVerifier(curve, byKey, order, size);
    }

    /// <summary>Verifies <paramref name="derSignature"/> over <paramref name="data"/>.</summary>
    /// <param name="data">The signed bytes (a TBSCertificate).</param>
    /// <param name="hash">SHA-256, SHA-384 or SHA-512.</param>
    /// <param name="derSignature">ECDSA-Sig-Value in DER.</param>
    /// <returns>True if the signature is valid for the key.</returns>
    /// <exception cref="ArgumentException">An unsupported hash.</exception>
    /// <exception cref="CryptographicException">OpenSSL failed (out of memory).</exception>
    /// <exception cref="ObjectDisposedException">The verifier has been disposed.</exception>
    public bool Verify(ReadOnlySpan<byte> data, HashAlgorithmName hash, ReadOnlySpan<byte> derSignature)
    {
        // Issue 16 finding 6: both groups are kept alive (a reference each) for the whole verify, since the order
        // pointer (EC_GROUP_get0_order) and the points are used after the last call that takes the handles. A disposed
        // verifier throws ObjectDisposedException here; a Dispose during a verify frees the groups after it.
        bool curveRef = false, byKeyRef = false;
        try
        {
            _curve.DangerousAddRef(ref curveRef);
            _byKey.DangerousAddRef(ref byKeyRef);
            return VerifyReferenced(data, hash, derSignature);
        }
        finally
        {
            if (byKeyRef)
            {
                _byKey.DangerousRelease();
            }

            if (curveRef)
            {
                _curve.DangerousRelease();
            }
        }
    }

    /// <summary>Releases both EC_GROUPs (the curve's and the key's table); idempotent.</summary>
    public void Dispose()
    {
        _byKey.Dispose();
        _curve.Dispose();
    }

    private bool VerifyReferenced(ReadOnlySpan<byte> data, HashAlgorithmName hash, ReadOnlySpan<byte> derSignature)
    {
        Span<byte> digest = stackalloc byte[64];
        int digestLength = LibCrypto.Digest(hash, data, digest);

        if (!TryReadSignature(derSignature, out var r, out var s))
        {
            return false;
        }

        // The leftmost bits of the hash, as many as the order has (SEC 1 §4.1.3 step 5); n is 256 or 384 bits.
        var e = digest[..Math.Min(digestLength, _size)];

        IntPtr ctx = BN_CTX_new();
        IntPtr sum = EC_POINT_new(_curve), byKey = EC_POINT_new(_curve);
        if (ctx == IntPtr.Zero || sum == IntPtr.Zero || byKey == IntPtr.Zero)
        {
            BN_CTX_free(ctx);
            EC_POINT_free(sum);
            EC_POINT_free(byKey);
            throw new CryptographicException("out of memory in the CA signature self-check");
        }

        BN_CTX_start(ctx);
        try
        {
            IntPtr n = EC_GROUP_get0_order(_curve);
            IntPtr bnR = BN_CTX_get(ctx), bnS = BN_CTX_get(ctx), bnE = BN_CTX_get(ctx), w = BN_CTX_get(ctx);
            IntPtr u1 = BN_CTX_get(ctx), u2 = BN_CTX_get(ctx), x = BN_CTX_get(ctx);
            bool ok = x != IntPtr.Zero
                && BN_bin2bn(ref MemoryMarshal.GetReference(r), r.Length, bnR) != IntPtr.Zero
                && BN_bin2bn(ref MemoryMarshal.GetReference(s), s.Length, bnS) != IntPtr.Zero
                && BN_bin2bn(ref MemoryMarshal.GetReference(e), e.Length, bnE) != IntPtr.Zero
                && BN_mod_inverse(w, bnS, n, ctx) != IntPtr.Zero
                && BN_mod_mul(u1, bnE, w, n, ctx) == 1
                && BN_mod_mul(u2, bnR, w, n, ctx) == 1
                && EC_POINT_mul(_curve, sum, u1, IntPtr.Zero, IntPtr.Zero, ctx) == 1 // u1·G, G's table
                && EC_POINT_mul(_byKey, byKey, u2, IntPtr.Zero, IntPtr.Zero, ctx) == 1 // u2·Q, Q's table
                && EC_POINT_add(_curve, sum, sum, byKey, ctx) == 1;
            if (!ok)
            {
                ERR_clear_error();
                throw new CryptographicException("OpenSSL failed in the CA signature self-check");
            }

            if (EC_POINT_is_at_infinity(_curve, sum) == 1)
            {
                return false;
            }

            if (EC_POINT_get_affine_coordinates(_curve, sum, x, IntPtr.Zero, ctx) != 1 || BN_nnmod(x, x, n, ctx) != 1)
            {
                ERR_clear_error();
                throw new CryptographicException("OpenSSL failed in the CA signature self-check");
            }

            return BN_cmp(x, bnR) == 0;
        }
        finally
        {
            BN_CTX_end(ctx);
            BN_CTX_free(ctx);
            EC_POINT_free(sum);
            EC_POINT_free(byKey);
        }
    }

    /// <summary>Reads r and s (unsigned, big-endian) from strict DER and checks 1 ≤ r, s &lt; n.</summary>
    private bool TryReadSignature(ReadOnlySpan<byte> der, out ReadOnlySpan<byte> r, out ReadOnlySpan<byte> s)
    {
        r = s = default;
        try
        {
            AsnDecoder.ReadSequence(der, AsnEncodingRules.DER, out int contentOffset, out int contentLength, out int consumed);
            if (consumed != der.Length)
            {
                return false;
            }

            var content = der.Slice(contentOffset, contentLength);
            r = AsnDecoder.ReadIntegerBytes(content, AsnEncodingRules.DER, out int used);
            s = AsnDecoder.ReadIntegerBytes(content[used..], AsnEncodingRules.DER, out int used2);
            if (used + used2 != content.Length)
            {
                return false;
            }
        }
        catch (AsnContentException)
        {
            return false;
        }

        return InRange(ref r) && InRange(ref s);
    }

    /// <summary>Strips a DER sign octet and checks 0 &lt; v &lt; n.</summary>
    private bool InRange(ref ReadOnlySpan<byte> v)
    {
        if (v.Length > 0 && (v[0] & 0x80) != 0)
        {
            return false; // negative
        }

        if (v.Length > 1 && v[0] == 0)
        {
            v = v[1..];
        }

        if (v.Length > _size || v.IndexOfAnyExcept((byte)0) < 0)
        {
            return false; // too long, or zero
        }

        Span<byte> padded = stackalloc byte[_size];
        padded.Clear();
        v.CopyTo(padded[(_size - v.Length)..]);
        return padded.SequenceCompareTo(_order) < 0;
    }

    private sealed class SafeEcGroupHandle : SafeHandle
    {
        public SafeEcGroupHandle(IntPtr handle)
            : base(IntPtr.Zero, true) => SetHandle(handle);

        public override bool IsInvalid => handle == IntPtr.Zero;

        protected override bool ReleaseHandle()
        {
            EC_GROUP_free(handle);
            return true;
        }
    }

#pragma warning disable SYSLIB1054, CA5392 // plain libcrypto calls, like Keys/Pkcs11Engine and Enrollment/EcdsaPointVerifier
    [DllImport(Crypto)]
    private static extern IntPtr EC_GROUP_new_by_curve_name(int nid);

    [DllImport(Crypto)]
    private static extern IntPtr EC_GROUP_dup(SafeEcGroupHandle group);

    [DllImport(Crypto)]
    private static extern void EC_GROUP_free(IntPtr group);

    [DllImport(Crypto)]
    private static extern IntPtr EC_GROUP_get0_order(SafeEcGroupHandle group);

    [DllImport(Crypto)]
    private static extern IntPtr EC_GROUP_get0_cofactor(SafeEcGroupHandle group);

    [DllImport(Crypto)]
    private static extern int EC_GROUP_set_generator(SafeEcGroupHandle group, IntPtr generator, IntPtr order, IntPtr cofactor);

    [DllImport(Crypto)]
    private static extern int EC_GROUP_precompute_mult(SafeEcGroupHandle group, IntPtr ctx);

    [DllImport(Crypto)]
    private static extern IntPtr EC_POINT_new(SafeEcGroupHandle group);

    [DllImport(Crypto)]
    private static extern void EC_POINT_free(IntPtr point);

    [DllImport(Crypto)]
    private static extern int EC_POINT_oct2point(SafeEcGroupHandle group, IntPtr point, ref byte buf, nuint len, IntPtr ctx);

    [DllImport(Crypto)]
    private static extern int EC_POINT_mul(SafeEcGroupHandle group, IntPtr result, IntPtr generatorScalar, IntPtr point, IntPtr pointScalar, IntPtr ctx);

    [DllImport(Crypto)]
    private static extern int EC_POINT_add(SafeEcGroupHandle group, IntPtr result, IntPtr a, IntPtr b, IntPtr ctx);

    [DllImport(Crypto)]
    private static extern int EC_POINT_is_at_infinity(SafeEcGroupHandle group, IntPtr point);

    [DllImport(Crypto)]
    private static extern int EC_POINT_get_affine_coordinates(SafeEcGroupHandle group, IntPtr point, IntPtr x, IntPtr y, IntPtr ctx);

    [DllImport(Crypto)]
    private static extern IntPtr BN_CTX_new();

    [DllImport(Crypto)]
    private static extern void BN_CTX_free(IntPtr ctx);

    [DllImport(Crypto)]
    private static extern void BN_CTX_start(IntPtr ctx);

    [DllImport(Crypto)]
    private static extern void BN_CTX_end(IntPtr ctx);

    [DllImport(Crypto)]
    private static extern IntPtr BN_CTX_get(IntPtr ctx);

    [DllImport(Crypto)]
    private static extern IntPtr BN_bin2bn(ref byte s, int len, IntPtr ret);

    [DllImport(Crypto)]
    private static extern int BN_bn2binpad(IntPtr a, ref byte to, int toLength);

    [DllImport(Crypto)]
    private static extern IntPtr BN_mod_inverse(IntPtr result, IntPtr a, IntPtr n, IntPtr ctx);

    [DllImport(Crypto)]
    private static extern int BN_mod_mul(IntPtr result, IntPtr a, IntPtr b, IntPtr m, IntPtr ctx);

    [DllImport(Crypto)]
    private static extern int BN_nnmod(IntPtr result, IntPtr a, IntPtr m, IntPtr ctx);

    [DllImport(Crypto)]
    private static extern int BN_cmp(IntPtr a, IntPtr b);

    [DllImport(Crypto)]
    private static extern void ERR_clear_error();
#pragma warning restore SYSLIB1054, CA5392
}
