using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using NUnit.Framework;
using OfflinePki.Asn1;
using OfflinePki.Keys;

namespace OfflinePki.Tests.Resilience;

/// <summary>
/// Issue 16 findings 5 and 6: one signature gets one verdict on every path (the runtime's verifier behind the strict
/// DER gate, the precomputed-table verifier), and the table's native EC_GROUPs are released on dispose.
/// </summary>
public class SignatureVerdictTests
{
    /// <summary>A DER signature whose r has its top bit set, re-encoded as a negative INTEGER (the 00 sign octet dropped).</summary>
    internal static (byte[] Data, byte[] Negative) NegativeR(ECDsa key, HashAlgorithmName hash)
    {
        for (int i = 0; ; i++)
        {
            byte[] data = BitConverter.GetBytes(i);
            byte[] sig = key.SignData(data, hash, DSASignatureFormat.Rfc3279DerSequence);
            // 30 L 02 Lr [00 r...] 02 Ls s... (short lengths for P-256)
            if (sig[1] < 0x80 && sig[3] == 33 && sig[4] == 0)
            {
                byte[] neg = [0x30, (byte)(sig[1] - 1), 0x02, 32, .. sig.AsSpan(5)];
                return (data, neg);
            }
        }
    }

    private static X509Certificate2 SelfSigned(ECDsa key) =>
        new CertificateRequest("CN=verdict", key, HashAlgorithmName.SHA256).CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));

    [Test]
    public void A_negative_r_is_refused_by_the_runtime_path_of_SignatureCheckKey()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var cert = SelfSigned(key);
        var (data, negative) = NegativeR(key, HashAlgorithmName.SHA256);
        using var check = SignatureCheckKey.FromCertificate(cert);
        Assert.That(check.HasTable, Is.False, "the first checks go through the runtime");
        Assert.That(check.VerifyX509Signature(Oids.EcdsaWithSha256, data, negative), Is.False, "certificate signature, runtime path");
        Assert.That(check.VerifySigningKeySignature(data, negative), Is.False, "checkpoint signature");
    }

    [Test]
    public void A_negative_r_is_refused_by_the_table_path_too()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var cert = SelfSigned(key);
        var (data, negative) = NegativeR(key, HashAlgorithmName.SHA256);
        using var check = SignatureCheckKey.FromCertificate(cert, tableNow: true);
        Assert.That(check.HasTable, Is.True);
        Assert.That(check.VerifyX509Signature(Oids.EcdsaWithSha256, data, negative), Is.False);
    }

    [Test]
    public void A_disposed_table_verifier_refuses_use()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        var verifier = FixedKeyEcdsaVerifier.TryCreate(key)!;
        byte[] sig = key.SignData("x"u8, HashAlgorithmName.SHA384, DSASignatureFormat.Rfc3279DerSequence);
        Assert.That(verifier.Verify("x"u8, HashAlgorithmName.SHA384, sig), Is.True);
        ((IDisposable)(object)verifier).Dispose();
        ((IDisposable)(object)verifier).Dispose(); // idempotent
        Assert.Throws<ObjectDisposedException>(() => verifier.Verify("x"u8, HashAlgorithmName.SHA384, sig));
    }

    [Test]
    public void SignatureCheckKey_dispose_releases_its_table()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var cert = SelfSigned(key);
        byte[] tbs = "tbs"u8.ToArray();
        byte[] sig = key.SignData(tbs, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        var check = SignatureCheckKey.FromCertificate(cert, tableNow: true);
        Assert.That(check.VerifyX509Signature(Oids.EcdsaWithSha256, tbs, sig), Is.True);
        check.Dispose();
        Assert.Throws<ObjectDisposedException>(() => check.VerifyX509Signature(Oids.EcdsaWithSha256, tbs, sig));
    }

    [Test]
    public void Concurrent_verify_and_dispose_either_verifies_or_throws_ObjectDisposedException()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        byte[] data = "concurrent"u8.ToArray();
        byte[] sig = key.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        for (int round = 0; round < 20; round++)
        {
            var verifier = FixedKeyEcdsaVerifier.TryCreate(key)!;
            int verified = 0, refused = 0;
            using var go = new Barrier(5);
            var workers = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
            {
                go.SignalAndWait();
                for (int i = 0; i < 50; i++)
                {
                    try
                    {
                        Assert.That(verifier.Verify(data, HashAlgorithmName.SHA256, sig), Is.True);
                        Interlocked.Increment(ref verified);
                    }
                    catch (ObjectDisposedException)
                    {
                        Interlocked.Increment(ref refused);
                    }
                }
            })).ToArray();
            go.SignalAndWait();
            Thread.Sleep(round % 3);
            ((IDisposable)(object)verifier).Dispose();
            Task.WaitAll(workers);
            Assert.That(verified + refused, Is.EqualTo(200));
        }
    }
}
