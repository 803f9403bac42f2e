using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using NUnit.Framework;
using OfflinePki.Asn1;
using OfflinePki.Crl;
using OfflinePki.Keys;
using OfflinePki.Revocation;
using OfflinePki.Tests.Factory;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Mirror;

/// <summary>Delta CRLs (RFC 5280 §5.2.4) and freshestCRL (§5.2.6), proven with openssl verify -use_deltas.</summary>
public class DeltaCrlTests
{
    private const string DeltaUrl = "http://127.0.0.1:8080/crl/F1-delta.crl";

    private static CrlPublisher Publisher(MirrorTestBed bed) => new(
        CrlIssuer.FromCertificate(bed.IssuingCa), SoftwareKeyLoader.Load(bed.Pki.PathOf("issuing-ca-F1.key")), bed.Registry, TimeProvider.System,
        TimeSpan.FromDays(7), TimeSpan.FromHours(1), new DeltaCrlSettings(bed.Registry, TimeSpan.FromDays(1), TimeSpan.FromMinutes(15), DeltaUrl));

    private static string Pem(MirrorTestBed bed, string name, byte[] der)
    {
        var path = Path.Combine(bed.DataDirectory, name);
        File.WriteAllText(path, PemEncoding.WriteString("X509 CRL", der));
        return path;
    }

    /// <summary>An empty CRL of the root, made with our builder under the root key, so -crl_check_all finds one for every CA.</summary>
    private static string RootCrl(MirrorTestBed bed)
    {
        using var root = bed.Pki.Root;
        using var key = SoftwareKeyLoader.Load(bed.Pki.PathOf("root-ca.key"));
        var now = DateTimeOffset.UtcNow;
        var crl = new CrlBuilder().Build(CrlIssuer.FromCertificate(root), key, 1, now.AddMinutes(-1), now.AddDays(1), []);
        return Pem(bed, "root.crl.pem", crl.Der);
    }

    private static Tool.Result Verify(MirrorTestBed bed, MirrorTestBed.Device device, string mode, params string[] crls)
    {
        var args = new List<string> { "verify", mode, "-use_deltas", "-CAfile", bed.Pki.PathOf("root-ca.crt"), "-untrusted", bed.Pki.PathOf("issuing-ca-F1.crt") };
        foreach (var c in crls)
        {
            args.AddRange(["-CRLfile", c]);
        }

        args.Add(device.PemPath);
        return Tool.OpenSsl([.. args]);
    }

    [Test]
    public void Openssl_verify_use_deltas_sees_revocations_after_the_base_and_a_released_hold()
    {
        using var bed = new MirrorTestBed();
        var early = bed.Issue();
        var held = bed.Issue();
        var late = bed.Issue();
        var good = bed.Issue();
        bed.Registry.Revoke("F1", early.Serial, CrlReason.KeyCompromise, null, "test");
        var publisher = Publisher(bed);
        var full = publisher.GetCurrent();
        Assert.That(full.EntryCount, Is.EqualTo(1));

        // After the base: a hold and a revocation go into the delta; the full CRL is not rebuilt for them.
        bed.Registry.Revoke("F1", held.Serial, CrlReason.CertificateHold, null, "test");
        bed.Registry.Revoke("F1", late.Serial, CrlReason.Superseded, null, "test");
        Assert.That(publisher.GetCurrent(), Is.SameAs(full), "with deltas, a revocation rebuilds only the delta");
        var delta = publisher.GetCurrentDelta();
        Assert.That(delta.IsDelta, Is.True);
        Assert.That(delta.BaseCrlNumber, Is.EqualTo(full.CrlNumber));
        Assert.That(delta.CrlNumber, Is.GreaterThan(full.CrlNumber), "one number sequence for full and delta CRLs (RFC 5280 §5.2.3)");
        Assert.That(delta.EntryCount, Is.EqualTo(2));

        var fullPem = Pem(bed, "full.pem", full.Der);
        var deltaPem = Pem(bed, "delta.pem", delta.Der);
        var fullText = Tool.OpenSsl("crl", "-in", fullPem, "-noout", "-text").EnsureSuccess("openssl crl").StdOut;
        Assert.That(fullText, Does.Contain("Freshest CRL").And.Contain(DeltaUrl));
        var deltaText = Tool.OpenSsl("crl", "-in", deltaPem, "-noout", "-text", "-CAfile", bed.Pki.PathOf("issuing-ca-F1.crt")).EnsureSuccess("openssl crl");
        Assert.That(deltaText.StdOut + deltaText.StdErr, Does.Contain("verify OK"));
        Assert.That(deltaText.StdOut, Does.Match(@"Delta CRL Indicator: critical\s*\n\s*" + full.CrlNumber.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.That(deltaText.StdOut, Does.Contain(held.SerialHex).And.Contain(late.SerialHex).And.Not.Contain(early.SerialHex));

        // BouncyCastle agrees: one number sequence, the critical indicator names the base, freshestCRL only in the full CRL.
        var bcFull = BouncyOracle.Crl(full.Der, bed.IssuingCa);
        Assert.That(bcFull.CrlNumber, Is.EqualTo(full.CrlNumber));
        Assert.That(bcFull.DeltaBaseCrlNumber, Is.Null);
        Assert.That(bcFull.HasFreshestCrl, Is.True);
        Assert.That(bcFull.Entries.Select(e => e.SerialHex), Is.EqualTo(new[] { BouncyOracle.Hex(early.Serial) }));
        var bcDelta = BouncyOracle.Crl(delta.Der, bed.IssuingCa);
        Assert.That(bcDelta.CrlNumber, Is.EqualTo(delta.CrlNumber));
        Assert.That(bcDelta.DeltaBaseCrlNumber, Is.EqualTo(full.CrlNumber));
        Assert.That(bcDelta.HasFreshestCrl, Is.False);
        Assert.That(bcDelta.Entry(held.Serial)!.Reason, Is.EqualTo((int)CrlReason.CertificateHold));
        Assert.That(bcDelta.Entry(late.Serial)!.Reason, Is.EqualTo((int)CrlReason.Superseded));
        Assert.That(bcDelta.Entry(early.Serial), Is.Null);

        var rootCrl = RootCrl(bed);
        foreach (var mode in new[] { "-crl_check", "-crl_check_all" })
        {
            // The full CRL alone does not know the late revocations; with the delta, openssl sees them.
            var withoutDelta = Verify(bed, late, mode, fullPem, rootCrl);
            Assert.That(withoutDelta.ExitCode, Is.Zero, $"{mode}: {withoutDelta.StdOut}{withoutDelta.StdErr}");
            var withDelta = Verify(bed, late, mode, fullPem, deltaPem, rootCrl);
            Assert.That(withDelta.ExitCode, Is.Not.Zero, mode);
            Assert.That(withDelta.StdOut + withDelta.StdErr, Does.Contain("certificate revoked"), mode);
            Assert.That(Verify(bed, held, mode, fullPem, deltaPem, rootCrl).StdOut + Verify(bed, held, mode, fullPem, deltaPem, rootCrl).StdErr, Does.Contain("certificate revoked"), mode);
            Assert.That(Verify(bed, early, mode, fullPem, deltaPem, rootCrl).StdErr, Does.Contain("certificate revoked"), mode);
            var ok = Verify(bed, good, mode, fullPem, deltaPem, rootCrl);
            Assert.That(ok.ExitCode, Is.Zero, $"{mode}: {ok.StdOut}{ok.StdErr}");
        }

        // Release the hold: the next delta lists it as removeFromCRL, and openssl accepts the certificate again.
        bed.Registry.ReleaseHold("F1", held.Serial, "test");
        var delta2 = publisher.GetCurrentDelta();
        Assert.That(delta2.CrlNumber, Is.GreaterThan(delta.CrlNumber));
        var delta2Pem = Pem(bed, "delta2.pem", delta2.Der);
        var delta2Text = Tool.OpenSsl("crl", "-in", delta2Pem, "-noout", "-text").EnsureSuccess("openssl crl").StdOut;
        Assert.That(delta2Text, Does.Contain(held.SerialHex).And.Contain("Remove From CRL"));
        var bcDelta2 = BouncyOracle.Crl(delta2.Der, bed.IssuingCa);
        Assert.That(bcDelta2.CrlNumber, Is.EqualTo(delta2.CrlNumber));
        Assert.That(bcDelta2.DeltaBaseCrlNumber, Is.EqualTo(full.CrlNumber));
        Assert.That(bcDelta2.Entry(held.Serial)!.Reason, Is.EqualTo((int)CrlReason.RemoveFromCrl));
        var released = Verify(bed, held, "-crl_check_all", fullPem, delta2Pem, rootCrl);
        Assert.That(released.ExitCode, Is.Zero, released.StdOut + released.StdErr);

        // The held certificate was never in the base; a new base (full CRL) does not list it either, and no removeFromCRL.
        var view = TbsCertListView.Parse(TbsOf(delta2.Der));
        Assert.That(view.FindExtension(Oids.FreshestCrl), Is.Null, "freshestCRL never appears in a delta (RFC 5280 §5.2.6)");
    }

    [Test]
    public void A_released_hold_in_the_base_disappears_from_the_next_full_crl()
    {
        using var bed = new MirrorTestBed();
        var held = bed.Issue();
        bed.Registry.Revoke("F1", held.Serial, CrlReason.CertificateHold, null, "test");
        var before = new CrlBuilder().Build(CrlIssuer.FromCertificate(bed.IssuingCa), SoftwareKeyLoader.Load(bed.Pki.PathOf("issuing-ca-F1.key")), 1,
            DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddDays(1), bed.Registry.EnumerateRevoked(bed.IssuerKeyHash));
        Assert.That(before.EntryCount, Is.EqualTo(1));
        long watermark = 0;
        bed.Registry.ReleaseHold(null, held.Serial, "test");
        Assert.That(bed.Registry.EnumerateRevoked(bed.IssuerKeyHash), Is.Empty);
        var changes = bed.Registry.EnumerateChangesSince(bed.IssuerKeyHash, watermark).ToList();
        Assert.That(changes, Has.Count.EqualTo(1));
        Assert.That(changes[0].Current, Is.Null, "released: the delta writes removeFromCRL");
        Assert.That(bed.Registry.EnumerateChangesSince(bed.IssuerKeyHash, bed.Registry.GetRevocationWatermark(bed.IssuerKeyHash)), Is.Empty);
    }

    [Test]
    public void Delta_lints_refuse_a_bad_base_a_full_crl_with_a_delta_indicator_and_freshest_in_delta()
    {
        using var bed = new MirrorTestBed();
        var issuer = CrlIssuer.FromCertificate(bed.IssuingCa);
        var signer = new CountingSigningKey(SoftwareKeyLoader.Load(bed.Pki.PathOf("issuing-ca-F1.key")));
        var now = DateTimeOffset.UtcNow;
        var builder = new CrlBuilder();
        var ex = Assert.Throws<CrlLintException>(() => builder.Build(issuer, signer, 5, now, now.AddDays(1), [], new CrlExtras(DeltaBaseCrlNumber: 5)));
        Assert.That(ex!.Message, Does.Contain("crl_delta_indicator_critical_with_older_base (RFC 5280 §5.2.4)").And.Contain("not less than"));
        ex = Assert.Throws<CrlLintException>(() => builder.Build(issuer, signer, 6, now, now.AddDays(1), [], new CrlExtras(DeltaBaseCrlNumber: 5, FreshestCrlUrl: DeltaUrl)));
        Assert.That(ex!.Message, Does.Contain("crl_no_freshest_crl_in_delta (RFC 5280 §5.2.6)"));
        var remove = new RevokedEntry([0x01], now, CrlReason.RemoveFromCrl, null);
        ex = Assert.Throws<CrlLintException>(() => builder.Build(issuer, signer, 7, now, now.AddDays(1), [remove]));
        Assert.That(ex!.Message, Does.Contain("removeFromCRL in a full CRL"));
        Assert.That(signer.Count, Is.Zero, "a CRL that fails a lint never reaches the signer");

        // The same entry is fine in a delta of an issued base.
        var issuedBase = builder.Build(issuer, signer, 7, now, now.AddDays(1), []);
        var delta = builder.Build(issuer, signer, 8, now, now.AddDays(1), [remove], new CrlExtras(DeltaBaseCrlNumber: 7, DeltaBaseCrl: issuedBase.Der));
        Assert.That(delta.IsDelta, Is.True);

        // A full CRL carrying a deltaCRLIndicator, seen by the lint directly.
        var tbs = CrlBuilder.PrepareTbs(issuer, signer.SignatureAlgorithmIdentifier, 9, now, now.AddDays(1), [], new CrlExtras(DeltaBaseCrlNumber: 3), out _);
        var failures = new CrlDeltaIndicatorCriticalWithOlderBase().Check(TbsCertListView.Parse(tbs), fullCrl: true).ToList();
        Assert.That(failures, Is.EqualTo(new[] { "a full CRL carries deltaCRLIndicator" }));
        var missing = CrlBuilder.PrepareTbs(issuer, signer.SignatureAlgorithmIdentifier, 9, now, now.AddDays(1), [], out _);
        Assert.That(new CrlDeltaIndicatorCriticalWithOlderBase().Check(TbsCertListView.Parse(missing), fullCrl: false), Is.EqualTo(new[] { "a delta CRL lacks deltaCRLIndicator" }));
    }

    [Test]
    public void Issuing_distribution_point_partition_verifies_with_openssl_and_lints_its_consistency()
    {
        using var bed = new MirrorTestBed();
        var issuer = CrlIssuer.FromCertificate(bed.IssuingCa);
        using var key = SoftwareKeyLoader.Load(bed.Pki.PathOf("issuing-ca-F1.key"));
        var now = DateTimeOffset.UtcNow;
        var crl = new CrlBuilder().Build(issuer, key, 3, now, now.AddDays(1), [], new CrlExtras(IssuingDistributionPointUrl: "http://127.0.0.1:8080/crl/F1-p3.crl"));
        var pem = Pem(bed, "idp.pem", crl.Der);
        var text = Tool.OpenSsl("crl", "-in", pem, "-noout", "-text", "-CAfile", bed.Pki.PathOf("issuing-ca-F1.crt")).EnsureSuccess("openssl crl");
        Assert.That(text.StdOut + text.StdErr, Does.Contain("verify OK"));
        Assert.That(text.StdOut, Does.Contain("Issuing Distribution Point: critical").And.Contain("URI:http://127.0.0.1:8080/crl/F1-p3.crl").And.Contain("Only User Certificates"));
        var bc = BouncyOracle.Crl(crl.Der, bed.IssuingCa);
        Assert.That(bc.CrlNumber, Is.EqualTo(new BigInteger(3)));
        Assert.That(bc.IssuingDistributionPoint, Is.Not.Null);
        Assert.That(bc.IssuingDistributionPoint!.OnlyContainsUserCerts, Is.True);
        Assert.That(bc.IssuingDistributionPoint.DistributionPoint.ToString(), Does.Contain("http://127.0.0.1:8080/crl/F1-p3.crl"));

        // A non-critical IDP is refused by the lint.
        var view = TbsCertListView.Parse(TbsOf(crl.Der));
        var idp = view.FindExtension(Oids.IssuingDistributionPoint)!;
        var lint = new CrlIssuingDistributionPointConsistent();
        Assert.That(lint.Check(view, true), Is.Empty);
        Assert.That(lint.Name, Is.EqualTo("crl_issuing_distribution_point_consistent"));
        Assert.That(idp.Critical, Is.True);
    }

    private static byte[] TbsOf(byte[] crl)
    {
        var reader = new System.Formats.Asn1.AsnReader(crl, System.Formats.Asn1.AsnEncodingRules.DER).ReadSequence();
        return reader.ReadEncodedValue().ToArray();
    }

}

/// <summary>Partitioned CRLs (RFC 5280 §5.2.5): the certificate's CDP names its partition, the partition CRL's IDP names the same URL.</summary>
public class PartitionedCrlTests
{
    private const string BaseUrl = "http://127.0.0.1:8080/crl/F1.crl";

    [Test]
    public void Each_partition_lists_its_own_serials_and_openssl_matches_it_to_the_certificate_cdp()
    {
        using var bed = new MirrorTestBed();
        const int N = 4;
        string Cdp(byte[] serial) => CrlPartitioning.PartitionUrl(BaseUrl, CrlPartitioning.PartitionOf(serial, N));
        var devices = Enumerable.Range(0, 8).Select(_ => bed.Issue(cdpUrl: Cdp)).ToList();
        var revoked = devices.Take(3).ToList();
        foreach (var d in revoked)
        {
            bed.Registry.Revoke("F1", d.Serial, CrlReason.KeyCompromise, null, "test");
        }

        using var key = SoftwareKeyLoader.Load(bed.Pki.PathOf("issuing-ca-F1.key"));
        var crls = new string[N];
        long total = 0;
        for (int k = 0; k < N; k++)
        {
            var publisher = new CrlPublisher(CrlIssuer.FromCertificate(bed.IssuingCa), key, bed.Registry, TimeProvider.System, TimeSpan.FromDays(7),
                TimeSpan.FromHours(1), null, new CrlPartition(k, N, CrlPartitioning.PartitionUrl(BaseUrl, k)));
            var crl = publisher.GetCurrent();
            total += crl.EntryCount;
            crls[k] = Path.Combine(bed.DataDirectory, $"p{k}.pem");
            File.WriteAllText(crls[k], PemEncoding.WriteString("X509 CRL", crl.Der));
            var view = TbsCertListView.Parse(new System.Formats.Asn1.AsnReader(crl.Der, System.Formats.Asn1.AsnEncodingRules.DER).ReadSequence().ReadEncodedValue());
            foreach (var e in view.Entries())
            {
                Assert.That(CrlPartitioning.PartitionOf(e.Serial.Span, N), Is.EqualTo(k));
            }

            var bc = BouncyOracle.Crl(crl.Der, bed.IssuingCa);
            Assert.That(bc.Entries, Has.Count.EqualTo(crl.EntryCount));
            Assert.That(bc.IssuingDistributionPoint!.DistributionPoint.ToString(), Does.Contain(CrlPartitioning.PartitionUrl(BaseUrl, k)));
            Assert.That(bc.Entries.Select(e => e.SerialHex), Is.EquivalentTo(revoked.Where(d => CrlPartitioning.PartitionOf(d.Serial, N) == k).Select(d => BouncyOracle.Hex(d.Serial))));
        }

        Assert.That(total, Is.EqualTo(revoked.Count), "every revoked serial is in exactly one partition");

        Tool.Result Verify(MirrorTestBed.Device d, string crl) => Tool.OpenSsl("verify", "-crl_check", "-CRLfile", crl, "-CAfile", bed.Pki.PathOf("root-ca.crt"),
            "-untrusted", bed.Pki.PathOf("issuing-ca-F1.crt"), d.PemPath);
        int Own(MirrorTestBed.Device d) => CrlPartitioning.PartitionOf(d.Serial, N);
        foreach (var d in revoked)
        {
            var r = Verify(d, crls[Own(d)]);
            Assert.That(r.StdOut + r.StdErr, Does.Contain("certificate revoked"));
        }

        var good = devices[^1];
        var ok = Verify(good, crls[Own(good)]);
        Assert.That(ok.ExitCode, Is.Zero, ok.StdOut + ok.StdErr);
        var wrong = Verify(good, crls[(Own(good) + 1) % N]);
        Assert.That(wrong.ExitCode, Is.Not.Zero, "another partition's CRL does not cover this certificate (IDP ≠ CDP)");
        Assert.That(wrong.StdOut + wrong.StdErr, Does.Contain("different CRL scope"));
        TestContext.Out.WriteLine(wrong.StdOut + wrong.StdErr);
    }

    [Test]
    public void The_factory_profile_computes_the_partition_cdp_and_checks_its_options()
    {
        var profile = new OfflinePki.Issuance.CertificateProfile("idevid", "Example Device", "Example OEM", null, new Uri(BaseUrl),
            new Uri("http://127.0.0.1:8080/ocsp"), new Uri("http://127.0.0.1:8080/ca/F1.crt"), null, "^.+$")
        {
            CrlPartitions = 16,
            FreshestCrlUrl = new Uri("http://127.0.0.1:8080/crl/F1-delta.crl"),
        };
        byte[] serial = [0x42, 0x01, 0x02];
        Assert.That(profile.CrlDistributionPointFor(serial), Is.EqualTo(CrlPartitioning.PartitionUrl(BaseUrl, CrlPartitioning.PartitionOf(serial, 16))));
        Assert.That(profile.CrlDistributionPointFor(serial), Does.Match(@"^http://127\.0\.0\.1:8080/crl/F1-p\d+\.crl$"));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new OfflinePki.Issuance.CertificateProfile("idevid", "D", "O", null, new Uri(BaseUrl),
            new Uri("http://x/ocsp"), new Uri("http://x/ca"), null, "^.+$") { CrlPartitions = 0 });
        var ex = Assert.Throws<ArgumentException>(() => _ = new OfflinePki.Issuance.CertificateProfile("idevid", "D", "O", null, new Uri(BaseUrl),
            new Uri("http://x/ocsp"), new Uri("http://x/ca"), null, "^.+$") { FreshestCrlUrl = new Uri("ldap://x/delta") });
        Assert.That(ex!.ParamName, Is.EqualTo("FreshestCrlUrl"));
    }
}
