using System.CommandLine;
using Microsoft.Extensions.Options;
using NUnit.Framework;
using OfflinePki.MirrorCa;
using OfflinePki.Registry;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Mirror;

public class MirrorCliTests
{
    private static (int Exit, string Out, string Err) Run(params string[] args) => MirrorCli.Run(args);

    [Test]
    public void Revoke_verb_revokes_durably_and_reports_idempotence()
    {
        using var bed = new MirrorTestBed();
        var dev = bed.Issue();
        var r = Run("revoke", "--config", bed.ConfigPath, "--serial", dev.SerialHex.ToLowerInvariant(), "--reason", "keyCompromise",
            "--invalidity-date", "2026-11-01T10:00:00Z", "--factory", "F1", "--actor", "alice");
        Assert.That(r.Exit, Is.Zero, r.Err);
        Assert.That(r.Out, Does.StartWith("OK revoked: serial " + dev.SerialHex).And.Contain("device " + dev.DeviceId).And.Contain("keyCompromise").And.Contain("invalidity 2026-11-01T10:00:00Z"));

        // Durable: a fresh registry over the file sees it.
        using (var fresh = new MirrorRegistry(bed.Registry.DatabasePath, TimeProvider.System))
        {
            var status = fresh.GetStatus(bed.IssuerKeyHash, dev.Serial);
            Assert.That(status.State, Is.EqualTo(Revocation.RegistryCertificateState.Revoked));
            Assert.That(status.Revocation!.InvalidityDate, Is.EqualTo(new DateTimeOffset(2026, 11, 1, 10, 0, 0, TimeSpan.Zero)));
        }

        var again = Run("revoke", "--config", bed.ConfigPath, "--serial", dev.SerialHex, "--reason", "superseded");
        Assert.That(again.Exit, Is.Zero, again.Err);
        Assert.That(again.Out, Does.StartWith("OK already revoked").And.Contain("keyCompromise"));

        var status2 = Run("status", "--config", bed.ConfigPath);
        Assert.That(status2.Exit, Is.Zero, status2.Err);
        Assert.That(status2.Out, Does.Contain("factory F1").And.Contain("head seq 1").And.Contain("certificates 1 revoked 1"));
    }

    [Test]
    public void Revoke_verb_fails_clearly_for_unknown_serial_and_bad_reason_and_changes_nothing()
    {
        using var bed = new MirrorTestBed();
        bed.Issue();
        long version = bed.Registry.RevocationVersion;
        var unknown = Run("revoke", "--config", bed.ConfigPath, "--serial", "0x0BADC0DE", "--reason", "keyCompromise");
        Assert.That(unknown.Exit, Is.EqualTo(1));
        Assert.That(unknown.Err, Does.Contain("serial 0BADC0DE was never issued"));
        Assert.That(unknown.Out, Is.Empty);

        var badReason = Run("revoke", "--config", bed.ConfigPath, "--serial", "01", "--reason", "lostIt");
        Assert.That(badReason.Exit, Is.EqualTo(2));
        Assert.That(badReason.Err, Does.Contain("unknown revocation reason 'lostIt'").And.Contain("keyCompromise"));

        var badSerial = Run("revoke", "--config", bed.ConfigPath, "--serial", "xyz", "--reason", "keyCompromise");
        Assert.That(badSerial.Exit, Is.EqualTo(2));
        Assert.That(badSerial.Err, Does.Contain("--serial 'xyz'"));

        var badDate = Run("revoke", "--config", bed.ConfigPath, "--serial", "01", "--reason", "keyCompromise", "--invalidity-date", "yesterday");
        Assert.That(badDate.Exit, Is.EqualTo(2));
        Assert.That(bed.Registry.RevocationVersion, Is.EqualTo(version));
        Assert.That(bed.Registry.EnumerateRevoked(bed.IssuerKeyHash), Is.Empty);
    }

    [Test]
    public void Sample_config_loads_and_validates()
    {
        var options = MirrorCaCli.LoadOptions(TestPki.Default.PathOf("mirrorca.json"));
        Assert.That(options.Factories.Single().FactoryId, Is.EqualTo("F1"));
        Assert.That(Path.IsPathRooted(options.Factories[0].OcspResponder.Certificate), Is.True);
        Assert.That(options.Crl.Validity, Is.EqualTo(TimeSpan.FromDays(7)));
        Assert.That(options.Ocsp.NeverIssued, Is.EqualTo(Ocsp.NeverIssuedPolicy.Revoked));
    }

    [Test]
    public async Task Invalid_config_names_the_failing_key()
    {
        var pki = TestPki.Default;
        var path = pki.PathOf($"bad-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, File.ReadAllText(pki.PathOf("mirrorca.json"))
            .Replace("ocsp-F1.crt", "missing-ocsp.crt", StringComparison.Ordinal)
            .Replace("\"RefreshAfter\": \"01:00:00\"", "\"RefreshAfter\": \"8.00:00:00\"", StringComparison.Ordinal));
        var ex = Assert.Throws<OptionsValidationException>(() => MirrorCaCli.LoadOptions(path));
        Assert.That(ex!.Message, Does.Contain("MirrorCa:Factories[0]:OcspResponder:Certificate: file '").And.Contain("missing-ocsp.crt' not found"));
        Assert.That(ex.Message, Does.Contain("MirrorCa:Crl:RefreshAfter"));

        // The host refuses to come up with the same message (validated when the host is built, before it listens).
        var start = Assert.Throws<OptionsValidationException>(() => MirrorCaApp.Build(path,
            new Dictionary<string, string?> { ["MirrorCa:Http:Listen"] = "http://127.0.0.1:0", ["MirrorCa:Sync:Listen"] = "" }));
        Assert.That(start!.Message, Does.Contain("MirrorCa:Factories[0]:OcspResponder:Certificate"));
        var serve = Run("serve", "--config", path);
        Assert.That(serve.Exit, Is.EqualTo(1));
        Assert.That(serve.Err, Does.Contain("MirrorCa:Crl:RefreshAfter"));
    }
}

public class MirrorBulkRevocationTests
{
    private static (int Exit, string Out, string Err) Run(params string[] args) => MirrorCli.Run(args);

    [Test]
    public void Revoke_by_station_revokes_every_matching_certificate_once()
    {
        using var bed = new MirrorTestBed();
        var devices = Enumerable.Range(0, 3).Select(_ => bed.Issue()).ToList();
        bed.Registry.Revoke("F1", devices[0].Serial, Revocation.CrlReason.Superseded, null, "t");
        var r = Run("revoke", "--config", bed.ConfigPath, "--station", "station-01", "--reason", "keyCompromise", "--factory", "F1");
        Assert.That(r.Exit, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("OK revoked 2 certificate(s) of station 'station-01' (3 matched, 1 already revoked)"));
        var reasons = bed.Registry.EnumerateRevoked(bed.IssuerKeyHash).ToDictionary(e => Convert.ToHexString(e.Serial), e => e.Reason);
        Assert.That(reasons[devices[0].SerialHex], Is.EqualTo(Revocation.CrlReason.Superseded));
        Assert.That(reasons[devices[2].SerialHex], Is.EqualTo(Revocation.CrlReason.KeyCompromise));

        var none = Run("revoke", "--config", bed.ConfigPath, "--device", "NO-SUCH-DEVICE", "--reason", "keyCompromise");
        Assert.That(none.Exit, Is.EqualTo(1));
        Assert.That(none.Err, Does.Contain("no issued certificate matches device 'NO-SUCH-DEVICE'"));
        var both = Run("revoke", "--config", bed.ConfigPath, "--device", "x", "--serial", "01", "--reason", "keyCompromise");
        Assert.That(both.Exit, Is.EqualTo(2));
    }
}
