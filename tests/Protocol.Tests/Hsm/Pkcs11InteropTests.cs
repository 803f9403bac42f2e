using System.Security.Cryptography;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using NUnit.Framework;
using OfflinePki.Keys;
using OfflinePki.Keys.Pkcs11;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Hsm;

/// <summary>
/// The Pkcs11Interop signing stack against SoftHSM2: r‖s to DER, RSA through CKM_SHA*_RSA_PKCS, one module never driven
/// by two stacks, and what SoftHSM2 does with repeated wrong PINs (CKR_PIN_INCORRECT and CKF_USER_PIN_COUNT_LOW, never a lock).
/// </summary>
[NonParallelizable]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class Pkcs11InteropTests
{
    private static readonly byte[] Data = "tbs"u8.ToArray();

    [Test]
    public void Raw_r_and_s_become_a_minimal_DER_Ecdsa_Sig_Value()
    {
        byte[] raw = new byte[64];
        raw[31] = 0x7F;   // r = 0x7F: one octet
        raw[32] = 0x80;   // s has its top bit set: a leading zero octet keeps it positive
        raw[63] = 0x01;
        byte[] der = Pkcs11Key.EcdsaRawToDer(raw);
        Assert.That(der[..5], Is.EqualTo(new byte[] { 0x30, 0x26, 0x02, 0x01, 0x7F }));
        Assert.That(der[5..8], Is.EqualTo(new byte[] { 0x02, 0x21, 0x00 }));
        Assert.Throws<CryptographicException>(() => Pkcs11Key.EcdsaRawToDer(new byte[63]));
        Assert.Throws<CryptographicException>(() => Pkcs11Key.EcdsaRawToDer([]));
    }

    [TestCase(null, "1.2.840.113549.1.1.11")]
    [TestCase("SHA384", "1.2.840.113549.1.1.12")]
    [TestCase("SHA512", "1.2.840.113549.1.1.13")]
    public void An_RSA_key_signs_with_the_configured_hash_and_openssl_verifies(string? hash, string oid)
    {
        string token = SoftHsm.TakeToken();
        string label = "rsa-" + (hash ?? "default");
        string pem = Path.Combine(SoftHsm.Directory, label + ".key");
        using (var rsa = RSA.Create(2048))
        {
            File.WriteAllText(pem, rsa.ExportPkcs8PrivateKeyPem());
        }

        SoftHsm.ImportKey(token, SoftHsm.Pin, pem, label, "7" + (hash?.Length ?? 0));
        var o = new SigningKeyOptions { Pkcs11Uri = $"pkcs11:token={token};object={label};type=private", Module = SoftHsm.Module, PinFile = SoftHsm.PinFile(SoftHsm.Pin), Hash = hash };
        using var key = (Pkcs11Key)SigningKeyLoader.Load("Test:RsaKey", o);
        System.Formats.Asn1.AsnDecoder.ReadSequence(key.SignatureAlgorithmIdentifier, System.Formats.Asn1.AsnEncodingRules.DER, out int off, out int len, out _);
        Assert.That(System.Formats.Asn1.AsnDecoder.ReadObjectIdentifier(key.SignatureAlgorithmIdentifier.AsSpan(off, len), System.Formats.Asn1.AsnEncodingRules.DER, out _), Is.EqualTo(oid));
        byte[] sig = key.Sign(Data);
        string pub = pem + ".pub", dat = pem + ".dat", sigf = pem + ".sig";
        File.WriteAllText(pub, new string(PemEncoding.Write("PUBLIC KEY", key.PublicKey.ExportSubjectPublicKeyInfo())));
        File.WriteAllBytes(dat, Data);
        File.WriteAllBytes(sigf, sig);
        Tool.OpenSsl("dgst", "-" + (hash ?? "SHA256").ToLowerInvariant(), "-verify", pub, "-signature", sigf, dat).EnsureSuccess("openssl dgst -verify");
    }

    [Test]
    public void A_bad_hash_option_is_refused_naming_the_key()
    {
        var o = new SigningKeyOptions { Pkcs11Uri = "pkcs11:token=a;object=b", Module = SoftHsm.Module, PinFile = SoftHsm.PinFile("x"), Hash = "MD5" };
        Assert.That(SigningKeyOptions.Validate("FactoryCa:CrlSigner:Key", o), Has.Some.EqualTo("FactoryCa:CrlSigner:Key:Hash: 'MD5' is not one of SHA256, SHA384, SHA512"));
    }

    [Test]
    public void A_module_driven_by_the_signing_stack_is_refused_to_the_engine_and_back()
    {
        // A copy of the module: a path of its own in this process.
        string dir = Path.Combine(SoftHsm.Directory, "claim-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(dir);
        string module = Path.Combine(dir, "libsofthsm2.so");
        File.Copy(SoftHsm.Module, module);
        string token = SoftHsm.TakeToken();
        string uri = $"pkcs11:token={token};object=signer;type=private";
        using var key = new Pkcs11Key("FactoryCa:IssuingCa:Key", uri, module, () => System.Text.Encoding.UTF8.GetBytes(SoftHsm.Pin));
        var ex = Assert.Throws<SigningKeyUnavailableException>(() =>
            new Pkcs11SigningKey("FactoryCa:Est:ServerKey", uri, module, () => System.Text.Encoding.UTF8.GetBytes(SoftHsm.Pin)));
        Assert.That(ex!.Message, Does.StartWith($"FactoryCa:Est:ServerKey:Module: PKCS#11 module '{module}' is already driven by Pkcs11Interop (signing keys) for FactoryCa:IssuingCa:Key")
            .And.Not.Contain(SoftHsm.Pin));

        // A symbolic link to the same file is the same module.
        string link = Path.Combine(dir, "link.so");
        File.CreateSymbolicLink(link, module);
        Assert.Throws<SigningKeyUnavailableException>(() => Pkcs11ModuleClaims.Claim("X:Key", link, Pkcs11ModuleClaims.EngineStack));

        // The engine's module (the TLS copy) is refused to a signing key.
        _ = new Pkcs11SigningKey("FactoryCa:Est:ServerKey", uri, SoftHsm.TlsModule, () => System.Text.Encoding.UTF8.GetBytes(SoftHsm.Pin));
        var back = Assert.Throws<SigningKeyUnavailableException>(() => new Pkcs11Key("FactoryCa:JournalSigner:Key", uri, SoftHsm.TlsModule, () => System.Text.Encoding.UTF8.GetBytes(SoftHsm.Pin)));
        Assert.That(back!.Message, Does.Contain("is already driven by the OpenSSL pkcs11 engine (TLS keys)"));
        Assert.That(key.Sign(Data), Is.Not.Empty, "the signing key is untouched");
    }

    [Test]
    public void A_factory_config_with_a_TLS_key_and_a_signing_key_on_one_module_does_not_start()
    {
        var ex = Assert.Catch(() =>
        {
            using var app = OfflinePki.FactoryCa.FactoryCaApp.Build(TestPki.Default.PathOf("factoryca.json"), null, o =>
            {
                o.IssuingCa.Key = new OfflinePki.FactoryCa.KeyOptions { Pkcs11Uri = $"pkcs11:token={SoftHsm.FactoryToken};object=issuing-ca;type=private", Module = SoftHsm.Module, PinFile = SoftHsm.PinFile(SoftHsm.Pin) };
                o.Est.ServerKey = new TlsKeyOptions { Pkcs11Uri = $"pkcs11:token={SoftHsm.FactoryToken};object=est-tls;type=private", Module = SoftHsm.Module, PinFile = SoftHsm.PinFile(SoftHsm.Pin) };
            });
        });
        var validation = ex as Microsoft.Extensions.Options.OptionsValidationException ?? ex!.InnerException as Microsoft.Extensions.Options.OptionsValidationException;
        Assert.That(validation, Is.Not.Null, ex!.ToString());
        Assert.That(validation!.Failures, Has.Some.StartsWith($"FactoryCa:Est:ServerKey:Module: PKCS#11 module '{SoftHsm.Module}' is also the module of FactoryCa:IssuingCa:Key"));
        Assert.That(Pkcs11ModuleClaims.HolderOf(SoftHsm.Module), Is.Not.EqualTo(Pkcs11ModuleClaims.EngineStack), "nothing was opened through the engine");
    }

    /// <summary>
    /// The real CKR_PIN_LOCKED path, as far as SoftHSM2 allows: SoftHSM2 2.6 keeps no retry counter. C_Login with a wrong
    /// PIN returns CKR_PIN_INCORRECT every time and sets CKF_USER_PIN_COUNT_LOW (cleared by a good login); it never sets
    /// CKF_USER_PIN_LOCKED and never returns CKR_PIN_LOCKED. This test pins that behaviour through PKCS#11 (so a
    /// SoftHSM2 that starts locking fails it and the lock test can then use the real path), and checks what the key
    /// reports in between: the refused PIN with the token's counter flag, by CKR code and token flags.
    /// </summary>
    [Test]
    public void SoftHSM2_never_locks_a_user_PIN_through_PKCS11_and_the_key_reports_the_count_low_flag()
    {
        string token = SoftHsm.TakeToken();
        Pkcs11Errors.EnsureNativeResolver();
        var factories = new Pkcs11InteropFactories();
        // Its own copy of the module: this test finalises its module, which must not disturb the process's keys.
        string dir = Path.Combine(SoftHsm.Directory, "lock-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(dir);
        string module = Path.Combine(dir, "libsofthsm2.so");
        File.Copy(SoftHsm.Module, module);
        using (var library = factories.Pkcs11LibraryFactory.LoadPkcs11Library(factories, module, AppType.MultiThreaded))
        {
            var slot = library.GetSlotList(SlotsType.WithTokenPresent).Single(s => s.GetTokenInfo().Label == token);
            var results = new List<CKR>();
            for (int i = 0; i < 15; i++)
            {
                using var session = slot.OpenSession(SessionType.ReadOnly);
                try
                {
                    session.Login(CKU.CKU_USER, "wrong-" + i);
                    results.Add(CKR.CKR_OK);
                }
                catch (Pkcs11Exception ex)
                {
                    results.Add(ex.RV);
                }
            }

            Assert.That(results, Is.All.EqualTo(CKR.CKR_PIN_INCORRECT), "SoftHSM2 has no lockout: no CKR_PIN_LOCKED after 15 wrong PINs");
            var flags = slot.GetTokenInfo().TokenFlags;
            Assert.That(flags.UserPinCountLow, Is.True);
            Assert.That(flags.UserPinLocked, Is.False);
        }

        var wrong = new SigningKeyOptions { Pkcs11Uri = $"pkcs11:token={token};object=signer;type=private", Module = SoftHsm.Module, PinFile = SoftHsm.PinFile("wrong-again") };
        var refused = Assert.Throws<SigningKeyUnavailableException>(() => SigningKeyLoader.Load("FactoryCa:OcspResponder:Key", wrong));
        Assert.That(refused!.Message, Does.Contain("PIN refused by the token (CKR_PIN_INCORRECT)").And.Contain("CKF_USER_PIN_COUNT_LOW").And.Not.Contain("wrong-again"));

        // The right PIN still works (no lock), and clears the flag.
        wrong.PinFile = SoftHsm.PinFile(SoftHsm.Pin);
        using var key = (Pkcs11Key)SigningKeyLoader.Load("FactoryCa:OcspResponder:Key", wrong);
        Assert.That(key.Sign(Data), Is.Not.Empty);
        Assert.That(Pkcs11Errors.DescribeLogin(CKR.CKR_PIN_LOCKED), Does.Contain("user PIN locked (CKR_PIN_LOCKED)"));
    }
}
