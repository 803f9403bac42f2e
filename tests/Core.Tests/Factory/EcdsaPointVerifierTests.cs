using System.Security.Cryptography;
using NUnit.Framework;
using OfflinePki.Enrollment;

namespace OfflinePki.Tests.Factory;

/// <summary>
/// The CSR proof-of-possession fast path (OpenSSL EC_KEY with a shared curve group) must give exactly the runtime's
/// answer: the same verdict on good, flipped and re-encoded signatures, and the same refusal of a point off the curve.
/// </summary>
public class EcdsaPointVerifierTests
{
    [SetUp]
    public void RequireFastPath() => Assert.That(EcdsaPointVerifier.Available, Is.True, "libcrypto 3 with the EC_KEY calls is on every supported machine");

    [TestCase(256, "SHA256")]
    [TestCase(256, "SHA384")]
    [TestCase(384, "SHA384")]
    [TestCase(384, "SHA256")]
    [TestCase(384, "SHA512")]
    public void Agrees_with_the_runtime_on_good_and_flipped_signatures(int bits, string hashName)
    {
        var hash = new HashAlgorithmName(hashName);
        var rng = new Random(bits + hashName.Length);
        for (int i = 0; i < 40; i++)
        {
            using var key = ECDsa.Create(bits == 256 ? ECCurve.NamedCurves.nistP256 : ECCurve.NamedCurves.nistP384);
            byte[] data = new byte[rng.Next(1, 600)];
            rng.NextBytes(data);
            byte[] sig = key.SignData(data, hash, DSASignatureFormat.Rfc3279DerSequence);
            byte[] point = Point(key);
            if (i % 2 == 1)
            {
                sig[rng.Next(sig.Length)] ^= (byte)(1 << rng.Next(8)); // flipped bit: structure or value
            }

            bool runtime = key.VerifyData(data, sig, hash, DSASignatureFormat.Rfc3279DerSequence);
            Assert.That(EcdsaPointVerifier.TryVerify(bits / 8, point, data, hash, sig), Is.EqualTo(runtime), $"case {i}");
            Assert.That(runtime, Is.EqualTo(i % 2 == 0), $"case {i}: a good signature verifies, a flipped one does not");
        }
    }

    [Test]
    public void A_signature_with_a_non_minimal_integer_encoding_does_not_verify()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        byte[] data = "tbs"u8.ToArray();
        byte[] p1363 = key.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

        // SEQUENCE { INTEGER r, INTEGER s }, each with a redundant leading 0x00 (BER, not DER: RFC 3279 §2.2.3 is DER).
        byte[] r = [0x02, 33, 0x00, .. p1363.AsSpan(0, 32)];
        byte[] s = [0x02, 34, 0x00, 0x00, .. p1363.AsSpan(32, 32)];
        byte[] lax = [0x30, (byte)(r.Length + s.Length), .. r, .. s];
        Assert.That(EcdsaPointVerifier.TryVerify(32, Point(key), data, HashAlgorithmName.SHA256, lax), Is.False);
        Assert.That(key.VerifyData(data, lax, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence), Is.False, "the runtime agrees");
    }

    [Test]
    public void A_point_off_the_curve_or_of_the_wrong_form_is_refused_as_a_bad_key()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        byte[] data = "tbs"u8.ToArray();
        byte[] sig = key.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        byte[] offCurve = Point(key);
        offCurve[^1] ^= 1;
        Assert.Throws<CryptographicException>(() => EcdsaPointVerifier.TryVerify(32, offCurve, data, HashAlgorithmName.SHA256, sig));

        byte[] compressed = Point(key)[..33];
        compressed[0] = 0x02;
        Assert.Throws<CryptographicException>(() => EcdsaPointVerifier.TryVerify(32, compressed, data, HashAlgorithmName.SHA256, sig));

        byte[] p256PointForP384 = Point(key);
        Assert.Throws<CryptographicException>(() => EcdsaPointVerifier.TryVerify(48, p256PointForP384, data, HashAlgorithmName.SHA256, sig));
    }

    [Test]
    public void A_signature_by_another_key_does_not_verify()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        byte[] data = "tbs"u8.ToArray();
        byte[] sig = other.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        Assert.That(EcdsaPointVerifier.TryVerify(32, Point(key), data, HashAlgorithmName.SHA256, sig), Is.False);
    }

    private static byte[] Point(ECDsa key)
    {
        var q = key.ExportParameters(false).Q;
        return [0x04, .. q.X!, .. q.Y!];
    }
}
