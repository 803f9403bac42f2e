using System.Security.Cryptography;
using Google.Protobuf;
using NUnit.Framework;
using OfflinePki.Enrollment;
using OfflinePki.Journal.V1;
using OfflinePki.Policy;
using OfflinePki.Tests.Support;
using OfflinePki.Factory;

namespace OfflinePki.Tests.Factory.Device;

/// <summary>
/// DevicePolicy on its own (no host): orders and per-order windows, reservations released on Dispose, and the
/// journal payload it annotates. Certificates are signed by the real issuing CA so Commit can read their serials.
/// </summary>
public class DevicePolicyTests
{
    private static readonly StationIdentity Station = new("station-01", "station-01", "00");
    private static readonly DateTimeOffset T0 = new(2026, 11, 22, 8, 0, 0, TimeSpan.Zero);

    private sealed class Windows(string order, TimeSpan window) : IOrderReworkWindows
    {
        public bool TryGetReworkWindow(string orderId, out TimeSpan w)
        {
            w = window;
            return orderId == order;
        }
    }

    private static EnrollmentContext Context(string device, byte[] keyHash, DateTimeOffset now, IssuanceKind kind = IssuanceKind.Initial, string? order = null) =>
        new(new EnrollmentRequest(Station, ReadOnlyMemory<byte>.Empty) { Kind = kind, OrderId = order }, device, "idevid", [], keyHash, now);

    private static byte[] KeyHash() => RandomNumberGenerator.GetBytes(32);

    /// <summary>Admits, annotates and commits with a real certificate; returns the payload.</summary>
    private static CertificateIssued Issue(DevicePolicy policy, EnrollmentContext context)
    {
        using var admission = policy.Admit(context);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var ca = TestPki.Default.IssuingCa;
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] = 0x11;
        using var cert = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=x", key, HashAlgorithmName.SHA256)
            .Create(ca, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddDays(1), serial);
        var payload = new CertificateIssued { Certificate = ByteString.CopyFrom(cert.RawData), DeviceId = context.DeviceId, BatchId = context.Request.OrderId ?? "" };
        admission.Annotate(payload);
        admission.Commit(payload, 1);
        return payload;
    }

    private static EnrollmentRejectedException Refused(DevicePolicy policy, EnrollmentContext context) =>
        Assert.Throws<EnrollmentRejectedException>(() => policy.Admit(context))!;

    [Test]
    public void Rework_under_another_order_or_without_the_order_is_refused()
    {
        var policy = new DevicePolicy(new DevicePolicyOptions());
        Issue(policy, Context("D1", KeyHash(), T0, order: "PO-1"));
        var other = Refused(policy, Context("D1", KeyHash(), T0.AddHours(1), IssuanceKind.Rework, "PO-2"));
        Assert.That(other.Code, Is.EqualTo(EnrollmentError.ReworkNotAllowed));
        Assert.That(other.Message, Does.Contain("device D1 was issued under order 'PO-1', the request names 'PO-2'"));
        var none = Refused(policy, Context("D1", KeyHash(), T0.AddHours(1), IssuanceKind.Rework));
        Assert.That(none.Message, Does.Contain("the request names ''"));
        var ok = Issue(policy, Context("D1", KeyHash(), T0.AddHours(1), IssuanceKind.Rework, "PO-1"));
        Assert.That(ok.Kind, Is.EqualTo(IssuanceKind.Rework));
        Assert.That(ok.SupersedesSerial.IsEmpty, Is.False);
    }

    [Test]
    public void An_order_may_carry_its_own_rework_window()
    {
        var policy = new DevicePolicy(new DevicePolicyOptions(), new Windows("PO-LONG", TimeSpan.FromDays(30)));
        Issue(policy, Context("D1", KeyHash(), T0, order: "PO-LONG"));
        Issue(policy, Context("D2", KeyHash(), T0, order: "PO-SHORT"));
        Assert.That(Issue(policy, Context("D1", KeyHash(), T0.AddDays(20), IssuanceKind.Rework, "PO-LONG")).Kind, Is.EqualTo(IssuanceKind.Rework));
        var late = Refused(policy, Context("D2", KeyHash(), T0.AddDays(20), IssuanceKind.Rework, "PO-SHORT"));
        Assert.That(late.Message, Does.Contain("window 3.00:00:00 from FactoryCa:Rework:Window"));
        var later = Refused(policy, Context("D1", KeyHash(), T0.AddDays(31), IssuanceKind.Rework, "PO-LONG"));
        Assert.That(later.Message, Does.Contain("from order PO-LONG"));
    }

    [Test]
    public void A_failed_enrollment_releases_its_reservation_and_changes_nothing()
    {
        var policy = new DevicePolicy(new DevicePolicyOptions());
        var key = KeyHash();
        var admission = policy.Admit(Context("D1", key, T0));
        var busy = Refused(policy, Context("D1", KeyHash(), T0));
        Assert.That(busy.Message, Does.Contain("in progress at another station"));
        var sameKey = Refused(policy, Context("D2", key, T0));
        Assert.That(sameKey.Code, Is.EqualTo(EnrollmentError.DuplicatePublicKey));
        Assert.That(sameKey.Report, Is.True);
        admission.Dispose();
        Assert.That(policy.Find("D1"), Is.Null);
        Issue(policy, Context("D1", key, T0));
        Assert.That(policy.Find("D1")!.State, Is.EqualTo(DeviceLifecycle.Initial));
    }

    [Test]
    public void A_superseded_key_still_may_not_move_to_another_device()
    {
        var policy = new DevicePolicy(new DevicePolicyOptions());
        var k1 = KeyHash();
        Issue(policy, Context("D1", k1, T0));
        Issue(policy, Context("D1", KeyHash(), T0.AddHours(1), IssuanceKind.Rework));
        var clone = Refused(policy, Context("D2", k1, T0.AddHours(2)));
        Assert.That(clone.Code, Is.EqualTo(EnrollmentError.DuplicatePublicKey));
        Assert.That(clone.Report, Is.True);
        Assert.That(clone.Message, Does.Contain("already certified for device D1"));
    }

    [Test]
    public void Invalid_options_are_refused_naming_the_keys()
    {
        var ex = Assert.Throws<ArgumentException>(() => new DevicePolicy(new DevicePolicyOptions { Rework = new() { Window = TimeSpan.FromSeconds(-1) } }))!;
        Assert.That(ex.Message, Does.Contain("FactoryCa:Rework:Window"));
    }
}
