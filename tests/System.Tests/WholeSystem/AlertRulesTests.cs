using NUnit.Framework;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.WholeSystem;

/// <summary>ops/prometheus/alerts.yml is valid (promtool check rules) and fires as its unit tests say (promtool test rules).</summary>
[TestFixture]
public class AlertRulesTests
{
    private static string Dir => Path.Combine(TestPki.RepoRoot, "ops", "prometheus");

    [Test]
    public void Promtool_check_rules_passes()
    {
        var r = Tool.Run("promtool", ["check", "rules", "alerts.yml"], workingDirectory: Dir);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.StdOut + r.StdErr);
        Assert.That(r.StdOut, Does.Contain("SUCCESS: 9 rules found"));
    }

    [Test]
    public void Promtool_test_rules_passes()
    {
        var r = Tool.Run("promtool", ["test", "rules", "alerts.test.yml"], workingDirectory: Dir);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.StdOut + r.StdErr);
    }
}
