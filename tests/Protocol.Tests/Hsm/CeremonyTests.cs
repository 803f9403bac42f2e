using NUnit.Framework;
using OfflinePki.Keys;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Hsm;

/// <summary>
/// ops/ceremony/ceremony.sh (the <c>factoryca ceremony</c> verb over Pkcs11Interop) run as an operator would, then checked
/// with openssl and pkcs11-tool; /proc/*/cmdline is sampled while it runs and holds no PIN.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class CeremonyTests
{
    private static readonly Dictionary<string, string> FactoryCa = new() { ["OFFLINEPKI_FACTORYCA"] = Path.Combine(AppContext.BaseDirectory, "FactoryCa.dll") };

    [Test]
    public void The_ceremony_makes_tokens_certificates_and_a_signed_record_without_secrets()
    {
        string work = Path.Combine(Path.GetTempPath(), "offlinepki-tests", "ceremony-" + Guid.NewGuid().ToString("N")[..8]);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var run = Task.Run(() => Tool.Run("bash", [Path.Combine(TestPki.RepoRoot, "ops/ceremony/ceremony.sh"), work, "--env", "staging", "--operator", "test-operator", "--factory", "F7"],
            env: FactoryCa, timeout: TimeSpan.FromMinutes(2)));
        while (!run.IsCompleted)
        {
            SampleCommandLines(seen);
        }

        run.Result.EnsureSuccess("ceremony.sh");
        Assert.That(seen, Has.Some.Contains("ceremony").And.Some.Contains("FactoryCa.dll"), "the sampler saw the ceremony process");
        string[] pins = Directory.GetFiles(Path.Combine(work, "pins")).Select(f => File.ReadAllText(f).Trim()).ToArray();
        Assert.That(pins, Has.Length.EqualTo(6));
        foreach (string pin in pins)
        {
            Assert.That(seen, Has.None.Contains(pin), "no user or SO PIN on any process's command line");
        }

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

        string privateObjects = Tool.Run("pkcs11-tool", ["--module", "/usr/lib/softhsm/libsofthsm2.so", "--token-label", "factory-F7", "--list-objects", "--type", "pubkey"], env: env).EnsureSuccess("list").StdOut;
        Assert.That(privateObjects, Does.Contain("issuing-ca").And.Contain("journal-signer"));
        Tool.OpenSsl("req", "-in", Path.Combine(work, "certs/journal-signer-F7.csr"), "-verify", "-noout").EnsureSuccess("CSR signed in the token");

        // A second ceremony over the same token store is refused.
        var again = Tool.Run("bash", [Path.Combine(TestPki.RepoRoot, "ops/ceremony/ceremony.sh"), work, "--env", "staging", "--operator", "x"], env: FactoryCa);
        Assert.That(again.ExitCode, Is.Not.EqualTo(0));
        Assert.That(again.StdErr, Does.Contain("refusing to run a second ceremony"));
        Directory.Delete(work, recursive: true);
    }

    [Test]
    public void Bad_ceremony_arguments_are_refused_and_change_nothing()
    {
        string work = Path.Combine(Path.GetTempPath(), "offlinepki-tests", "ceremony-bad-" + Guid.NewGuid().ToString("N")[..8]);
        var bad = Tool.Run("bash", [Path.Combine(TestPki.RepoRoot, "ops/ceremony/ceremony.sh"), work, "--env", "prod", "--operator", "x"], env: FactoryCa);
        Assert.That(bad.ExitCode, Is.EqualTo(2));
        Assert.That(bad.StdErr, Does.Contain("--env must be dev, test, staging or production"));
        Assert.That(Directory.Exists(Path.Combine(work, "pins")), Is.False);
        var badFactory = Tool.Run("bash", [Path.Combine(TestPki.RepoRoot, "ops/ceremony/ceremony.sh"), work, "--env", "test", "--operator", "x", "--factory", "F/1"], env: FactoryCa);
        Assert.That(badFactory.ExitCode, Is.EqualTo(2));
        Assert.That(badFactory.StdErr, Does.Contain("--factory must be given at least once, each 1-32 of [A-Za-z0-9_-]"));
    }

    [Test]
    public void The_token_subverbs_refuse_bad_input_and_an_existing_token()
    {
        string dll = FactoryCa["OFFLINEPKI_FACTORYCA"];
        string pin = SoftHsm.PinFile(SoftHsm.Pin);
        var env = SoftHsm.Env;
        var badId = Tool.Run("dotnet", [dll, "ceremony", "generate-key", "--module", SoftHsm.Module, "--token", SoftHsm.FactoryToken, "--pin-file", pin, "--label", "x", "--id", "zz"], env: env);
        Assert.That(badId.ExitCode, Is.EqualTo(2));
        Assert.That(badId.StdErr, Does.Contain("--id 'zz' is not hex"));
        var noPin = Tool.Run("dotnet", [dll, "ceremony", "generate-key", "--module", SoftHsm.Module, "--token", SoftHsm.FactoryToken, "--pin-file", "/nonexistent.pin", "--label", "x", "--id", "01"], env: env);
        Assert.That(noPin.ExitCode, Is.Not.EqualTo(0));
        Assert.That(noPin.StdErr, Does.Contain("/nonexistent.pin"));
        var again = Tool.Run("dotnet", [dll, "ceremony", "init-token", "--module", SoftHsm.Module, "--token", SoftHsm.FactoryToken, "--pin-file", pin, "--so-pin-file", pin], env: env);
        Assert.That(again.ExitCode, Is.EqualTo(1));
        Assert.That(again.StdErr, Does.Contain($"a token labelled '{SoftHsm.FactoryToken}' exists already; refusing to initialise it again"));
        var duplicate = Tool.Run("dotnet", [dll, "ceremony", "generate-key", "--module", SoftHsm.Module, "--token", SoftHsm.FactoryToken, "--pin-file", pin, "--label", "issuing-ca", "--id", "77"], env: env);
        Assert.That(duplicate.ExitCode, Is.EqualTo(1));
        Assert.That(duplicate.StdErr, Does.Contain("already holds a private key with that label").And.Not.Contain(SoftHsm.Pin));
    }

    /// <summary>Adds the command line of every process now running (NUL-separated arguments joined by spaces).</summary>
    private static void SampleCommandLines(HashSet<string> seen)
    {
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!char.IsAsciiDigit(Path.GetFileName(dir)[0]))
            {
                continue;
            }

            try
            {
                string cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (cmdline.Length > 0)
                {
                    seen.Add(cmdline);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // The process ended between the listing and the read.
            }
        }
    }
}
