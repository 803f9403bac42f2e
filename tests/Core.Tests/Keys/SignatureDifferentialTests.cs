using System.Globalization;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using NUnit.Framework;
using OfflinePki.Asn1;
using OfflinePki.Keys;

namespace OfflinePki.Tests.Resilience;

/// <summary>
/// Issue 16 finding 5: one signature, one verdict. Valid, mutated and malleated ECDSA signatures (negative r, r+n,
/// r=0, s=0, s=n, n-s, BER lengths, a redundant leading 00, trailing bytes, truncation, bit flips) on P-256 and P-384
/// with SHA-256/384/512 go to three verifiers: the precomputed-table verifier (FixedKeyEcdsaVerifier), the runtime
/// behind the strict-DER gate (EcdsaSignatureDer.IsStrict then ECDsa.VerifyData), and OpenSSL libcrypto's
/// ECDSA_verify (the peer). All three must agree on every case. CI runs 20,000 cases; ops/fuzz-verify.sh runs any
/// count (OFFLINEPKI_VERIFY_DIFF_CASES, e.g. 1,000,000) with OFFLINEPKI_VERIFY_DIFF_SEED for a reproducible run.
/// </summary>
public class SignatureDifferentialTests
{
    private const string LibCrypto = "libcrypto.so.3";

    private enum Mutation
    {
        None, NegativeR, RPlusN, ZeroR, ZeroS, SEqualsN, NMinusS, BerLength, LeadingZeroS, Trailing, Truncated, BitFlip,
    }

    [Test]
    public void Fast_path_runtime_behind_strict_DER_and_OpenSSL_agree_on_every_signature()
    {
        int cases = int.TryParse(Environment.GetEnvironmentVariable("OFFLINEPKI_VERIFY_DIFF_CASES"), NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : 20_000;
        int seed = int.TryParse(Environment.GetEnvironmentVariable("OFFLINEPKI_VERIFY_DIFF_SEED"), NumberStyles.None, CultureInfo.InvariantCulture, out int sd) ? sd : 16_005;
        var random = new Random(seed);
        var keys = new[] { ECCurve.NamedCurves.nistP256, ECCurve.NamedCurves.nistP384 }
            .SelectMany(c => Enumerable.Range(0, 2).Select(_ => new Peer(ECDsa.Create(c)))).ToArray();
        HashAlgorithmName[] hashes = [HashAlgorithmName.SHA256, HashAlgorithmName.SHA384, HashAlgorithmName.SHA512];
        var mutations = Enum.GetValues<Mutation>();
        var accepted = new int[mutations.Length];
        var total = new int[mutations.Length];
        var disagreements = new List<string>();
        try
        {
            for (int i = 0; i < cases; i++)
            {
                var peer = keys[random.Next(keys.Length)];
                var hash = hashes[random.Next(hashes.Length)];
                byte[] data = new byte[random.Next(0, 64)];
                random.NextBytes(data);
                var mutation = mutations[random.Next(mutations.Length)];
                byte[] sig = Mutate(peer.Key.SignData(data, hash, DSASignatureFormat.Rfc3279DerSequence), mutation, peer.Order, random);
                bool fast = peer.Table.Verify(data, hash, sig);
                bool runtime = EcdsaSignatureDer.IsStrict(sig, peer.Key) && peer.Key.VerifyData(data, sig, hash, DSASignatureFormat.Rfc3279DerSequence);
                bool openssl = peer.OpenSslVerify(Digest(hash, data), sig);
                total[(int)mutation]++;
                accepted[(int)mutation] += runtime ? 1 : 0;
                if (fast != runtime || runtime != openssl)
                {
                    disagreements.Add($"case {i} {peer.Key.KeySize} {hash.Name} {mutation}: fast {fast} runtime {runtime} openssl {openssl} sig {Convert.ToHexString(sig)}");
                }
            }
        }
        finally
        {
            foreach (var k in keys)
            {
                k.Dispose();
            }
        }

        TestContext.Out.WriteLine($"{cases} cases (seed {seed}), {disagreements.Count} disagreements; accepted/total per mutation: "
            + string.Join(", ", mutations.Select(m => $"{m} {accepted[(int)m]}/{total[(int)m]}")));
        Assert.That(disagreements, Is.Empty, string.Join("\n", disagreements.Take(20)));
        Assert.That(accepted[(int)Mutation.None], Is.EqualTo(total[(int)Mutation.None]), "every valid signature verifies");
        Assert.That(accepted[(int)Mutation.NMinusS], Is.EqualTo(total[(int)Mutation.NMinusS]), "high s is accepted on every path (docs/security/signatures.md)");
        foreach (var refused in new[] { Mutation.NegativeR, Mutation.RPlusN, Mutation.ZeroR, Mutation.ZeroS, Mutation.SEqualsN, Mutation.BerLength, Mutation.LeadingZeroS, Mutation.Trailing, Mutation.Truncated })
        {
            Assert.That(accepted[(int)refused], Is.Zero, refused.ToString());
        }
    }

    private static byte[] Digest(HashAlgorithmName hash, byte[] data) =>
        hash == HashAlgorithmName.SHA256 ? SHA256.HashData(data) : hash == HashAlgorithmName.SHA384 ? SHA384.HashData(data) : SHA512.HashData(data);

    private static byte[] Mutate(byte[] der, Mutation mutation, BigInteger n, Random random)
    {
        var (r, s) = Split(der);
        switch (mutation)
        {
            case Mutation.None:
                return der;
            case Mutation.NegativeR:
                // r's magnitude with the sign octet dropped or the top bit set: a negative INTEGER of the same octets.
                byte[] rb = r.ToByteArray(isUnsigned: true, isBigEndian: true);
                rb[0] |= 0x80;
                return Sequence(Integer(rb), Integer(s.ToByteArray(isUnsigned: false, isBigEndian: true)));
            case Mutation.RPlusN:
                return Encode(r + n, s);
            case Mutation.ZeroR:
                return Encode(BigInteger.Zero, s);
            case Mutation.ZeroS:
                return Encode(r, BigInteger.Zero);
            case Mutation.SEqualsN:
                return Encode(r, n);
            case Mutation.NMinusS:
                return Encode(r, n - s);
            case Mutation.BerLength:
                byte[] body = der[2..];
                return [0x30, 0x81, (byte)body.Length, .. body];
            case Mutation.LeadingZeroS:
                return Sequence(Integer(r.ToByteArray(isUnsigned: false, isBigEndian: true)), Integer([0, .. s.ToByteArray(isUnsigned: false, isBigEndian: true)]));
            case Mutation.Trailing:
                return [.. der, (byte)random.Next(256)];
            case Mutation.Truncated:
                return der[..random.Next(der.Length)];
            default:
                byte[] flipped = (byte[])der.Clone();
                flipped[random.Next(flipped.Length)] ^= (byte)(1 << random.Next(8));
                return flipped;
        }
    }

    private static (BigInteger R, BigInteger S) Split(byte[] der)
    {
        var seq = new System.Formats.Asn1.AsnReader(der, System.Formats.Asn1.AsnEncodingRules.DER).ReadSequence();
        return (seq.ReadInteger(), seq.ReadInteger());
    }

    private static byte[] Encode(BigInteger r, BigInteger s) =>
        Sequence(Integer(r.ToByteArray(isUnsigned: false, isBigEndian: true)), Integer(s.ToByteArray(isUnsigned: false, isBigEndian: true)));

    private static byte[] Integer(byte[] content) => [0x02, .. Length(content.Length), .. content];

    private static byte[] Sequence(byte[] a, byte[] b) => [0x30, .. Length(a.Length + b.Length), .. a, .. b];

    private static byte[] Length(int length) => length < 0x80 ? [(byte)length] : [0x81, (byte)length];

    /// <summary>One key seen by the three verifiers.</summary>
    private sealed class Peer : IDisposable
    {
        private readonly IntPtr _ecKey;

        public Peer(ECDsa key)
        {
            Key = key;
            Table = FixedKeyEcdsaVerifier.TryCreate(key) ?? throw new InvalidOperationException("no table verifier (libcrypto 3 missing)");
            Order = new BigInteger(key.ExportExplicitParameters(false).Curve.Order, isUnsigned: true, isBigEndian: true);
            byte[] spki = key.ExportSubjectPublicKeyInfo();
            IntPtr buffer = Marshal.AllocHGlobal(spki.Length);
            try
            {
                Marshal.Copy(spki, 0, buffer, spki.Length);
                IntPtr cursor = buffer;
                _ecKey = d2i_EC_PUBKEY(IntPtr.Zero, ref cursor, spki.Length);
            }
            finally
            {
                Marshal.FreeHGlobal(buffer);
            }

            if (_ecKey == IntPtr.Zero)
            {
                throw new InvalidOperationException("OpenSSL could not read the public key");
            }
        }

        public ECDsa Key { get; }

        public FixedKeyEcdsaVerifier Table { get; }

        public BigInteger Order { get; }

        // ECDSA_verify: 1 valid, 0 invalid, -1 error (a malformed signature); only 1 accepts.
        public bool OpenSslVerify(byte[] digest, byte[] sig)
        {
            bool ok = ECDSA_verify(0, digest, digest.Length, sig, sig.Length, _ecKey) == 1;
            ERR_clear_error();
            return ok;
        }

        public void Dispose()
        {
            EC_KEY_free(_ecKey);
            Table.Dispose();
            Key.Dispose();
        }
    }

#pragma warning disable SYSLIB1054, CA5392 // the OpenSSL peer: plain libcrypto calls
    [DllImport(LibCrypto)]
    private static extern IntPtr d2i_EC_PUBKEY(IntPtr a, ref IntPtr pp, long length);

    [DllImport(LibCrypto)]
    private static extern int ECDSA_verify(int type, byte[] digest, int digestLength, byte[] sig, int sigLength, IntPtr ecKey);

    [DllImport(LibCrypto)]
    private static extern void EC_KEY_free(IntPtr ecKey);

    [DllImport(LibCrypto)]
    private static extern void ERR_clear_error();
#pragma warning restore SYSLIB1054, CA5392
}
