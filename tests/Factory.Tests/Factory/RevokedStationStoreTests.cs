using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using OfflinePki.Enrollment;
using OfflinePki.Factory;
using OfflinePki.Policy;

namespace OfflinePki.Tests.Factory;

/// <summary>The revoked-stations file: a file that cannot be parsed fails closed for every caller until it can.</summary>
public class RevokedStationStoreTests
{
    private static readonly string Revoked = new('a', 64);
    private string _dir = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "offlinepki-tests", "revoked-stations-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(_dir);
        File.WriteAllText(Path.Combine(_dir, RevokedStationStore.FileName), $"{Revoked} 1700000000 lost\n");
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void A_corrupt_file_read_by_one_caller_fails_closed_for_every_caller_within_the_recheck_interval()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(1_800_000_000));
        var store = new RevokedStationStore(_dir, time);
        Assert.That(store.IsRevoked(Revoked), Is.True);

        File.AppendAllText(Path.Combine(_dir, RevokedStationStore.FileName), "not-a-fingerprint\n");
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Throws<FormatException>(() => store.IsRevoked(Revoked), "the caller that reads the corrupt file");

        // Every other caller before the next re-read: the list is unknown, not the stale one.
        time.Advance(TimeSpan.FromMilliseconds(100));
        Assert.Throws<FormatException>(() => store.IsRevoked(new string('b', 64)), "a second caller in the recheck interval");
        Assert.Throws<FormatException>(() => _ = store.Entries, "the entries in the recheck interval");
        using var policy = new StationLimitsPolicy(store, time);
        var unavailable = Assert.Throws<EnrollmentUnavailableException>(() => policy.Admit(StationContext(new string('b', 64))));
        Assert.That(unavailable!.Message, Does.Contain("the station revocation list cannot be read"));

        // Still corrupt after the interval: still closed.
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Throws<FormatException>(() => store.IsRevoked(Revoked));

        // Repaired: the next re-read opens it again.
        File.WriteAllText(Path.Combine(_dir, RevokedStationStore.FileName), $"{Revoked} 1700000000 lost\n# repaired\n");
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.That(store.IsRevoked(Revoked), Is.True);
        Assert.That(store.IsRevoked(new string('b', 64)), Is.False);
    }

    private static EnrollmentContext StationContext(string certificateSha256) =>
        new(new EnrollmentRequest(new StationIdentity("station-01", "station-01", certificateSha256), ReadOnlyMemory<byte>.Empty),
            "DEV-1", "default", [], new byte[32], DateTimeOffset.FromUnixTimeSeconds(1_800_000_000));
}
