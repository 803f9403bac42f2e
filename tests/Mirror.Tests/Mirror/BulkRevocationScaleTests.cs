using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;
using NUnit.Framework;
using OfflinePki.Crl;
using OfflinePki.Keys;
using OfflinePki.MirrorCa;
using OfflinePki.Registry;
using OfflinePki.Revocation;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Mirror;

/// <summary>
/// Issue 4 §1: bulk revocation of 100,000 certificates through the CLI (progress bar to 100 %), each revoked exactly once
/// with its reason, audited, idempotent on a second run, and a full CRL of 100,000 entries that openssl parses.
/// The registry is filled through the sync apply API (one transaction), not through EST issuance.
/// </summary>
public partial class BulkRevocationScaleTests
{
    private const int Count = 100_000;
    private const string Batch = "recall-100k";

    [GeneratedRegex(@"revoked=(\d+)")]
    private static partial Regex RevokedCount();

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = MirrorCaCli.Create().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    /// <summary>Records <paramref name="count"/> certificates of <paramref name="batch"/> directly, as a sync apply would (placeholder DER: nothing here parses it).</summary>
    private static List<byte[]> Fill(MirrorTestBed bed, int count, string batch, ulong firstSeq)
    {
        var serials = new List<byte[]>(count);
        var notBefore = DateTimeOffset.UtcNow.AddDays(-1);
        using var tx = bed.Registry.BeginApply();
        for (int i = 0; i < count; i++)
        {
            var serial = new byte[16];
            RandomNumberGenerator.Fill(serial);
            serial[0] = (byte)((serial[0] & 0x3F) | 0x40); // positive, minimal, 16 octets
            serials.Add(serial);
            tx.AddCertificate(new IssuedCertificateRecord(serial, bed.IssuerKeyHash, [0x30, 0x00], "DEV-" + i.ToString("D6", CultureInfo.InvariantCulture),
                "station-bulk", batch, notBefore, notBefore.AddYears(5), bed.JournalId, firstSeq + (ulong)i));
        }

        tx.Commit();
        return serials;
    }

    [Test]
    public void Bulk_revocation_of_100000_certificates_is_complete_audited_idempotent_and_yields_a_100000_entry_crl()
    {
        using var bed = new MirrorTestBed();
        var bystander = bed.Issue(batch: "other");
        var sw = Stopwatch.StartNew();
        var serials = Fill(bed, Count, Batch, 1000);
        TestContext.Out.WriteLine($"fill {Count}: {sw.Elapsed.TotalSeconds:F1} s");
        long auditBefore = bed.Registry.ReadAudit(1, int.MaxValue).Count;

        sw.Restart();
        OfflinePki.MirrorCa.Cli.RevokeCommand.ForceInteractiveProgress = true;
        (int Exit, string Out, string Err) first;
        try
        {
            first = Run("revoke", "--config", bed.ConfigPath, "--batch", Batch, "--factory", "F1", "--reason", "keyCompromise", "--actor", "ops:recall");
        }
        finally
        {
            OfflinePki.MirrorCa.Cli.RevokeCommand.ForceInteractiveProgress = false;
        }

        TestContext.Out.WriteLine($"revoke {Count} via CLI: {sw.Elapsed.TotalSeconds:F1} s");
        Assert.That(first.Exit, Is.Zero, first.Err);
        Assert.That(first.Out, Does.Contain($"OK revoked {Count} certificate(s) of batch '{Batch}' ({Count} matched, 0 already revoked) reason keyCompromise"));
        Assert.That(first.Err, Does.Contain("revoking batch").And.Contain("100%"), "the Spectre.Console progress bar reaches 100 %");

        // Every certificate revoked exactly once, with its reason; the bystander untouched.
        using (var c = new SqliteConnection($"Data Source={bed.Registry.DatabasePath};Mode=ReadOnly;Pooling=False"))
        {
            c.Open();
            long Scalar(string sql)
            {
                using var cmd = c.CreateCommand();
                cmd.CommandText = sql;
                cmd.Parameters.AddWithValue("$b", Batch);
                return (long)cmd.ExecuteScalar()!;
            }

            Assert.That(Scalar("SELECT COUNT(*) FROM revocations r JOIN certificates c USING (issuer_key_hash, serial) WHERE c.batch_id = $b AND r.reason = 1 AND r.actor = 'ops:recall'"), Is.EqualTo(Count));
            Assert.That(Scalar("SELECT COUNT(*) FROM revocations"), Is.EqualTo(Count));
            Assert.That(Scalar("SELECT COUNT(*) FROM revocation_events WHERE kind = 0"), Is.EqualTo(Count), "one revocation event per certificate");
            Assert.That(Scalar("SELECT COUNT(DISTINCT serial) FROM revocation_events"), Is.EqualTo(Count));
        }

        Assert.That(bed.Registry.GetStatus(bed.IssuerKeyHash, bystander.Serial).State, Is.EqualTo(RegistryCertificateState.Good));
        Assert.That(bed.Registry.GetStatus(bed.IssuerKeyHash, serials[Count / 2]).Revocation!.Reason, Is.EqualTo(CrlReason.KeyCompromise));

        // The audit log: one chained record per committed batch, which together account for every certificate.
        var audit = bed.Registry.ReadAudit(1, int.MaxValue).Skip((int)auditBefore).ToList();
        Assert.That(audit, Is.Not.Empty);
        Assert.That(audit.Select(a => a.Action), Has.All.EqualTo("revoke-bulk"));
        Assert.That(audit.Select(a => a.Actor), Has.All.EqualTo("ops:recall"));
        Assert.That(audit.Sum(a => long.Parse(RevokedCount().Match(a.Detail).Groups[1].Value, CultureInfo.InvariantCulture)), Is.EqualTo(Count));
        Assert.That(audit, Has.All.Matches<AuditRecord>(a => a!.Detail.Contains("reason=keyCompromise", StringComparison.Ordinal) && a.Detail.Contains($"batch '{Batch}'", StringComparison.Ordinal)));
        Assert.That(bed.Registry.VerifyAudit().Ok, Is.True);

        // A second run is a no-op: nothing revoked, nothing audited, no new events.
        long version = bed.Registry.GetRevocationVersion(bed.IssuerKeyHash);
        var second = Run("revoke", "--config", bed.ConfigPath, "--batch", Batch, "--factory", "F1", "--reason", "superseded");
        Assert.That(second.Exit, Is.Zero, second.Err);
        Assert.That(second.Out, Does.Contain($"OK revoked 0 certificate(s) of batch '{Batch}' ({Count} matched, {Count} already revoked)"));
        Assert.That(bed.Registry.ReadAudit(1, int.MaxValue).Count, Is.EqualTo(auditBefore + audit.Count));
        Assert.That(bed.Registry.GetRevocationVersion(bed.IssuerKeyHash), Is.EqualTo(version), "CRLs and OCSP see no change");
        Assert.That(bed.Registry.GetStatus(bed.IssuerKeyHash, serials[0]).Revocation!.Reason, Is.EqualTo(CrlReason.KeyCompromise), "the first revocation stands");

        // The full CRL holds all 100,000 entries and openssl parses it (and checks its signature).
        sw.Restart();
        using var key = SoftwareKeyLoader.Load(bed.Pki.PathOf("issuing-ca-F1.key"));
        var publisher = new CrlPublisher(CrlIssuer.FromCertificate(bed.IssuingCa), key, bed.Registry, TimeProvider.System, TimeSpan.FromDays(7),
            TimeSpan.FromHours(1), new DeltaCrlSettings(bed.Registry, TimeSpan.FromDays(1), TimeSpan.FromMinutes(15), "http://127.0.0.1:8080/crl/F1-delta.crl"));
        var crl = publisher.GetCurrent();
        TestContext.Out.WriteLine($"full CRL of {crl.EntryCount}: {sw.Elapsed.TotalSeconds:F1} s, {crl.Der.Length} bytes");
        Assert.That(crl.EntryCount, Is.EqualTo(Count));
        var path = Path.Combine(bed.DataDirectory, "bulk.crl");
        File.WriteAllBytes(path, crl.Der);
        var text = Tool.OpenSsl("crl", "-inform", "DER", "-in", path, "-noout", "-text", "-CAfile", bed.Pki.PathOf("issuing-ca-F1.crt")).EnsureSuccess("openssl crl");
        Assert.That(text.StdOut + text.StdErr, Does.Contain("verify OK"));
        Assert.That(Regex.Count(text.StdOut, "Serial Number: "), Is.EqualTo(Count));
        Assert.That(Regex.Count(text.StdOut, "Key Compromise"), Is.EqualTo(Count));

        // A delta after it: its lints walk the 100,000-entry base once per rule (linear) and pass.
        bed.Registry.Revoke("F1", bystander.Serial, CrlReason.Superseded, null, "test");
        sw.Restart();
        var delta = publisher.GetCurrentDelta();
        TestContext.Out.WriteLine($"delta of {delta.EntryCount} against the {crl.EntryCount}-entry base: {sw.Elapsed.TotalSeconds:F2} s");
        Assert.That(delta.BaseCrlNumber, Is.EqualTo(crl.CrlNumber));
        Assert.That(delta.EntryCount, Is.EqualTo(1));
    }
}
