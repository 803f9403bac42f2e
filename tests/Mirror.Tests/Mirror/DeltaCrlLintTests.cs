using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using NUnit.Framework;
using OfflinePki.Crl;
using OfflinePki.Keys;
using OfflinePki.Revocation;
using OfflinePki.Tests.Factory;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Mirror;

/// <summary>
/// The delta-CRL lints against the base (RFC 5280 §5.2.4, §5.3.1): each bad delta is refused before signing with a
/// message naming the rule and its section; the deltas the publisher really makes pass them and openssl -crl_check_all.
/// </summary>
public class DeltaCrlLintTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 1, 12, 0, 0, TimeSpan.Zero);

    private sealed class Fixture : IDisposable
    {
        public Fixture()
        {
            Bed = new MirrorTestBed();
            Issuer = CrlIssuer.FromCertificate(Bed.IssuingCa);
            Signer = new CountingSigningKey(SoftwareKeyLoader.Load(Bed.Pki.PathOf("issuing-ca-F1.key")));
        }

        public MirrorTestBed Bed { get; }

        public CrlIssuer Issuer { get; }

        public CountingSigningKey Signer { get; }

        public CrlBuilder Builder { get; } = new();

        public SignedCrl Full(long number, DateTimeOffset thisUpdate, IEnumerable<RevokedEntry> entries, string? idp = null) =>
            Builder.Build(Issuer, Signer, number, thisUpdate, thisUpdate.AddDays(7), entries, new CrlExtras(IssuingDistributionPointUrl: idp));

        public CrlLintException Refused(long number, DateTimeOffset thisUpdate, IEnumerable<RevokedEntry> entries, CrlExtras extras)
        {
            int before = Signer.Count;
            var ex = Assert.Throws<CrlLintException>(() => Builder.Build(Issuer, Signer, number, thisUpdate, thisUpdate.AddDays(1), entries, extras))!;
            Assert.That(Signer.Count, Is.EqualTo(before), "a delta that fails a lint never reaches the signer");
            return ex;
        }

        public void Dispose() => Bed.Dispose();
    }

    private static RevokedEntry Entry(byte serial, DateTimeOffset at, CrlReason reason = CrlReason.KeyCompromise) => new([serial], at, reason, null);

    [Test]
    public void A_delta_must_name_a_complete_crl_the_mirror_issued()
    {
        using var f = new Fixture();
        var full = f.Full(10, T0, [Entry(0x10, T0.AddHours(-1))]);

        // No base given at all.
        var ex = f.Refused(11, T0.AddHours(1), [], new CrlExtras(DeltaBaseCrlNumber: 10));
        Assert.That(ex.Message, Does.Contain("crl_delta_base_is_issued_complete_crl (RFC 5280 §5.2.4)").And.Contain("names no complete CRL this mirror issued"));

        // BaseCRLNumber that is not the issued CRL's number.
        ex = f.Refused(12, T0.AddHours(1), [], new CrlExtras(DeltaBaseCrlNumber: 9, DeltaBaseCrl: full.Der));
        Assert.That(ex.Message, Does.Contain("crl_delta_base_is_issued_complete_crl (RFC 5280 §5.2.4): BaseCRLNumber 9 does not name the issued complete CRL, whose cRLNumber is 10"));

        // A base that is itself a delta.
        var delta = f.Builder.Build(f.Issuer, f.Signer, 13, T0.AddHours(1), T0.AddHours(2), [], new CrlExtras(DeltaBaseCrlNumber: 10, DeltaBaseCrl: full.Der));
        ex = f.Refused(14, T0.AddHours(2), [], new CrlExtras(DeltaBaseCrlNumber: 13, DeltaBaseCrl: delta.Der));
        Assert.That(ex.Message, Does.Contain("the base is itself a delta CRL"));

        // A base newer than the delta (by number, and by thisUpdate).
        var later = f.Full(20, T0.AddHours(5), []);
        ex = f.Refused(15, T0.AddHours(6), [], new CrlExtras(DeltaBaseCrlNumber: 20, DeltaBaseCrl: later.Der));
        Assert.That(ex.Message, Does.Contain("crl_delta_indicator_critical_with_older_base (RFC 5280 §5.2.4)").And.Contain("the base CRL's number 20 is not less than the delta's cRLNumber 15"));
        ex = f.Refused(21, T0.AddHours(4), [], new CrlExtras(DeltaBaseCrlNumber: 20, DeltaBaseCrl: later.Der));
        Assert.That(ex.Message, Does.Contain("crl_delta_base_is_issued_complete_crl (RFC 5280 §5.2.4): the base CRL's thisUpdate").And.Contain("is after the delta's thisUpdate"));

        // Another issuer's complete CRL (the root's) is not a base of the issuing CA's delta.
        using var root = f.Bed.Pki.Root;
        using var rootKey = SoftwareKeyLoader.Load(f.Bed.Pki.PathOf("root-ca.key"));
        var rootCrl = f.Builder.Build(CrlIssuer.FromCertificate(root), rootKey, 30, T0, T0.AddDays(1), []);
        ex = f.Refused(31, T0.AddHours(1), [], new CrlExtras(DeltaBaseCrlNumber: 30, DeltaBaseCrl: rootCrl.Der));
        Assert.That(ex.Message, Does.Contain("another issuer Name").And.Contain("another authorityKeyIdentifier"));

        // Garbage as the base.
        ex = f.Refused(32, T0.AddHours(1), [], new CrlExtras(DeltaBaseCrlNumber: 10, DeltaBaseCrl: [0x30, 0x03, 0x02, 0x01, 0x01]));
        Assert.That(ex.Message, Does.Contain("crl_delta_base_is_issued_complete_crl (RFC 5280 §5.2.4): the base CRL is not a DER CertificateList"));

        // The good case passes.
        var ok = f.Builder.Build(f.Issuer, f.Signer, 33, T0.AddHours(1), T0.AddHours(2), [Entry(0x11, T0.AddMinutes(30))], new CrlExtras(DeltaBaseCrlNumber: 10, DeltaBaseCrl: full.Der));
        Assert.That(ok.IsDelta, Is.True);
    }

    [Test]
    public void A_delta_must_have_the_scope_of_its_base()
    {
        using var f = new Fixture();
        const string P3 = "http://127.0.0.1:8080/crl/F1-p3.crl";
        var partition = f.Full(10, T0, [], idp: P3);
        var whole = f.Full(11, T0, []);

        var ex = f.Refused(12, T0.AddHours(1), [], new CrlExtras(DeltaBaseCrlNumber: 10, DeltaBaseCrl: partition.Der, IssuingDistributionPointUrl: "http://127.0.0.1:8080/crl/F1-p2.crl"));
        Assert.That(ex.Message, Does.Contain("crl_delta_scope_matches_base (RFC 5280 §5.2.4): the delta's issuingDistributionPoint differs from its base CRL's"));
        ex = f.Refused(13, T0.AddHours(1), [], new CrlExtras(DeltaBaseCrlNumber: 10, DeltaBaseCrl: partition.Der));
        Assert.That(ex.Message, Does.Contain("crl_delta_scope_matches_base (RFC 5280 §5.2.4): the base CRL is partitioned"));
        ex = f.Refused(14, T0.AddHours(1), [], new CrlExtras(DeltaBaseCrlNumber: 11, DeltaBaseCrl: whole.Der, IssuingDistributionPointUrl: P3));
        Assert.That(ex.Message, Does.Contain("crl_delta_scope_matches_base (RFC 5280 §5.2.4): the delta carries an issuingDistributionPoint but its base CRL has none"));

        var ok = f.Builder.Build(f.Issuer, f.Signer, 15, T0.AddHours(1), T0.AddHours(2), [], new CrlExtras(DeltaBaseCrlNumber: 10, DeltaBaseCrl: partition.Der, IssuingDistributionPointUrl: P3));
        Assert.That(ok.IsDelta, Is.True);
    }

    [Test]
    public void A_delta_carries_no_entry_older_than_its_base()
    {
        using var f = new Fixture();
        var full = f.Full(10, T0, [Entry(0x10, T0.AddHours(-2)), Entry(0x30, T0.AddHours(-1))]);
        var extras = new CrlExtras(DeltaBaseCrlNumber: 10, DeltaBaseCrl: full.Der);

        // Revoked before the base was built, yet missing from it: the base was not complete, or is not this delta's base.
        var ex = f.Refused(11, T0.AddHours(1), [Entry(0x20, T0.AddMinutes(-10))], extras);
        Assert.That(ex.Message, Does.Contain("crl_delta_no_entry_older_than_base (RFC 5280 §5.2.4): serial 20 changed at").And.Contain("before the base's thisUpdate"));

        // Listed in the base, but the delta's entry is older than the base's.
        ex = f.Refused(12, T0.AddHours(1), [Entry(0x30, T0.AddHours(-3))], extras);
        Assert.That(ex.Message, Does.Contain("crl_delta_no_entry_older_than_base (RFC 5280 §5.2.4): serial 30 has revocationDate").And.Contain("older than the base's entry"));

        // Passes: a change at or after the base's thisUpdate, and the same revocation listed in both (a revocation racing the base).
        var ok = f.Builder.Build(f.Issuer, f.Signer, 13, T0.AddHours(1), T0.AddHours(2), [Entry(0x10, T0.AddHours(-2)), Entry(0x20, T0), Entry(0x40, T0.AddMinutes(5))], extras);
        Assert.That(ok.EntryCount, Is.EqualTo(3));
    }

    [Test]
    public void RemoveFromCrl_appears_only_in_deltas_and_only_for_a_hold()
    {
        using var f = new Fixture();
        var full = f.Full(10, T0, [Entry(0x10, T0.AddHours(-2), CrlReason.CertificateHold), Entry(0x30, T0.AddHours(-1), CrlReason.KeyCompromise)]);
        var extras = new CrlExtras(DeltaBaseCrlNumber: 10, DeltaBaseCrl: full.Der);

        // In a full CRL: refused by the CRL lint.
        var ex = Assert.Throws<CrlLintException>(() => f.Full(11, T0, [Entry(0x10, T0, CrlReason.RemoveFromCrl)]))!;
        Assert.That(ex.Message, Does.Contain("crl_no_remove_from_crl_in_full_crl (RFC 5280 §5.3.1)"));

        // In a delta, releasing a final revocation of the base: refused.
        ex = f.Refused(12, T0.AddHours(1), [Entry(0x30, T0.AddMinutes(1), CrlReason.RemoveFromCrl)], extras);
        Assert.That(ex.Message, Does.Contain("crl_remove_from_crl_only_releases_a_hold (RFC 5280 §5.3.1): serial 30 is removeFromCRL in the delta but the base lists it as keyCompromise"));

        // Releasing the base's hold, and a hold placed and released after the base: fine.
        var ok = f.Builder.Build(f.Issuer, f.Signer, 13, T0.AddHours(1), T0.AddHours(2),
            [Entry(0x10, T0.AddMinutes(1), CrlReason.RemoveFromCrl), Entry(0x20, T0.AddMinutes(2), CrlReason.RemoveFromCrl)], extras);
        Assert.That(ok.EntryCount, Is.EqualTo(2));
        Assert.That(f.Signer.Count, Is.EqualTo(2), "only the base and the good delta were signed");
    }

    [Test]
    public void Every_delta_lint_cites_its_rfc_section()
    {
        Assert.That(DeltaCrlLints.All.Select(l => l.Citation), Has.All.Match(@"^RFC 5280 §5\.(2\.4|3\.1)$"));
        Assert.That(DeltaCrlLints.All.Select(l => l.Name), Is.Unique);
    }

    [Test]
    public void The_publishers_delta_after_a_hold_in_the_base_and_a_bulk_revocation_passes_the_lints_and_openssl_crl_check_all()
    {
        using var bed = new MirrorTestBed();
        var held = bed.Issue(batch: "b-hold");
        var recalled = Enumerable.Range(0, 3).Select(_ => bed.Issue(batch: "b-recall")).ToList();
        var good = bed.Issue(batch: "b-good");
        bed.Registry.Revoke("F1", held.Serial, CrlReason.CertificateHold, null, "test");
        using var key = SoftwareKeyLoader.Load(bed.Pki.PathOf("issuing-ca-F1.key"));
        var publisher = new CrlPublisher(CrlIssuer.FromCertificate(bed.IssuingCa), key, bed.Registry, TimeProvider.System, TimeSpan.FromDays(7),
            TimeSpan.FromHours(1), new DeltaCrlSettings(bed.Registry, TimeSpan.FromDays(1), TimeSpan.FromMinutes(15), "http://127.0.0.1:8080/crl/F1-delta.crl"));
        // (openssl uses a delta only when the base, or the certificate, carries freshestCRL.)
        var full = publisher.GetCurrent();
        bed.Registry.ReleaseHold("F1", held.Serial, "test");
        bed.Registry.RevokeMatching("F1", new RevocationSelector(BatchId: "b-recall"), CrlReason.Superseded, null, "test");
        var delta = publisher.GetCurrentDelta();
        Assert.That(delta.BaseCrlNumber, Is.EqualTo(full.CrlNumber));
        Assert.That(delta.EntryCount, Is.EqualTo(4));

        string Pem(string name, byte[] der)
        {
            var path = Path.Combine(bed.DataDirectory, name);
            File.WriteAllText(path, PemEncoding.WriteString("X509 CRL", der));
            return path;
        }

        using var root = bed.Pki.Root;
        using var rootKey = SoftwareKeyLoader.Load(bed.Pki.PathOf("root-ca.key"));
        var rootCrl = Pem("root.pem", new CrlBuilder().Build(CrlIssuer.FromCertificate(root), rootKey, 1, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(1), []).Der);
        var fullPem = Pem("full.pem", full.Der);
        var deltaPem = Pem("delta.pem", delta.Der);
        Tool.Result Verify(MirrorTestBed.Device d) => Tool.OpenSsl("verify", "-crl_check_all", "-use_deltas", "-CAfile", bed.Pki.PathOf("root-ca.crt"),
            "-untrusted", bed.Pki.PathOf("issuing-ca-F1.crt"), "-CRLfile", fullPem, "-CRLfile", deltaPem, "-CRLfile", rootCrl, d.PemPath);
        var released = Verify(held);
        Assert.That(released.ExitCode, Is.Zero, released.StdOut + released.StdErr);
        var ok = Verify(good);
        Assert.That(ok.ExitCode, Is.Zero, ok.StdOut + ok.StdErr);
        foreach (var d in recalled)
        {
            var r = Verify(d);
            Assert.That(r.StdOut + r.StdErr, Does.Contain("certificate revoked"));
        }
    }
}
