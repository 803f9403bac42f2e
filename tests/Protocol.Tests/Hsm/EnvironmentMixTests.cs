using Microsoft.Extensions.Options;
using NUnit.Framework;
using OfflinePki.FactoryCa;
using OfflinePki.Keys;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Hsm;

/// <summary>Test, staging and production PKIs are kept apart: a daemon refuses a root of another environment.</summary>
public class EnvironmentMixTests
{
    [Test]
    public void A_dev_root_is_refused_by_a_production_check_naming_both_keys()
    {
        string? error = PkiEnvironment.Check("FactoryCa:RootCertificate", "FactoryCa:Environment", "production", TestPki.Default.Root);
        Assert.That(error, Is.EqualTo($"FactoryCa:RootCertificate: '{TestPki.Default.Root.Subject}' belongs to the 'dev' environment, but FactoryCa:Environment is 'production'; test, staging and production PKIs must not be mixed"));
        Assert.That(PkiEnvironment.Check("K", "E", "dev", TestPki.Default.Root), Is.Null);
    }

    [Test]
    public void A_production_factory_config_with_the_dev_PKI_does_not_start()
    {
        var ex = Assert.Catch(() =>
        {
            using var app = FactoryCaApp.Build(TestPki.Default.PathOf("factoryca.json"), null, o => o.Environment = "production");
        });
        var validation = ex as OptionsValidationException ?? ex!.InnerException as OptionsValidationException;
        Assert.That(validation, Is.Not.Null, ex!.ToString());
        Assert.That(validation!.Failures, Has.Some.StartsWith("FactoryCa:RootCertificate:").And.Some.Contains("belongs to the 'dev' environment, but FactoryCa:Environment is 'production'"));
        Assert.That(validation.Failures, Has.Some.StartsWith("FactoryCa:IssuingCa:Certificate:"));
    }
}
