using NUnit.Framework;
using OfflinePki.Asn1;
using OfflinePki.Registry;
using OfflinePki.Revocation;

namespace OfflinePki.Tests.Mirror;

/// <summary>The registry's device slice on its own: NewIdentity retirement, a predecessor already revoked, an unknown predecessor.</summary>
public class DeviceRegistryTests
{
    private static DeviceIssuance Issuance(MirrorTestBed bed, MirrorTestBed.Device device, DeviceRegistryState state, MirrorTestBed.Device? supersedes, ulong seq) =>
        new("F1", bed.IssuerKeyHash, SerialNumber.Normalize(device.Serial), device.DeviceId, state, supersedes is null ? null : SerialNumber.Normalize(supersedes.Serial),
            DateTimeOffset.UtcNow.AddMinutes(-1), bed.JournalId, seq);

    private static void Apply(MirrorTestBed bed, DeviceIssuance issuance)
    {
        using var tx = bed.Registry.BeginApply();
        ((IDeviceApplyTransaction)tx).ApplyDeviceIssuance(issuance);
        tx.Commit();
    }

    [Test]
    public void A_new_identity_retires_the_old_device_and_links_both()
    {
        using var bed = new MirrorTestBed();
        var old = bed.Issue();
        var fresh = bed.Issue();
        Apply(bed, Issuance(bed, old, DeviceRegistryState.Initial, null, 1));
        Apply(bed, Issuance(bed, fresh, DeviceRegistryState.Refurbished, old, 2));

        var retired = bed.Registry.GetDevice("F1", old.DeviceId)!;
        Assert.That(retired.State, Is.EqualTo(DeviceRegistryState.Retired));
        Assert.That(retired.CurrentSerialHex, Is.Null);
        Assert.That(retired.LinkedDeviceId, Is.EqualTo(fresh.DeviceId));
        var refurbished = bed.Registry.GetDevice("F1", fresh.DeviceId)!;
        Assert.That(refurbished.State, Is.EqualTo(DeviceRegistryState.Refurbished));
        Assert.That(refurbished.LinkedDeviceId, Is.EqualTo(old.DeviceId));
        Assert.That(bed.Registry.GetStatus(bed.IssuerKeyHash, old.Serial).Revocation!.Reason, Is.EqualTo(CrlReason.Superseded));
    }

    [Test]
    public void A_predecessor_already_revoked_keeps_its_first_reason()
    {
        using var bed = new MirrorTestBed();
        var old = bed.Issue();
        var rework = bed.Issue();
        bed.Registry.Revoke("F1", old.Serial, CrlReason.KeyCompromise, null, "cli:alice");
        long version = bed.Registry.RevocationVersion;
        Apply(bed, Issuance(bed, rework, DeviceRegistryState.Reworked, old, 2));
        Assert.That(bed.Registry.GetStatus(bed.IssuerKeyHash, old.Serial).Revocation!.Reason, Is.EqualTo(CrlReason.KeyCompromise));
        Assert.That(bed.Registry.RevocationVersion, Is.EqualTo(version), "nothing new to publish");
        Assert.That(bed.Registry.ReadAudit().Any(a => a.Action == "supersede"), Is.False);
    }

    [Test]
    public void An_unknown_predecessor_is_audited_and_revokes_nothing()
    {
        using var bed = new MirrorTestBed();
        var ghost = bed.Issue(record: false);
        var device = bed.Issue();
        Apply(bed, Issuance(bed, device, DeviceRegistryState.Reworked, ghost, 2));
        Assert.That(bed.Registry.GetStatus(bed.IssuerKeyHash, ghost.Serial), Is.EqualTo(CertificateStatus.NeverIssued));
        var audit = bed.Registry.ReadAudit().Single();
        Assert.That(audit.Action, Is.EqualTo("supersede-unknown"));
        Assert.That(audit.Actor, Is.EqualTo("sync:F1"));
        Assert.That(audit.Detail, Does.Contain(ghost.SerialHex).And.Contain("nothing revoked"));
        Assert.That(bed.Registry.GetDevice("F1", device.DeviceId)!.State, Is.EqualTo(DeviceRegistryState.Reworked));
    }
}
