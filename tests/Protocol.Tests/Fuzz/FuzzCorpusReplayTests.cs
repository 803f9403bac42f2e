using NUnit.Framework;
using OfflinePki.Fuzz;
using OfflinePki.Orders;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Fuzz;

/// <summary>
/// Replays every committed fuzz input (the seed corpus fuzz/corpus/TARGET and the regression inputs fuzz/crashes/TARGET,
/// each a crash or hang once found and since fixed) through the same target code afl-fuzz runs: none may throw.
/// </summary>
[TestFixture]
public sealed class FuzzCorpusReplayTests
{
    public static IEnumerable<string> Targets() => FuzzTarget.All.Select(t => t.Name);

    [TestCaseSource(nameof(Targets))]
    public void Corpus_and_regression_inputs_replay_without_unexpected_exceptions(string name)
    {
        var target = FuzzTarget.Find(name)!;
        var files = new[] { "corpus", "crashes" }
            .Select(kind => Path.Combine(TestPki.RepoRoot, "fuzz", kind, name))
            .Where(Directory.Exists)
            .SelectMany(d => Directory.GetFiles(d, "*", SearchOption.AllDirectories))
            .Where(f => !Path.GetFileName(f).Equals("README.md", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.That(files.Count(f => f.Contains("/corpus/", StringComparison.Ordinal)), Is.GreaterThan(0), $"no seed corpus for {name}");
        foreach (var file in files)
        {
            var data = File.ReadAllBytes(file);
            var watch = System.Diagnostics.Stopwatch.StartNew();
            Assert.DoesNotThrow(() => target.Run(data), file);
            Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)), $"{file} took {watch.Elapsed} (a hang)");
        }
    }

    [Test]
    public void Order_with_a_malformed_signer_info_is_refused_as_malformed()
    {
        var files = Directory.GetFiles(Path.Combine(TestPki.RepoRoot, "fuzz", "crashes", "order-cms"), "malformed-signer-*.p7");
        Assert.That(files, Is.Not.Empty);
        var verifier = new ProductionOrderVerifier(TestPki.Default.Root, null, TimeProvider.System);
        foreach (var file in files)
        {
            var data = File.ReadAllBytes(file);
            var ex = Assert.Throws<OrderRejectedException>(() => verifier.VerifyOrigin(data), file)!;
            Assert.That(ex.Fault, Is.EqualTo(OrderFault.Malformed), file);
            Assert.That(ex.Message, Does.Contain("does not decode"), file);
        }
    }
}
