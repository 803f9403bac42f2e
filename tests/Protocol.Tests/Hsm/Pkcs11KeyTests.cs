using System.Security.Cryptography;
using NUnit.Framework;
using OfflinePki.Keys;
using OfflinePki.Keys.Pkcs11;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Hsm;

/// <summary>The PKCS#11 backend against SoftHSM2: sign, PIN sources, refuse bad config. Fail-closed and recovery: <see cref="EstHsmTests"/>.</summary>
[NonParallelizable]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class Pkcs11KeyTests
{
    private static readonly byte[] Data = "tbs"u8.ToArray();
    private TimeSpan _savedRetry;

    [OneTimeSetUp]
    public void Fast() { _savedRetry = Pkcs11Key.RetryInterval; Pkcs11Key.RetryInterval = TimeSpan.Zero; }

    [OneTimeTearDown]
    public void Restore() => Pkcs11Key.RetryInterval = _savedRetry;

    private static (string Token, string Pin, SigningKeyOptions Options) NewToken()
    {
        string token = SoftHsm.TakeToken();
        string pin = SoftHsm.Pin;
        return (token, pin, new SigningKeyOptions
        {
            Pkcs11Uri = $"pkcs11:token={token};object=signer;type=private",
            Module = SoftHsm.Module,
            PinFile = SoftHsm.PinFile(pin),
        });
    }

    private static bool Verifies(ISigningKey key, byte[] sig)
    {
        using var ec = key.PublicKey.GetECDsaPublicKey()!;
        return ec.VerifyData(Data, sig, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
    }

    [Test]
    public void A_token_key_signs_and_openssl_verifies_it()
    {
        var (_, _, o) = NewToken();
        using var key = (Pkcs11Key)SigningKeyLoader.Load("Test:Key", o);
        byte[] sig = key.Sign(Data);
        Assert.That(Verifies(key, sig), Is.True);

        // A second peer: openssl verifies with the exported public key.
        string pub = SoftHsm.PinFile("x") + ".pub.pem", dat = pub + ".dat", sigf = pub + ".sig";
        File.WriteAllText(pub, new string(PemEncoding.Write("PUBLIC KEY", key.PublicKey.ExportSubjectPublicKeyInfo())));
        File.WriteAllBytes(dat, Data);
        File.WriteAllBytes(sigf, sig);
        Tool.OpenSsl("dgst", "-sha256", "-verify", pub, "-signature", sigf, dat).EnsureSuccess("openssl dgst -verify");
        Assert.That(key.KeyId, Does.StartWith("sha256:"));
    }

    [Test]
    public void The_PIN_from_an_environment_variable_works()
    {
        var (_, pin, o) = NewToken();
        o.PinFile = null;
        o.PinEnvironmentVariable = "OFFLINEPKI_TEST_PIN_" + Guid.NewGuid().ToString("N")[..6];
        Environment.SetEnvironmentVariable(o.PinEnvironmentVariable, pin);
        using var key = (Pkcs11Key)SigningKeyLoader.Load("Test:Key", o);
        Assert.That(Verifies(key, key.Sign(Data)), Is.True);
    }

    [Test]
    public void A_PIN_in_the_URI_is_refused_naming_the_key_and_not_echoing_it()
    {
        var o = new SigningKeyOptions { Pkcs11Uri = "pkcs11:token=x;object=y;pin-value=S3cr3t", Module = SoftHsm.Module, PinFile = "/nonexistent" };
        var errors = SigningKeyOptions.Validate("FactoryCa:IssuingCa:Key", o);
        Assert.That(errors, Has.Some.Contains("FactoryCa:IssuingCa:Key:Pkcs11Uri: must not carry a PIN"));
        Assert.That(string.Join("\n", errors), Does.Not.Contain("S3cr3t"));
        var ex = Assert.Throws<SigningKeyUnavailableException>(() => SigningKeyLoader.Load("FactoryCa:IssuingCa:Key", o));
        Assert.That(ex!.Message, Does.Not.Contain("S3cr3t"));
    }

    [TestCase("", "", "set exactly one of File (software key) or Pkcs11Uri")]
    [TestCase("k.pem", "pkcs11:token=a", "set exactly one of File (software key) or Pkcs11Uri")]
    [TestCase("", "token=a;object=b", "Pkcs11Uri: not an RFC 7512 URI")]
    public void Bad_key_options_are_refused_naming_the_key(string file, string uri, string expected)
    {
        var o = new SigningKeyOptions { File = file, Pkcs11Uri = uri, Module = SoftHsm.Module, PinEnvironmentVariable = "X" };
        Assert.That(SigningKeyOptions.Validate("MirrorCa:Factories:0:OcspResponder:Key", o),
            Has.Some.StartsWith("MirrorCa:Factories:0:OcspResponder:Key").And.Some.Contains(expected));
    }

    [Test]
    public void A_missing_module_or_PIN_source_is_refused_at_validation()
    {
        var o = new SigningKeyOptions { Pkcs11Uri = "pkcs11:token=a;object=b", Module = "/nonexistent/libgone.so" };
        var errors = SigningKeyOptions.Validate("K", o);
        Assert.That(errors, Has.Some.Contains("K:Module: '/nonexistent/libgone.so' does not exist"));
        Assert.That(errors, Has.Some.Contains("K: set exactly one of PinFile or PinEnvironmentVariable"));
    }

    [Test]
    public void A_wrong_PIN_is_a_clear_error_without_the_PIN()
    {
        var (_, _, o) = NewToken();
        o.PinFile = SoftHsm.PinFile("wrong-9876");
        var ex = Assert.Throws<SigningKeyUnavailableException>(() => SigningKeyLoader.Load("FactoryCa:JournalSigner:Key", o));
        Assert.That(ex!.Message, Does.StartWith("FactoryCa:JournalSigner:Key: PKCS#11 key 'pkcs11:token="));
        Assert.That(ex.Message, Does.Contain("PIN refused"));
        Assert.That(ex.Message, Does.Not.Contain("wrong-9876"));
    }

    [Test]
    public void A_missing_token_at_startup_is_a_clear_error()
    {
        var o = new SigningKeyOptions { Pkcs11Uri = "pkcs11:token=no-such-token;object=x;type=private", Module = SoftHsm.Module, PinFile = SoftHsm.PinFile("1") };
        var ex = Assert.Throws<SigningKeyUnavailableException>(() => SigningKeyLoader.Load("K", o));
        Assert.That(ex!.Message, Does.Contain("K: PKCS#11 key 'pkcs11:token=no-such-token;object=x;type=private' unavailable: token 'no-such-token' is not present"));
    }

    [Test]
    public void Concurrent_signers_share_the_key()
    {
        var (_, _, o) = NewToken();
        using var key = (Pkcs11Key)SigningKeyLoader.Load("K", o);
        var sigs = new System.Collections.Concurrent.ConcurrentBag<byte[]>();
        Parallel.For(0, 200, new ParallelOptions { MaxDegreeOfParallelism = 8 }, _ => sigs.Add(key.Sign(Data)));
        Assert.That(sigs.All(s => Verifies(key, s)), Is.True);
    }
}
