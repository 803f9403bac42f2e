using NUnit.Framework;
using OfflinePki.Asn1;
using OfflinePki.Registry;
using OfflinePki.Revocation;

namespace OfflinePki.Tests.Mirror;

public class MirrorRegistryTests
{
    [Test]
    public void Revoke_records_durably_and_is_idempotent()
    {
        using var bed = new MirrorTestBed();
        var dev = bed.Issue();
        long before = bed.Registry.RevocationVersion;
        Assert.That(bed.Registry.GetStatus(bed.IssuerKeyHash, dev.Serial).State, Is.EqualTo(RegistryCertificateState.Good));

        var first = bed.Registry.Revoke("F1", dev.Serial, CrlReason.KeyCompromise, DateTimeOffset.UtcNow.AddHours(-2), "test");
        Assert.That(first.Outcome, Is.EqualTo(RevokeOutcome.Revoked));
        Assert.That(first.DeviceId, Is.EqualTo(dev.DeviceId));
        Assert.That(bed.Registry.RevocationVersion, Is.GreaterThan(before));

        // A second registry instance over the same file (another process) sees it, and revoking again is a no-op.
        using var other = new MirrorRegistry(bed.Registry.DatabasePath, TimeProvider.System);
        var status = other.GetStatus(bed.IssuerKeyHash, dev.Serial);
        Assert.That(status.State, Is.EqualTo(RegistryCertificateState.Revoked));
        Assert.That(status.Revocation!.Reason, Is.EqualTo(CrlReason.KeyCompromise));
        long after = other.RevocationVersion;
        var second = other.Revoke(null, dev.Serial, CrlReason.Superseded, null, "test");
        Assert.That(second.Outcome, Is.EqualTo(RevokeOutcome.AlreadyRevoked));
        Assert.That(second.Entry.Reason, Is.EqualTo(CrlReason.KeyCompromise));
        Assert.That(other.RevocationVersion, Is.EqualTo(after));
    }

    [Test]
    public void A_new_registry_uses_16_KiB_pages_and_an_existing_file_keeps_its_own()
    {
        string dir = Path.Combine(Path.GetTempPath(), "offlinepki-pagesize-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            string fresh = Path.Combine(dir, "new.sqlite"), old = Path.Combine(dir, "old.sqlite");
            using (new MirrorRegistry(fresh, TimeProvider.System))
            {
            }

            Assert.That(PageSize(fresh), Is.EqualTo(16384));

            // A registry created by an earlier version (SQLite's default 4 KiB pages, already in WAL mode) opens unchanged.
            using (var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={old};Pooling=False"))
            {
                c.Open();
                using var cmd = c.CreateCommand();
                cmd.CommandText = "PRAGMA page_size=4096; PRAGMA journal_mode=WAL; CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;";
                cmd.ExecuteNonQuery();
            }

            using (var registry = new MirrorRegistry(old, TimeProvider.System))
            {
                Assert.That(registry.RegistryVersion, Is.GreaterThanOrEqualTo(0));
            }

            Assert.That(PageSize(old), Is.EqualTo(4096));
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }

        static long PageSize(string path)
        {
            using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False");
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "PRAGMA page_size;";
            return (long)cmd.ExecuteScalar()!;
        }
    }

    [Test]
    public void Revoke_of_an_unknown_serial_fails_clearly_and_changes_nothing()
    {
        using var bed = new MirrorTestBed();
        bed.Issue();
        long version = bed.Registry.RevocationVersion;
        var ex = Assert.Throws<RevocationException>(() => bed.Registry.Revoke("F1", SerialNumber.FromHex("0badc0de"), CrlReason.KeyCompromise, null, "test"));
        Assert.That(ex!.Message, Does.Contain("0BADC0DE").And.Contain("never issued"));
        var ex2 = Assert.Throws<RevocationException>(() => bed.Registry.Revoke("F9", SerialNumber.FromHex("01"), CrlReason.KeyCompromise, null, "test"));
        Assert.That(ex2!.Message, Does.Contain("factory 'F9' is unknown").And.Contain("F1"));
        Assert.That(bed.Registry.RevocationVersion, Is.EqualTo(version));
        Assert.That(bed.Registry.EnumerateRevoked(bed.IssuerKeyHash), Is.Empty);
    }

    [Test]
    public void Revoke_refuses_remove_from_crl_and_future_invalidity_dates()
    {
        using var bed = new MirrorTestBed();
        var dev = bed.Issue();
        Assert.Throws<ArgumentException>(() => bed.Registry.Revoke("F1", dev.Serial, CrlReason.RemoveFromCrl, null, "test"));
        Assert.Throws<ArgumentException>(() => bed.Registry.Revoke("F1", dev.Serial, CrlReason.KeyCompromise, DateTimeOffset.UtcNow.AddDays(1), "test"));
        Assert.That(CrlReasons.TryParseForRevocation("removeFromCRL", out _, out var error), Is.False);
        Assert.That(error, Does.Contain("keyCompromise"));
        Assert.That(CrlReasons.TryParseForRevocation("KEYCOMPROMISE", out var r, out _) && r == CrlReason.KeyCompromise, Is.True);
    }

    [Test]
    public void Apply_is_atomic_and_duplicates_are_refused()
    {
        using var bed = new MirrorTestBed();
        var dev = bed.Issue();
        long version = bed.Registry.RegistryVersion;
        using (var tx = bed.Registry.BeginApply())
        {
            tx.AddEntry(bed.JournalId, 999, new byte[32], 2, [1, 2, 3]);
            // no commit: rolled back on dispose
        }

        Assert.That(bed.Registry.GetEntryHash(bed.JournalId, 999), Is.Null);
        Assert.That(bed.Registry.RegistryVersion, Is.EqualTo(version));
        using (var tx = bed.Registry.BeginApply())
        {
            var rec = new IssuedCertificateRecord(dev.Serial, bed.IssuerKeyHash, dev.Der, "x", "s", "b", DateTimeOffset.UtcNow, DateTimeOffset.UtcNow, bed.JournalId, 1000);
            var ex = Assert.Throws<InvalidOperationException>(() => tx.AddCertificate(rec));
            Assert.That(ex!.Message, Does.Contain(dev.SerialHex));
        }

        var journal = bed.Registry.GetJournal(bed.JournalId)!;
        Assert.That(journal.HeadSeq, Is.EqualTo(1UL));
        Assert.That(bed.Registry.GetEntryHash(bed.JournalId, 1), Is.EqualTo(journal.HeadHash));
        var summary = bed.Registry.GetSummary().Factories.Single(f => f.JournalIdHex == Convert.ToHexString(bed.JournalId));
        Assert.That((summary.FactoryId, summary.HeadSeq, summary.Certificates, summary.Revoked), Is.EqualTo(("F1", 1UL, 1L, 0L)));
    }

    [Test]
    public void Crl_numbers_are_monotonic_across_reopen()
    {
        using var bed = new MirrorTestBed();
        var a = bed.Registry.NextCrlNumber(bed.IssuerKeyHash);
        var b = bed.Registry.NextCrlNumber(bed.IssuerKeyHash);
        bed.Registry.Dispose();
        using var reopened = new MirrorRegistry(bed.Registry.DatabasePath, TimeProvider.System);
        var c = reopened.NextCrlNumber(bed.IssuerKeyHash);
        Assert.That((int)a, Is.EqualTo(1));
        Assert.That(b, Is.GreaterThan(a));
        Assert.That(c, Is.GreaterThan(b));
    }

    [Test]
    public void Enumeration_streams_revoked_entries_in_serial_order()
    {
        using var bed = new MirrorTestBed();
        var devices = Enumerable.Range(0, 5).Select(_ => bed.Issue()).ToList();
        foreach (var d in devices.Take(4))
        {
            bed.Registry.Revoke(null, d.Serial, CrlReason.Superseded, null, "test");
        }

        var serials = bed.Registry.EnumerateRevoked(bed.IssuerKeyHash).Select(e => Convert.ToHexString(e.Serial)).ToList();
        Assert.That(serials, Has.Count.EqualTo(4));
        Assert.That(serials, Is.Ordered.Using((IComparer<string>)StringComparer.Ordinal));
    }

    [Test]
    public void Several_factories_share_one_registry_and_stay_apart()
    {
        using var bed = new MirrorTestBed();
        var f1 = bed.Issue();
        using var key2 = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var caReq = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=Factory F2 Issuing CA", key2, System.Security.Cryptography.HashAlgorithmName.SHA256);
        caReq.CertificateExtensions.Add(new System.Security.Cryptography.X509Certificates.X509BasicConstraintsExtension(true, true, 0, true));
        using var ca2 = caReq.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        var keyHash2 = IssuerHashes.KeyHash(ca2);
        var journal2 = System.Security.Cryptography.RandomNumberGenerator.GetBytes(16);
        using (var tx = bed.Registry.BeginApply())
        {
            tx.SetJournal(new JournalState(journal2, "F2", ca2.RawData, ca2.RawData, 1, new byte[32]));
            tx.AddCertificate(new IssuedCertificateRecord(f1.Serial, keyHash2, [0x30, 0x00], "DEV-F2", "st", "b", DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddYears(1), journal2, 1));
            tx.Commit();
        }

        var ex = Assert.Throws<RevocationException>(() => bed.Registry.Revoke(null, f1.Serial, CrlReason.KeyCompromise, null, "t"));
        Assert.That(ex!.Message, Does.Contain("more than one issuing CA"));
        long f1Version = bed.Registry.GetRevocationVersion(bed.IssuerKeyHash);
        var r = bed.Registry.Revoke("F2", f1.Serial, CrlReason.KeyCompromise, null, "t");
        Assert.That(bed.Registry.GetRevocationVersion(bed.IssuerKeyHash), Is.EqualTo(f1Version), "F2's revocation leaves F1's CRL alone");
        Assert.That(bed.Registry.GetRevocationVersion(keyHash2), Is.EqualTo(1));
        Assert.That((r.FactoryId, r.DeviceId), Is.EqualTo(("F2", "DEV-F2")));
        Assert.That(bed.Registry.GetStatus(bed.IssuerKeyHash, f1.Serial).State, Is.EqualTo(RegistryCertificateState.Good));
        Assert.That(bed.Registry.GetStatus(keyHash2, f1.Serial).State, Is.EqualTo(RegistryCertificateState.Revoked));
        Assert.That(bed.Registry.EnumerateRevoked(bed.IssuerKeyHash), Is.Empty);
        var factories = bed.Registry.GetSummary().Factories;
        Assert.That(factories.Single(f => f.FactoryId == "F2").Revoked, Is.EqualTo(1));
        Assert.That(factories.Single(f => f.JournalIdHex == Convert.ToHexString(bed.JournalId)).Revoked, Is.Zero);
    }
}
