using NUnit.Framework;
using OfflinePki.Ocsp;

namespace OfflinePki.Tests.Mirror;

/// <summary>
/// Every file in testdata/mirror/ocsp is refused as malformedRequest with the message listed in expected.tsv:
/// a repeated extension (RFC 5280 §4.2) and an unknown critical extension (RFC 6960 §4.1.2) in requestExtensions or
/// singleRequestExtensions. The control request (an unknown non-critical extension beside a nonce) parses.
/// </summary>
public class OcspRequestFixtureTests
{
    private static string Dir => Path.Combine(AppContext.BaseDirectory, "testdata", "mirror", "ocsp");

    public static IEnumerable<TestCaseData> Cases() =>
        File.ReadAllLines(Path.Combine(Dir, "expected.tsv"))
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split('\t'))
            .Select(p => new TestCaseData(p[0], p[1]).SetName("BadOcspRequest_" + p[0]));

    [TestCaseSource(nameof(Cases))]
    public void Parser_refuses(string file, string message)
    {
        var der = File.ReadAllBytes(Path.Combine(Dir, file));
        var ex = Assert.Throws<OcspMalformedRequestException>(() => OcspRequestParser.Parse(der))!;
        Assert.That(ex.Message, Does.Contain(message));
    }

    [Test]
    public void An_unknown_non_critical_extension_is_ignored_and_the_nonce_kept()
    {
        var request = OcspRequestParser.Parse(File.ReadAllBytes(Path.Combine(Dir, "ok-unknown-noncritical.der.good")));
        Assert.That(request.CertIds, Has.Count.EqualTo(1));
        Assert.That(request.NonceExtensionValue, Is.Not.Null);
    }
}
