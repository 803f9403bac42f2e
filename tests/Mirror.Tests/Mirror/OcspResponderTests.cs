using System.Formats.Asn1;
using System.Security.Cryptography;
using NUnit.Framework;
using OfflinePki.Asn1;
using OfflinePki.Keys;
using OfflinePki.Ocsp;
using OfflinePki.Registry;
using OfflinePki.Revocation;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Mirror;

/// <summary>The responder core without HTTP: hand-made requests, policies, lints.</summary>
public class OcspResponderTests
{
    private static OcspResponder Responder(MirrorTestBed bed, NeverIssuedPolicy policy = NeverIssuedPolicy.Revoked, IReadOnlyList<IOcspLint>? lints = null) => new(
        [new OcspIssuer("F1", bed.IssuingCa, bed.Pki.Cert("ocsp-F1"), SoftwareKeyLoader.Load(bed.Pki.PathOf("ocsp-F1.key")))],
        bed.Registry, TimeProvider.System, new OcspResponderSettings(TimeSpan.FromHours(1), policy, TimeSpan.FromMinutes(1)), lints: lints);

    // CertID for the bed's issuing CA with SHA-256.
    private static byte[] Request(MirrorTestBed bed, IEnumerable<byte[]> serials, byte[]? nonceInner = null, HashAlgorithmName? hash = null)
    {
        var h = hash ?? HashAlgorithmName.SHA256;
        var oid = h == HashAlgorithmName.SHA1 ? Oids.Sha1 : Oids.Sha256;
        var w = new AsnWriter(AsnEncodingRules.DER);
        using (w.PushSequence())
        using (w.PushSequence())
        {
            using (w.PushSequence())
            {
                foreach (var serial in serials)
                {
                    using (w.PushSequence())
                    using (w.PushSequence())
                    {
                        using (w.PushSequence())
                        {
                            w.WriteObjectIdentifier(oid);
                            w.WriteNull();
                        }

                        w.WriteOctetString(IssuerHashes.NameHash(bed.IssuingCa, h));
                        w.WriteOctetString(IssuerHashes.KeyHash(bed.IssuingCa, h));
                        w.WriteIntegerUnsigned(serial.AsSpan().TrimStart((byte)0));
                    }
                }
            }

            if (nonceInner is not null)
            {
                using (w.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 2, true)))
                using (w.PushSequence())
                using (w.PushSequence())
                {
                    w.WriteObjectIdentifier(Oids.OcspNonce);
                    var inner = new AsnWriter(AsnEncodingRules.DER);
                    inner.WriteOctetString(nonceInner);
                    w.WriteOctetString(inner.Encode());
                }
            }
        }

        return w.Encode();
    }

    private static string Text(MirrorTestBed bed, byte[] der)
    {
        var path = Path.Combine(bed.DataDirectory, Guid.NewGuid().ToString("N") + ".der");
        File.WriteAllBytes(path, der);
        var r = Tool.OpenSsl("ocsp", "-respin", path, "-resp_text", "-noverify");
        var text = r.StdOut + r.StdErr;

        // BouncyCastle reads the same bytes and must agree with openssl.
        BouncyOracle.OcspAgreesWithOpenSsl(text, der, bed.IssuingCa, bed.Pki.Cert("ocsp-F1"));
        return text;
    }

    [Test]
    public void Sha256_certids_and_several_requests_in_one()
    {
        using var bed = new MirrorTestBed();
        var good = bed.Issue();
        var revoked = bed.Issue();
        bed.Registry.Revoke("F1", revoked.Serial, CrlReason.Superseded, null, "t");
        var nonce = RandomNumberGenerator.GetBytes(32);
        var answer = Responder(bed).Respond(Request(bed, [good.Serial, revoked.Serial, SerialNumber.FromHex("7777")], nonce));
        Assert.That(answer.Status, Is.EqualTo(OcspResponseStatus.Successful));
        Assert.That(answer.HasNonce, Is.True);
        var text = Text(bed, answer.Der);
        Assert.That(text, Does.Contain("Hash Algorithm: sha256"));
        Assert.That(text, Does.Contain("Cert Status: good").And.Contain("Revocation Reason: superseded").And.Contain("certificateHold"));
        Assert.That(text, Does.Contain("OCSP Nonce"));

        // BouncyCastle agrees on the three statuses, the hash of each CertID, and the echoed nonce.
        var bc = BouncyOracle.OcspResponse(answer.Der, bed.IssuingCa, bed.Pki.Cert("ocsp-F1"));
        Assert.That(bc.Responses, Has.Count.EqualTo(3));
        Assert.That(bc.Responses.Select(r => r.HashAlgOid), Has.All.EqualTo(Oids.Sha256));
        Assert.That(bc.For(good.Serial).Status, Is.EqualTo(OracleCertStatus.Good));
        Assert.That(bc.For(revoked.Serial).Status, Is.EqualTo(OracleCertStatus.Revoked));
        Assert.That(bc.For(revoked.Serial).Reason, Is.EqualTo((int)CrlReason.Superseded));
        Assert.That(bc.For(SerialNumber.FromHex("7777")).Reason, Is.EqualTo((int)CrlReason.CertificateHold));
        Assert.That(bc.HasExtendedRevoke, Is.True);
        Assert.That(bc.Nonce, Is.EqualTo(nonce));
        Assert.That(bc.ProducedAt, Is.EqualTo(answer.ProducedAt));
        Assert.That(bc.Responses.Select(r => r.NextUpdate), Has.All.EqualTo(answer.NextUpdate));
    }

    [Test]
    public void Never_issued_policy_unknown_answers_unknown_without_extended_revoke()
    {
        using var bed = new MirrorTestBed();
        var answer = Responder(bed, NeverIssuedPolicy.Unknown).Respond(Request(bed, [SerialNumber.FromHex("0123456789")], hash: HashAlgorithmName.SHA1));
        var text = Text(bed, answer.Der);
        Assert.That(text, Does.Contain("Cert Status: unknown"));
        Assert.That(text, Does.Not.Contain("valid:"));
        var bc = BouncyOracle.OcspResponse(answer.Der, bed.IssuingCa, bed.Pki.Cert("ocsp-F1"));
        Assert.That(bc.For(SerialNumber.FromHex("0123456789")).Status, Is.EqualTo(OracleCertStatus.Unknown));
        Assert.That(bc.For(SerialNumber.FromHex("0123456789")).HashAlgOid, Is.EqualTo(Oids.Sha1));
        Assert.That(bc.HasExtendedRevoke, Is.False);
        Assert.That(bc.Nonce, Is.Null);
    }

    [TestCase(0)]
    [TestCase(33)]
    public void Nonce_outside_1_to_32_octets_is_malformed(int length)
    {
        using var bed = new MirrorTestBed();
        var dev = bed.Issue();
        var answer = Responder(bed).Respond(Request(bed, [dev.Serial], new byte[length]));
        Assert.That(answer.Status, Is.EqualTo(OcspResponseStatus.MalformedRequest));
        Assert.That(answer.Der, Is.EqualTo(OcspResponder.ErrorResponse(OcspResponseStatus.MalformedRequest)));
        Assert.That(BouncyOracle.OcspResponse(answer.Der, bed.IssuingCa).Status, Is.EqualTo(Org.BouncyCastle.Ocsp.OcspRespStatus.MalformedRequest));
    }

    [Test]
    public void Empty_and_truncated_requests_are_malformed()
    {
        using var bed = new MirrorTestBed();
        var responder = Responder(bed);
        var full = Request(bed, [SerialNumber.FromHex("01")]);
        Assert.That(responder.Respond(full.AsMemory(0, full.Length - 3)).Status, Is.EqualTo(OcspResponseStatus.MalformedRequest));
        Assert.That(responder.Respond(Request(bed, [])).Status, Is.EqualTo(OcspResponseStatus.MalformedRequest));
        Assert.That(responder.Respond(ReadOnlyMemory<byte>.Empty).Status, Is.EqualTo(OcspResponseStatus.MalformedRequest));
    }

    [Test]
    public void A_failing_lint_means_internal_error_and_no_signature()
    {
        using var bed = new MirrorTestBed();
        var dev = bed.Issue();
        var answer = Responder(bed, lints: [.. OcspLints.All, new AlwaysFails()]).Respond(Request(bed, [dev.Serial]));
        Assert.That(answer.Status, Is.EqualTo(OcspResponseStatus.InternalError));
        Assert.That(BouncyOracle.OcspResponse(answer.Der, bed.IssuingCa).Status, Is.EqualTo(Org.BouncyCastle.Ocsp.OcspRespStatus.InternalError));
    }

    [Test]
    public void Lints_catch_a_missing_nonce_echo_and_a_bare_never_issued_revocation()
    {
        var now = DateTimeOffset.UtcNow;
        var single = new SingleResponseDraft([0x30, 0x00], OcspCertStatus.Revoked, OcspExtendedRevokeWhenNeverIssuedIsRevoked.NeverIssuedRevocationTime,
            CrlReason.CertificateHold, now, now.AddHours(1), NeverIssued: true);
        var draft = new OcspResponseDraft(new byte[20], now, [single], null, RequestHadNonce: true, ExtendedRevoke: false, now.AddDays(-1), now.AddDays(1));
        var ex = Assert.Throws<OcspLintException>(() => OcspLints.Enforce(OcspLints.All, draft));
        Assert.That(ex!.Message, Does.Contain("RFC 6960 §4.4.1").And.Contain("RFC 6960 §2.2, §4.4.8"));
        var fixedDraft = draft with { NonceExtensionValue = [0x04, 0x01, 0x00], ExtendedRevoke = true };
        Assert.DoesNotThrow(() => OcspLints.Enforce(OcspLints.All, fixedDraft));
        var expired = Assert.Throws<OcspLintException>(() => OcspLints.Enforce(OcspLints.All, fixedDraft with { ResponderNotAfter = now.AddSeconds(-1) }));
        Assert.That(expired!.Message, Does.Contain("renew it"));
    }

    [Test]
    public void A_responder_certificate_from_another_ca_is_refused()
    {
        using var bed = new MirrorTestBed();
        // mirror-sync-server is a TLS certificate from the TLS CA: wrong issuer and no id-kp-OCSPSigning.
        var ex = Assert.Throws<ArgumentException>(() => new OcspIssuer("F1", bed.IssuingCa, bed.Pki.Cert("mirror-sync-server"), SoftwareKeyLoader.Load(bed.Pki.PathOf("mirror-sync-server.key"))));
        Assert.That(ex!.Message, Does.Contain("not by the issuing CA"));
        // The journal signer is issued by the root, not the issuing CA.
        ex = Assert.Throws<ArgumentException>(() => new OcspIssuer("F1", bed.IssuingCa, bed.Pki.Cert("journal-signer-F1"), SoftwareKeyLoader.Load(bed.Pki.PathOf("journal-signer-F1.key"))));
        Assert.That(ex!.Message, Does.Contain("not by the issuing CA"));

        // Right issuer name and EKU, but signed by an impostor key.
        using var impostor = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var responderKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=Fake Responder", responderKey, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new System.Security.Cryptography.X509Certificates.X509EnhancedKeyUsageExtension([new Oid(Oids.OcspSigningEku)], true));
        using var fake = req.Create(bed.IssuingCa.SubjectName, System.Security.Cryptography.X509Certificates.X509SignatureGenerator.CreateForECDsa(impostor),
            DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1), [0x01, 0x02]);
        ex = Assert.Throws<ArgumentException>(() => new OcspIssuer("F1", bed.IssuingCa, fake, new AsymmetricSigningKey(responderKey)));
        Assert.That(ex!.Message, Does.Contain("is not signed by the issuing CA"));
    }

    private sealed class AlwaysFails : IOcspLint
    {
        public string Name => "always_fails";
        public string Citation => "RFC 6960 §0";
        public string? Check(OcspResponseDraft draft) => "test";
    }
}
