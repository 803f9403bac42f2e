using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using NUnit.Framework;
using OfflinePki.FactoryCa;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Factory;

/// <summary>The sample config (as filled by ops/dev-pki.sh) loads and validates; broken configs name the key.</summary>
public class FactoryConfigTests
{
    private static FactoryCaOptions Bind(string path)
    {
        var config = new ConfigurationBuilder().AddJsonFile(path).Build();
        var o = config.GetSection(FactoryCaOptions.SectionName).Get<FactoryCaOptions>()!;
        o.ResolvePaths(Path.GetDirectoryName(path)!);
        return o;
    }

    [Test]
    public void The_sample_config_filled_by_dev_pki_validates()
    {
        var path = TestPki.Default.PathOf("factoryca.json");
        var o = Bind(path);
        var result = new FactoryCaOptionsValidator().Validate(null, o);
        Assert.That(result.Succeeded, Is.True, result.FailureMessage);
        Assert.That(o.Est.ServerCertificate, Is.EqualTo(TestPki.Default.PathOf("est-server.crt")), "relative paths resolve against the config directory");
        Assert.That(o.Profile.ToProfile().Validity, Is.Null);
        Assert.That(o.Stations.Select(s => s.Id), Is.EqualTo(new[] { "station-01", "station-02" }));

        // And the whole host builds from it (without listening).
        Assert.DoesNotThrowAsync(async () => await FactoryCaApp.Build(path).DisposeAsync());
    }

    [Test]
    public void A_broken_config_fails_at_startup_naming_each_key()
    {
        var dir = TestPki.Default.Directory;
        var json = File.ReadAllText(Path.Combine(dir, "factoryca.json"))
            .Replace("\"est-server.crt\"", "\"missing/est-server.crt\"", StringComparison.Ordinal)
            .Replace("\"NoWellDefinedExpiration\"", "\"ten years\"", StringComparison.Ordinal)
            .Replace("\"station-02\", \"CertificateSubjectCn\": \"station-02\"", "\"station-02\", \"CertificateSubjectCn\": \"station-01\"", StringComparison.Ordinal)
            .Replace("https://127.0.0.1:8443", "http://factory:8443", StringComparison.Ordinal)
            .Replace("\"CertificateSubjectCn\": \"station-01\" }", "\"CertificateSubjectCn\": \"station-01\", \"Profiles\": [ \"idevid-gw\" ] }", StringComparison.Ordinal);
        var path = Path.Combine(dir, "factoryca-broken.json");
        File.WriteAllText(path, json);

        var ex = Assert.Throws<OptionsValidationException>(() => FactoryCaApp.Build(path))!;
        var failures = ex.Failures.ToList();
        Assert.That(failures, Has.Member($"FactoryCa:Est:ServerCertificate: file '{Path.Combine(dir, "missing", "est-server.crt")}' not found"));
        Assert.That(failures, Has.Some.StartWith("FactoryCa:Profile:Validity: 'ten years'"));
        Assert.That(failures, Has.Member("FactoryCa:Stations: CertificateSubjectCn 'station-01' is listed 2 times"));
        Assert.That(failures, Has.Some.StartWith("FactoryCa:Est:Listen:"));
        Assert.That(failures, Has.Member("FactoryCa:Stations:0:Profiles: unknown profile 'idevid-gw' (profiles are idevid)"));
    }

    [Test]
    public void The_check_config_verb_reports_errors_and_exits_2()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "FactoryCa.dll");
        var ok = Tool.Run("dotnet", [dll, "check-config", "--config", TestPki.Default.PathOf("factoryca.json")]);
        Assert.That(ok.ExitCode, Is.Zero, ok.StdErr + ok.StdOut);
        Assert.That(ok.StdOut, Does.Contain("config ok"));

        var path = Path.Combine(TestPki.Default.Directory, "factoryca-badurl.json");
        File.WriteAllText(path, File.ReadAllText(TestPki.Default.PathOf("factoryca.json"))
            .Replace("\"OcspUrl\": \"http://127.0.0.1:8080/ocsp\"", "\"OcspUrl\": \"ftp://x/ocsp\"", StringComparison.Ordinal));
        var bad = Tool.Run("dotnet", [dll, "check-config", "--config", path]);
        Assert.That(bad.ExitCode, Is.EqualTo(2));
        Assert.That(bad.StdErr, Does.Contain("config error: FactoryCa:Profile:OcspUrl: 'ftp://x/ocsp' is not an absolute http(s) URL"));

        var missing = Tool.Run("dotnet", [dll, "serve"]);
        Assert.That(missing.ExitCode, Is.Not.Zero, "--config is required");
    }
}
