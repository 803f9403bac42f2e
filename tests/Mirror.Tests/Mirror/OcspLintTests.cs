using NUnit.Framework;
using OfflinePki.Ocsp;

namespace OfflinePki.Tests.Mirror;

/// <summary>OCSP lints added for issue 4, each against a draft that breaks exactly its rule.</summary>
public class OcspLintTests
{
    private static OcspResponseDraft Draft(byte[]? nonce)
    {
        var now = DateTimeOffset.UtcNow;
        var single = new SingleResponseDraft([0x30, 0x00], OcspCertStatus.Good, null, null, now, now.AddHours(1), NeverIssued: false);
        return new OcspResponseDraft(new byte[20], now, [single], nonce, nonce is not null, false, now.AddDays(-1), now.AddDays(1));
    }

    [TestCase(0, "0 octets")]
    [TestCase(33, "33 octets")]
    public void A_nonce_outside_rfc8954_lengths_is_refused(int length, string expected)
    {
        var extnValue = new byte[] { 0x04, (byte)length }.Concat(new byte[length]).ToArray();
        var ex = Assert.Throws<OcspLintException>(() => OcspLints.Enforce(OcspLints.All, Draft(extnValue)));
        Assert.That(ex!.Message, Does.Contain("RFC 8954 §2.1").And.Contain(expected));
    }

    [Test]
    public void A_nonce_that_is_not_an_octet_string_is_refused_and_a_good_one_passes()
    {
        var ex = Assert.Throws<OcspLintException>(() => OcspLints.Enforce(OcspLints.All, Draft([0x02, 0x01, 0x01])));
        Assert.That(ex!.Message, Does.Contain("not a DER OCTET STRING"));
        Assert.DoesNotThrow(() => OcspLints.Enforce(OcspLints.All, Draft([0x04, 0x02, 0xAB, 0xCD])));
        Assert.DoesNotThrow(() => OcspLints.Enforce(OcspLints.All, Draft(null)));
    }

    [Test]
    public void Every_lint_names_its_rule_and_cites_an_rfc()
    {
        foreach (var lint in OcspLints.All)
        {
            Assert.That(lint.Name, Does.Match("^ocsp_[a-z0-9_]+$"));
            Assert.That(lint.Citation, Does.StartWith("RFC "));
        }
    }
}
