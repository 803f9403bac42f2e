using NUnit.Framework;
using NUnit.Framework.Internal;
using OfflinePki.Crl;
using OfflinePki.Keys;
using OfflinePki.Ocsp;
using OfflinePki.Revocation;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Mirror;

/// <summary>The oracle is not vacuous: BouncyOracle refuses a flipped signature bit and the wrong issuer for each kind of object.</summary>
public class BouncyOracleTests
{
    /// <summary>Runs <paramref name="check"/> in an isolated NUnit context and returns its assertion message, or null if it passed.</summary>
    private static string? Failure(Action check)
    {
        using (new TestExecutionContext.IsolatedContext())
        {
            try
            {
                check();
                return null;
            }
            catch (AssertionException ex)
            {
                return ex.Message;
            }
        }
    }

    /// <summary>A copy with the last octet (inside the signature BIT STRING, which ends every signed structure) changed.</summary>
    private static byte[] FlipLastOctet(byte[] der)
    {
        var copy = (byte[])der.Clone();
        copy[^1] ^= 0x01;
        return copy;
    }

    [Test]
    public void A_tampered_or_misattributed_certificate_crl_or_ocsp_response_fails_the_oracle()
    {
        using var bed = new MirrorTestBed();
        var dev = bed.Issue();
        bed.Registry.Revoke("F1", dev.Serial, CrlReason.KeyCompromise, null, "test");
        using var root = bed.Pki.Root;

        Assert.That(Failure(() => BouncyOracle.Certificate(dev.Der, bed.IssuingCa)), Is.Null);
        Assert.That(Failure(() => BouncyOracle.Certificate(FlipLastOctet(dev.Der), bed.IssuingCa)), Does.Contain("does not verify"));
        Assert.That(Failure(() => BouncyOracle.Certificate(dev.Der, root)), Does.Contain("is not the CA"));

        var crl = new CrlPublisher(CrlIssuer.FromCertificate(bed.IssuingCa), SoftwareKeyLoader.Load(bed.Pki.PathOf("issuing-ca-F1.key")), bed.Registry,
            TimeProvider.System, TimeSpan.FromDays(7), TimeSpan.FromHours(1)).GetCurrent();
        Assert.That(Failure(() => BouncyOracle.Crl(crl.Der, bed.IssuingCa)), Is.Null);
        Assert.That(Failure(() => BouncyOracle.Crl(FlipLastOctet(crl.Der), bed.IssuingCa)), Does.Contain("does not verify"));
        Assert.That(Failure(() => BouncyOracle.Crl(crl.Der, root)), Does.Contain("is not the CA"));

        var responder = new OcspResponder(
            [new OcspIssuer("F1", bed.IssuingCa, bed.Pki.Cert("ocsp-F1"), SoftwareKeyLoader.Load(bed.Pki.PathOf("ocsp-F1.key")))],
            bed.Registry, TimeProvider.System, new OcspResponderSettings(TimeSpan.FromHours(1), NeverIssuedPolicy.Revoked, TimeSpan.FromMinutes(1)));
        var request = Path.Combine(bed.DataDirectory, "oracle.req");
        Tool.OpenSsl("ocsp", "-issuer", bed.Pki.PathOf("issuing-ca-F1.crt"), "-cert", dev.PemPath, "-no_nonce", "-reqout", request).EnsureSuccess("openssl ocsp -reqout");
        var answer = responder.Respond(File.ReadAllBytes(request)).Der;
        Assert.That(Failure(() => BouncyOracle.OcspResponse(answer, bed.IssuingCa)), Is.Null);
        Assert.That(Failure(() => BouncyOracle.OcspResponse(FlipLastOctet(answer), bed.IssuingCa)), Does.Contain("does not verify"));
        Assert.That(Failure(() => BouncyOracle.OcspResponse(answer, root)), Does.Contain("issued by the CA").Or.Contain("does not name the CA"));
    }
}
