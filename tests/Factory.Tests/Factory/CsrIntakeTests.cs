using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;
using OfflinePki.Enrollment;
using OfflinePki.Tests.Support;
using OfflinePki.Factory;

namespace OfflinePki.Tests.Factory;

/// <summary>RFC 7030 §4.2.1 body decoding and PKCS#10 checks, with CSRs made by openssl.</summary>
public class CsrIntakeTests
{
    private static readonly CsrIntake Intake = new(new Regex("^[A-Za-z0-9-]{4,64}$", RegexOptions.None, TimeSpan.FromMilliseconds(100)));

    private static EnrollmentRejectedException Refused(byte[] body) =>
        Assert.Throws<EnrollmentRejectedException>(() => Intake.Validate(CsrIntake.DecodeBody(body)))!;

    [Test]
    public void P256_and_P384_CSRs_with_a_device_serial_pass()
    {
        var p256 = Intake.Validate(CsrIntake.DecodeBody(Peers.Base64Body(Peers.P256Csr("DEV-0001"))));
        Assert.That(p256.DeviceId, Is.EqualTo("DEV-0001"));
        Assert.That(p256.KeyDescription, Is.EqualTo("P-256"));
        Assert.That(p256.Sha256, Has.Length.EqualTo(32));

        var p384 = Intake.Validate(CsrIntake.DecodeBody(Peers.Base64Body(
            Peers.Csr("/CN=x/serialNumber=DEV-0384", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"))));
        Assert.That(p384.KeyDescription, Is.EqualTo("P-384"));
    }

    [Test]
    public void RSA_2048_passes_and_PEM_armour_is_accepted()
    {
        var der = Peers.Csr("/serialNumber=DEV-RSA2/CN=x", "rsa:2048");
        string pem = PemEncodingHelper("CERTIFICATE REQUEST", der);
        var ok = Intake.Validate(CsrIntake.DecodeBody(Encoding.ASCII.GetBytes(pem)));
        Assert.That(ok.KeyDescription, Is.EqualTo("RSA-2048"));
    }

    [Test]
    public void RSA_1024_is_refused_naming_the_allowed_keys()
    {
        var ex = Refused(Peers.Base64Body(Peers.Csr("/serialNumber=DEV-0002/CN=x", "rsa:1024")));
        Assert.That(ex.Code, Is.EqualTo(EnrollmentError.KeyNotAllowed));
        Assert.That(ex.Message, Is.EqualTo("RSA-1024 key refused: allowed keys are P-256, P-384, RSA >= 2048"));
    }

    [TestCase("ed25519", "Ed25519")]
    [TestCase("ec:P-521", "P-521")]
    public void Unsupported_keys_are_refused(string key, string name)
    {
        string[] args = key.StartsWith("ec:", StringComparison.Ordinal) ? ["ec", "-pkeyopt", "ec_paramgen_curve:" + key[3..]] : [key];
        var ex = Refused(Peers.Base64Body(Peers.Csr("/serialNumber=DEV-0003/CN=x", args)));
        Assert.That(ex.Code, Is.EqualTo(EnrollmentError.KeyNotAllowed));
        Assert.That(ex.Message, Does.StartWith(name + " key refused"));
    }

    [Test]
    public void A_flipped_signature_byte_fails_proof_of_possession()
    {
        var der = Peers.P256Csr("DEV-0004");
        der[^5] ^= 0x01; // inside the ECDSA signature's last INTEGER
        var ex = Refused(Peers.Base64Body(der));
        Assert.That(ex.Code, Is.EqualTo(EnrollmentError.ProofOfPossessionFailed));
        Assert.That(ex.Message, Is.EqualTo("CSR signature does not verify (proof of possession failed)"));
    }

    [Test]
    public void A_P256_point_off_the_curve_is_a_malformed_key_not_a_bad_signature()
    {
        var der = Peers.P256Csr("DEV-0041");
        int at = der.AsSpan().IndexOf(new byte[] { 0x03, 0x42, 0x00, 0x04 }) + 4; // subjectPublicKey BIT STRING, uncompressed point
        der[at + 63] ^= 0x01; // last byte of Y: the point leaves the curve
        var ex = Refused(Peers.Base64Body(der));
        Assert.That(ex.Code, Is.EqualTo(EnrollmentError.MalformedCsr));
        Assert.That(ex.Message, Is.EqualTo("CSR P-256 public key cannot be decoded (invalid point or modulus)"));
    }

    [Test]
    public void The_direct_EC_check_and_the_runtime_loader_agree_on_the_key()
    {
        var der = Peers.P256Csr("DEV-0042");
        var ok = Intake.Validate(der);
        var loaded = System.Security.Cryptography.X509Certificates.CertificateRequest.LoadSigningRequest(
            der, System.Security.Cryptography.HashAlgorithmName.SHA256);
        Assert.That(ok.SubjectPublicKeyInfo, Is.EqualTo(loaded.PublicKey.ExportSubjectPublicKeyInfo()));
    }

    [Test]
    public void A_compressed_point_goes_to_the_runtime_loader_which_refuses_it_as_malformed()
    {
        string key = Peers.NewPath(".key"), compressed = Peers.NewPath(".key"), csr = Peers.NewPath(".der");
        Tool.OpenSsl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key).EnsureSuccess("ecparam");
        Tool.OpenSsl("pkey", "-in", key, "-ec_conv_form", "compressed", "-out", compressed).EnsureSuccess("pkey");
        Tool.OpenSsl("req", "-new", "-key", compressed, "-subj", "/serialNumber=DEV-0043/CN=x", "-outform", "DER", "-out", csr).EnsureSuccess("req");
        var der = File.ReadAllBytes(csr);
        Assert.That(der.AsSpan().IndexOf(new byte[] { 0x03, 0x22, 0x00 }), Is.GreaterThan(0), "openssl wrote a compressed point");
        Assert.That(Tool.OpenSsl("req", "-inform", "DER", "-in", csr, "-noout", "-verify").ExitCode, Is.Zero, "openssl accepts it");

        // RFC 5480 §2.2: uncompressed points MUST be supported, compressed ones MAY; .NET's importer refuses them.
        var ex = Refused(Peers.Base64Body(der));
        Assert.That(ex.Code, Is.EqualTo(EnrollmentError.MalformedCsr));
        Assert.That(ex.Message, Does.StartWith("CSR P-256 public key cannot be decoded"));
    }

    [Test]
    public void A_tampered_subject_fails_proof_of_possession()
    {
        var der = Peers.P256Csr("DEV-0005");
        int at = der.AsSpan().IndexOf("DEV-0005"u8);
        der[at + 7] = (byte)'6';
        Assert.That(Refused(Peers.Base64Body(der)).Code, Is.EqualTo(EnrollmentError.ProofOfPossessionFailed));
    }

    [Test]
    public void Malformed_base64_is_refused()
    {
        var ex = Refused("MIIB***not base64***"u8.ToArray());
        Assert.That(ex.Code, Is.EqualTo(EnrollmentError.MalformedBody));
        Assert.That(ex.Message, Does.Contain("base64"));
        Assert.That(Refused([]).Code, Is.EqualTo(EnrollmentError.MalformedBody));
        Assert.That(Refused([0x30, 0x82, 0xFF, 0x00]).Code, Is.EqualTo(EnrollmentError.MalformedBody), "raw DER instead of base64");
    }

    [Test]
    public void Malformed_DER_is_refused()
    {
        var der = Peers.P256Csr("DEV-0007");
        var ex = Refused(Peers.Base64Body(der[..(der.Length - 10)]));
        Assert.That(ex.Code, Is.EqualTo(EnrollmentError.MalformedCsr));
        Assert.That(Refused(Peers.Base64Body([.. der, 0x00])).Code, Is.EqualTo(EnrollmentError.MalformedCsr), "trailing byte");
        Assert.That(Refused(Peers.Base64Body("hello world"u8.ToArray())).Code, Is.EqualTo(EnrollmentError.MalformedCsr));
    }

    [Test]
    public void Device_serial_must_be_present_and_match_the_pattern()
    {
        var none = Refused(Peers.Base64Body(Peers.Csr("/CN=no-serial", "ec", "-pkeyopt", "ec_paramgen_curve:P-256")));
        Assert.That(none.Code, Is.EqualTo(EnrollmentError.DeviceIdMissing));
        Assert.That(none.Message, Does.Contain("serialNumber (2.5.4.5)"));

        var bad = Refused(Peers.Base64Body(Peers.P256Csr("AB")));
        Assert.That(bad.Code, Is.EqualTo(EnrollmentError.DeviceIdInvalid));
        Assert.That(bad.Message, Does.Contain("FactoryCa:Profile:DeviceIdPattern"));
    }

    [Test]
    public void Requested_extensions_are_accepted_but_not_carried_over()
    {
        var der = Peers.Csr("/serialNumber=DEV-0008/CN=x", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign", "-addext", "subjectAltName=DNS:evil.example");
        var ok = Intake.Validate(der);
        Assert.That(ok.DeviceId, Is.EqualTo("DEV-0008"));
        // ValidatedCsr carries only the key and device ID; the issuer builds extensions from the profile alone.
        Assert.That(typeof(ValidatedCsr).GetProperties().Select(p => p.Name),
            Is.EquivalentTo(new[] { "Der", "Sha256", "SubjectPublicKeyInfo", "KeyDescription", "DeviceId", "OperatorId" }));
    }

    [Test]
    public void An_RSA_PSS_signed_CSR_verifies()
    {
        var der = Peers.Csr("/serialNumber=DEV-PSS1/CN=x", "rsa:2048", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32");
        Assert.That(Intake.Validate(der).KeyDescription, Is.EqualTo("RSA-2048"));
    }

    private static string PemEncodingHelper(string label, byte[] der) =>
        new string(System.Security.Cryptography.PemEncoding.Write(label, der));
}
