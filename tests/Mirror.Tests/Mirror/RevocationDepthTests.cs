using System.CommandLine;
using Microsoft.Data.Sqlite;
using NUnit.Framework;
using OfflinePki.MirrorCa;
using OfflinePki.Registry;
using OfflinePki.Revocation;

namespace OfflinePki.Tests.Mirror;

/// <summary>Revocation by station window and factory, certificateHold release, batched bulk revocation, the audit log.</summary>
public class RevocationDepthTests
{
    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = MirrorCaCli.Create().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    private static RegistryCertificateState State(MirrorTestBed bed, MirrorTestBed.Device d) => bed.Registry.GetStatus(bed.IssuerKeyHash, d.Serial).State;

    [Test]
    public void Station_window_revokes_only_that_station_s_certificates_issued_in_the_window()
    {
        using var bed = new MirrorTestBed();
        var t0 = new DateTimeOffset(2026, 11, 20, 8, 0, 0, TimeSpan.Zero);
        var before = bed.Issue(station: "st-07", notBefore: t0.AddHours(-3));
        var inside1 = bed.Issue(station: "st-07", notBefore: t0.AddHours(-1));
        var inside2 = bed.Issue(station: "st-07", notBefore: t0);
        var after = bed.Issue(station: "st-07", notBefore: t0.AddHours(2));
        var otherStation = bed.Issue(station: "st-08", notBefore: t0.AddHours(-1));

        var r = Run("revoke", "--config", bed.ConfigPath, "--station", "st-07", "--from", "2026-11-20T06:00:00Z", "--to", "2026-11-20T08:00:00Z",
            "--reason", "keyCompromise", "--actor", "ir-team");
        Assert.That(r.Exit, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("OK revoked 2 certificate(s) of station 'st-07' issued from 2026-11-20T06:00:00Z issued to 2026-11-20T08:00:00Z (2 matched, 0 already revoked)"));
        Assert.That(State(bed, inside1), Is.EqualTo(RegistryCertificateState.Revoked));
        Assert.That(State(bed, inside2), Is.EqualTo(RegistryCertificateState.Revoked));
        Assert.That(State(bed, before), Is.EqualTo(RegistryCertificateState.Good));
        Assert.That(State(bed, after), Is.EqualTo(RegistryCertificateState.Good));
        Assert.That(State(bed, otherStation), Is.EqualTo(RegistryCertificateState.Good));

        var audit = bed.Registry.ReadAudit();
        Assert.That(audit, Has.Count.EqualTo(1));
        Assert.That(audit[0].Actor, Is.EqualTo("ir-team"));
        Assert.That(audit[0].Action, Is.EqualTo("revoke-bulk"));
        Assert.That(audit[0].Detail, Does.Contain("station 'st-07'").And.Contain("revoked=2").And.Contain("reason=keyCompromise"));
    }

    [Test]
    public void Bad_windows_and_selectors_fail_clearly_and_change_nothing()
    {
        using var bed = new MirrorTestBed();
        var d = bed.Issue(station: "st-07");
        long version = bed.Registry.RevocationVersion;

        var badTime = Run("revoke", "--config", bed.ConfigPath, "--station", "st-07", "--from", "yesterday", "--reason", "keyCompromise");
        Assert.That(badTime.Exit, Is.EqualTo(2));
        Assert.That(badTime.Err, Does.Contain("--from 'yesterday' is not an ISO 8601 time"));

        var empty = Run("revoke", "--config", bed.ConfigPath, "--station", "st-07", "--from", "2026-11-20T08:00:00Z", "--to", "2026-11-20T06:00:00Z", "--reason", "keyCompromise");
        Assert.That(empty.Exit, Is.EqualTo(1));
        Assert.That(empty.Err, Does.Contain("the time window is empty"));

        var windowOnly = Run("revoke", "--config", bed.ConfigPath, "--from", "2026-11-20T06:00:00Z", "--reason", "keyCompromise");
        Assert.That(windowOnly.Exit, Is.EqualTo(2));
        Assert.That(windowOnly.Err, Does.Contain("give either --serial, or one or more of --device, --station, --batch, --all"));

        var allWithoutFactory = Run("revoke", "--config", bed.ConfigPath, "--all", "--reason", "cACompromise");
        Assert.That(allWithoutFactory.Exit, Is.EqualTo(2));
        Assert.That(allWithoutFactory.Err, Does.Contain("--all needs --factory"));

        var noMatch = Run("revoke", "--config", bed.ConfigPath, "--station", "st-99", "--reason", "keyCompromise");
        Assert.That(noMatch.Exit, Is.EqualTo(1));
        Assert.That(noMatch.Err, Does.Contain("no issued certificate matches station 'st-99'"));

        Assert.That(bed.Registry.RevocationVersion, Is.EqualTo(version));
        Assert.That(State(bed, d), Is.EqualTo(RegistryCertificateState.Good));
        Assert.That(bed.Registry.ReadAudit(), Is.Empty);
    }

    [Test]
    public void Factory_revocation_revokes_everything_in_batches_with_progress_and_one_audit_record_per_batch()
    {
        using var bed = new MirrorTestBed();
        var devices = Enumerable.Range(0, 5).Select(i => bed.Issue(batch: "b" + (i % 2))).ToList();
        bed.Registry.Revoke("F1", devices[0].Serial, CrlReason.Superseded, null, "test");
        bed.Registry.BulkBatchSize = 2;
        var reports = new List<BulkRevokeProgress>();
        var result = bed.Registry.RevokeMatching("F1", new RevocationSelector(AllOfIssuer: true), CrlReason.CACompromise, null, "ops", new SyncProgress(reports));
        Assert.That(result, Is.EqualTo(new BulkRevokeResult(5, 4, 1)));
        Assert.That(reports.Select(r => r.Done), Is.EqualTo(new long[] { 2, 4 }));
        Assert.That(reports.All(r => r.Total == 4));
        Assert.That(devices.Skip(1).All(d => bed.Registry.GetStatus(bed.IssuerKeyHash, d.Serial).Revocation!.Reason == CrlReason.CACompromise));
        Assert.That(bed.Registry.GetStatus(bed.IssuerKeyHash, devices[0].Serial).Revocation!.Reason, Is.EqualTo(CrlReason.Superseded), "an earlier revocation is kept");

        var audit = bed.Registry.ReadAudit();
        Assert.That(audit.Select(a => a.Action), Is.EqualTo(new[] { "revoke", "revoke-bulk", "revoke-bulk" }));
        Assert.That(audit[1].Detail, Does.Contain("batch=1/2").And.Contain("every certificate"));
        Assert.That(bed.Registry.VerifyAudit().Ok, Is.True);
    }

    [Test]
    public void Cli_factory_revocation_prints_a_progress_bar_and_the_totals()
    {
        using var bed = new MirrorTestBed();
        for (int i = 0; i < 3; i++)
        {
            bed.Issue();
        }

        bed.Issue(batch: "b2");
        var plain = Run("revoke", "--config", bed.ConfigPath, "--batch", "b2", "--reason", "superseded");
        Assert.That(plain.Exit, Is.Zero, plain.Err);
        Assert.That(plain.Err, Does.Contain("progress: 1/1 revoked (100%)"), "redirected output gets one plain line per batch");

        OfflinePki.MirrorCa.Cli.RevokeCommand.ForceInteractiveProgress = true;
        try
        {
            var r = Run("revoke", "--config", bed.ConfigPath, "--all", "--factory", "F1", "--reason", "cACompromise");
            Assert.That(r.Exit, Is.Zero, r.Err);
            Assert.That(r.Out, Does.Contain("OK revoked 3 certificate(s) of every certificate (4 matched, 1 already revoked) reason cACompromise"));
            Assert.That(r.Err, Does.Contain("revoking every certificate").And.Contain("100%"), "the Spectre.Console progress bar is drawn on stderr");
        }
        finally
        {
            OfflinePki.MirrorCa.Cli.RevokeCommand.ForceInteractiveProgress = false;
        }
    }

    [Test]
    public void Release_hold_makes_a_held_certificate_good_again_and_refuses_final_reasons()
    {
        using var bed = new MirrorTestBed();
        var held = bed.Issue();
        var compromised = bed.Issue();
        var good = bed.Issue();
        bed.Registry.Revoke("F1", held.Serial, CrlReason.CertificateHold, null, "test");
        bed.Registry.Revoke("F1", compromised.Serial, CrlReason.KeyCompromise, null, "test");
        long version = bed.Registry.RevocationVersion;

        var final = Run("release-hold", "--config", bed.ConfigPath, "--serial", compromised.SerialHex);
        Assert.That(final.Exit, Is.EqualTo(1));
        Assert.That(final.Err, Does.Contain("revoked for keyCompromise, which is final"));
        var notRevoked = Run("release-hold", "--config", bed.ConfigPath, "--serial", good.SerialHex);
        Assert.That(notRevoked.Exit, Is.EqualTo(1));
        Assert.That(notRevoked.Err, Does.Contain("is not revoked"));
        var badSerial = Run("release-hold", "--config", bed.ConfigPath, "--serial", "xyz");
        Assert.That(badSerial.Exit, Is.EqualTo(2));
        Assert.That(bed.Registry.RevocationVersion, Is.EqualTo(version), "refused releases change nothing");
        Assert.That(State(bed, compromised), Is.EqualTo(RegistryCertificateState.Revoked));

        var ok = Run("release-hold", "--config", bed.ConfigPath, "--serial", held.SerialHex, "--factory", "F1", "--actor", "bob");
        Assert.That(ok.Exit, Is.Zero, ok.Err);
        Assert.That(ok.Out, Does.StartWith("OK released hold: serial " + held.SerialHex).And.Contain("device " + held.DeviceId));
        Assert.That(State(bed, held), Is.EqualTo(RegistryCertificateState.Good));
        Assert.That(bed.Registry.EnumerateRevoked(bed.IssuerKeyHash).Select(e => Convert.ToHexString(e.Serial)), Is.EqualTo(new[] { compromised.SerialHex }));
        var last = bed.Registry.ReadAudit()[^1];
        Assert.That(last.Action, Is.EqualTo("release-hold"));
        Assert.That(last.Actor, Is.EqualTo("bob"));
        Assert.That(last.Detail, Does.Contain(held.SerialHex));
    }

    [Test]
    public void Audit_verify_detects_an_edited_or_deleted_record()
    {
        using var bed = new MirrorTestBed();
        var a = bed.Issue();
        var b = bed.Issue();
        var c = bed.Issue();
        Assert.That(Run("revoke", "--config", bed.ConfigPath, "--serial", a.SerialHex, "--reason", "keyCompromise").Exit, Is.Zero);
        Assert.That(Run("revoke", "--config", bed.ConfigPath, "--serial", b.SerialHex, "--reason", "certificateHold").Exit, Is.Zero);
        Assert.That(Run("release-hold", "--config", bed.ConfigPath, "--serial", b.SerialHex).Exit, Is.Zero);
        Assert.That(Run("revoke", "--config", bed.ConfigPath, "--serial", c.SerialHex, "--reason", "superseded").Exit, Is.Zero);

        var verify = Run("audit", "verify", "--config", bed.ConfigPath);
        Assert.That(verify.Exit, Is.Zero, verify.Err);
        Assert.That(verify.Out, Does.StartWith("OK audit log intact: 4 record(s), head "));
        var list = Run("audit", "list", "--config", bed.ConfigPath);
        Assert.That(list.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(4));
        Assert.That(list.Out, Does.Contain("release-hold"));

        using (var db = new SqliteConnection("Data Source=" + bed.Registry.DatabasePath + ";Pooling=False"))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = "UPDATE audit_log SET detail = replace(detail, 'keyCompromise', 'superseded') WHERE seq = 1";
            Assert.That(cmd.ExecuteNonQuery(), Is.EqualTo(1));
        }

        var edited = Run("audit", "verify", "--config", bed.ConfigPath);
        Assert.That(edited.Exit, Is.EqualTo(3));
        Assert.That(edited.Err, Does.Contain("audit record 1 (revoke by").And.Contain("does not match its hash"));

        using (var db = new SqliteConnection("Data Source=" + bed.Registry.DatabasePath + ";Pooling=False"))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = "DELETE FROM audit_log WHERE seq <= 2";
            cmd.ExecuteNonQuery();
        }

        var truncated = Run("audit", "verify", "--config", bed.ConfigPath);
        Assert.That(truncated.Exit, Is.EqualTo(3));
        Assert.That(truncated.Err, Does.Contain("audit record 1 is missing"));
    }

    private sealed class SyncProgress(List<BulkRevokeProgress> list) : IProgress<BulkRevokeProgress>
    {
        public void Report(BulkRevokeProgress value) => list.Add(value);
    }
}
