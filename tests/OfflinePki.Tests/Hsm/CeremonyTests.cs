using NUnit.Framework;
using OfflinePki.Keys;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Hsm;

/// <summary>ops/ceremony/ceremony.sh run as an operator would, then checked with openssl and pkcs11-tool.</summary>
public class CeremonyTests
{
    [Test]
    public void The_ceremony_makes_tokens_certificates_and_a_signed_record_without_secrets()
    {
        string work = Path.Combine(Path.GetTempPath(), "offlinepki-tests", "ceremony-" + Guid.NewGuid().ToString("N")[..8]);
        Tool.Run("bash", [Path.Combine(TestPki.RepoRoot, "ops/ceremony/ceremony.sh"), work, "--env", "staging", "--operator", "test-operator", "--factory", "F7"],
            timeout: TimeSpan.FromMinutes(2)).EnsureSuccess("ceremony.sh");

        string record = File.ReadAllText(Path.Combine(work, "ceremony-record.txt"));
        Assert.That(record, Does.Contain("operator: test-operator").And.Contain("environment: staging"));
        foreach (var k in new[] { "root-ca", "issuing-ca-F7", "journal-signer-F7", "ocsp-F7", "mirror-receipt" })
        {
            Assert.That(record, Does.Match($"key {k} .*spki-sha256=[0-9a-f]{{64}}"));
        }

        foreach (var pinFile in Directory.GetFiles(Path.Combine(work, "pins")))
        {
            Assert.That(record, Does.Not.Contain(File.ReadAllText(pinFile).Trim()), "no PIN in the record");
        }

        string pub = Path.Combine(work, "root.pub.pem");
        Tool.OpenSsl("x509", "-in", Path.Combine(work, "certs/root-ca.crt"), "-pubkey", "-noout", "-out", pub).EnsureSuccess("pubkey");
        Tool.OpenSsl("dgst", "-sha384", "-verify", pub, "-signature", Path.Combine(work, "ceremony-record.txt.sig"), Path.Combine(work, "ceremony-record.txt"))
            .EnsureSuccess("record signature");
        Tool.OpenSsl("verify", "-CAfile", Path.Combine(work, "certs/root-ca.crt"), "-untrusted", Path.Combine(work, "certs/issuing-ca-F7.crt"),
            Path.Combine(work, "certs/ocsp-F7.crt")).EnsureSuccess("chain");

        // The issuing CA is in both the factory and the mirror token; the certificates mark the environment.
        var env = new Dictionary<string, string> { ["SOFTHSM2_CONF"] = Path.Combine(work, "softhsm2.conf") };
        string objects = Tool.Run("pkcs11-tool", ["--module", "/usr/lib/softhsm/libsofthsm2.so", "--token-label", "mirror", "--list-objects", "--type", "pubkey"], env: env).EnsureSuccess("list").StdOut;
        Assert.That(objects, Does.Contain("issuing-ca-F7").And.Contain("ocsp-F7"));
        var root = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(Path.Combine(work, "certs/root-ca.crt"));
        Assert.That(PkiEnvironment.Check("R", "E", "staging", root), Is.Null);
        Assert.That(PkiEnvironment.Check("R", "E", "production", root), Does.Contain("belongs to the 'staging' environment"));

        // A second ceremony over the same token store is refused.
        var again = Tool.Run("bash", [Path.Combine(TestPki.RepoRoot, "ops/ceremony/ceremony.sh"), work, "--env", "staging", "--operator", "x"]);
        Assert.That(again.ExitCode, Is.Not.EqualTo(0));
        Assert.That(again.StdErr, Does.Contain("refusing to run a second ceremony"));
        Directory.Delete(work, recursive: true);
    }
}
