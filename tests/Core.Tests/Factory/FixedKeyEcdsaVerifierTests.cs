using System.Formats.Asn1;
using System.Numerics;
using System.Security.Cryptography;
using NUnit.Framework;
using OfflinePki.Issuance;
using OfflinePki.Keys;

namespace OfflinePki.Tests.Factory;

/// <summary>
/// The issuer's self-check with a precomputed table for the CA key (SEC 1 §4.1.4 from OpenSSL's EC primitives) must
/// give exactly the runtime's verdict: on good, flipped, malleated, out-of-range, re-encoded and foreign signatures.
/// </summary>
public class FixedKeyEcdsaVerifierTests
{
    private static readonly BigInteger P256Order = BigInteger.Parse("0FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", System.Globalization.NumberStyles.HexNumber);

    [TestCase(256, "SHA256")]
    [TestCase(256, "SHA384")]
    [TestCase(256, "SHA512")]
    [TestCase(384, "SHA384")]
    [TestCase(384, "SHA256")]
    [TestCase(384, "SHA512")]
    public void Agrees_with_the_runtime_on_good_and_flipped_signatures(int bits, string hashName)
    {
        var hash = new HashAlgorithmName(hashName);
        var rng = new Random(bits * 7 + hashName.Length);
        using var key = ECDsa.Create(bits == 256 ? ECCurve.NamedCurves.nistP256 : ECCurve.NamedCurves.nistP384);
        var verifier = FixedKeyEcdsaVerifier.TryCreate(key);
        Assert.That(verifier, Is.Not.Null, "libcrypto 3 is on every supported machine");
        int good = 0;
        for (int i = 0; i < 120; i++)
        {
            byte[] data = new byte[rng.Next(1, 900)];
            rng.NextBytes(data);
            byte[] sig = key.SignData(data, hash, DSASignatureFormat.Rfc3279DerSequence);
            switch (i % 3)
            {
                case 1:
                    sig[rng.Next(sig.Length)] ^= (byte)(1 << rng.Next(8)); // structure or value
                    break;
                case 2:
                    data[rng.Next(data.Length)] ^= (byte)(1 << rng.Next(8)); // the signed bytes
                    break;
            }

            bool runtime = key.VerifyData(data, sig, hash, DSASignatureFormat.Rfc3279DerSequence);
            Assert.That(verifier!.Verify(data, hash, sig), Is.EqualTo(runtime), $"case {i}");
            good += runtime ? 1 : 0;
        }

        Assert.That(good, Is.EqualTo(40), "exactly the unaltered signatures verify");
    }

    [Test]
    public void The_malleated_twin_verifies_and_out_of_range_values_do_not_as_with_the_runtime()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var verifier = FixedKeyEcdsaVerifier.TryCreate(key)!;
        byte[] data = "tbs"u8.ToArray();
        byte[] p1363 = key.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        var r = new BigInteger(p1363.AsSpan(0, 32), isUnsigned: true, isBigEndian: true);
        var s = new BigInteger(p1363.AsSpan(32, 32), isUnsigned: true, isBigEndian: true);

        foreach (var (rr, ss, expected, what) in new[]
        {
            (r, s, true, "the signature"),
            (r, P256Order - s, true, "(r, n - s), which ECDSA also accepts"),
            (r, BigInteger.Zero, false, "s = 0"),
            (BigInteger.Zero, s, false, "r = 0"),
            (r + P256Order, s, false, "r + n"),
            (r, s + P256Order, false, "s + n"),
            (P256Order, s, false, "r = n"),
            (-r, s, false, "negative r"),
        })
        {
            byte[] der = Der(rr, ss);
            bool runtime = key.VerifyData(data, der, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
            Assert.That(runtime, Is.EqualTo(expected), what + " (runtime)");
            Assert.That(verifier.Verify(data, HashAlgorithmName.SHA256, der), Is.EqualTo(expected), what);
        }
    }

    [Test]
    public void A_non_minimal_encoding_trailing_bytes_or_garbage_do_not_verify()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var verifier = FixedKeyEcdsaVerifier.TryCreate(key)!;
        byte[] data = "tbs"u8.ToArray();
        byte[] sig = key.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        byte[] p1363 = key.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        byte[] r = [0x02, 33, 0x00, .. p1363.AsSpan(0, 32)];
        byte[] s = [0x02, 34, 0x00, 0x00, .. p1363.AsSpan(32, 32)];
        byte[] lax = [0x30, (byte)(r.Length + s.Length), .. r, .. s];

        foreach (var (bad, what) in new[]
        {
            (lax, "redundant leading zeros (BER, not DER)"),
            ([.. sig, 0x00], "a byte after the SEQUENCE"),
            ([], "empty"),
            ([0x30, 0x00], "an empty SEQUENCE"),
            (sig[..^1], "truncated"),
        })
        {
            Assert.That(verifier.Verify(data, HashAlgorithmName.SHA256, bad), Is.False, what);
            Assert.That(key.VerifyData(data, bad, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence), Is.False, what + " (runtime)");
        }
    }

    [Test]
    public void A_signature_by_another_key_does_not_verify()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        byte[] data = "tbs"u8.ToArray();
        byte[] sig = other.SignData(data, HashAlgorithmName.SHA384, DSASignatureFormat.Rfc3279DerSequence);
        Assert.That(FixedKeyEcdsaVerifier.TryCreate(key)!.Verify(data, HashAlgorithmName.SHA384, sig), Is.False);
        Assert.That(FixedKeyEcdsaVerifier.TryCreate(other)!.Verify(data, HashAlgorithmName.SHA384, sig), Is.True);
    }

    [Test]
    public void Another_curve_is_left_to_the_runtime()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP521);
        Assert.That(FixedKeyEcdsaVerifier.TryCreate(key), Is.Null);
    }

    [Test]
    public void Concurrent_verifies_share_the_table()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var verifier = FixedKeyEcdsaVerifier.TryCreate(key)!;
        var sigs = Enumerable.Range(0, 64).Select(i => (Data: BitConverter.GetBytes(i), Sig: key.SignData(BitConverter.GetBytes(i), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence))).ToArray();
        int failures = 0;
        Parallel.For(0, 4000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            var (data, sig) = sigs[i % sigs.Length];
            bool flip = i % 5 == 0;
            if (verifier.Verify(flip ? [.. data, 1] : data, HashAlgorithmName.SHA256, sig) == flip)
            {
                Interlocked.Increment(ref failures);
            }
        });
        Assert.That(failures, Is.Zero);
    }

    [Test]
    public void A_key_checking_many_certificate_signatures_switches_to_its_table_with_the_same_verdicts()
    {
        using var ca = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var now = DateTimeOffset.UtcNow;
        using var cert = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=table test CA", ca, HashAlgorithmName.SHA256)
            .CreateSelfSigned(now.AddDays(-1), now.AddDays(1));
        using var key = OfflinePki.Keys.SignatureCheckKey.FromCertificate(cert);
        for (int i = 0; i < 3 * OfflinePki.Keys.SignatureCheckKey.TableAfter; i++)
        {
            byte[] tbs = BitConverter.GetBytes(i);
            byte[] sig = ca.SignData(tbs, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
            bool bad = i % 4 == 3;
            if (bad)
            {
                tbs[0] ^= 1;
            }

            Assert.That(key.VerifyX509Signature(OfflinePki.Asn1.Oids.EcdsaWithSha256, tbs, sig), Is.EqualTo(!bad), $"signature {i}");
        }

        Assert.That(key.HasTable, Is.True, "the key built its table along the way");
    }

    private static byte[] Der(BigInteger r, BigInteger s)
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        using (w.PushSequence())
        {
            w.WriteInteger(r);
            w.WriteInteger(s);
        }

        return w.Encode();
    }
}
