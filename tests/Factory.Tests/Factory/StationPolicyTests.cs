using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using OfflinePki.Policy;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Factory;

/// <summary>Station identity from the mTLS client certificate: chain to the RA CA, clientAuth, listed CN.</summary>
public class StationPolicyTests
{
    private static StationAuthorizer Authorizer() => new(
        TestPki.Default.Cert("tls-ca"),
        [new StationEntry("station-01", "station-01"), new StationEntry("station-02", "station-02")],
        TimeProvider.System);

    private static X509Certificate2 Load(string path) => X509CertificateLoader.LoadCertificateFromFile(path);

    [Test]
    public void A_listed_station_is_identified()
    {
        var id = Authorizer().Authorize(TestPki.Default.Cert("station-01"));
        Assert.That(id.Id, Is.EqualTo("station-01"));
        Assert.That(id.CertificateSha256, Has.Length.EqualTo(64));
    }

    [Test]
    public void No_certificate_is_refused()
    {
        var ex = Assert.Throws<StationRejectedException>(() => Authorizer().Authorize(null))!;
        Assert.That(ex.Code, Is.EqualTo(StationError.NoCertificate));
        Assert.That(ex.Message, Does.StartWith("client certificate required"));
    }

    [Test]
    public void A_certificate_from_another_CA_is_refused()
    {
        var rogue = Peers.RogueCa();
        var (crt, _) = Peers.ClientCert("station-01", rogue.Crt, rogue.Key);
        var ex = Assert.Throws<StationRejectedException>(() => Authorizer().Authorize(Load(crt)))!;
        Assert.That(ex.Code, Is.EqualTo(StationError.Untrusted));
        Assert.That(ex.Message, Does.Contain("does not chain to the RA CA"));
    }

    [Test]
    public void A_device_hierarchy_certificate_is_refused()
    {
        // The issuing CA belongs to the device hierarchy, never to the RA/TLS one.
        var ex = Assert.Throws<StationRejectedException>(() => Authorizer().Authorize(TestPki.Default.Cert("journal-signer-F1")))!;
        Assert.That(ex.Code, Is.EqualTo(StationError.Untrusted));
    }

    [Test]
    public void An_unlisted_station_from_the_RA_CA_is_refused_naming_the_rule()
    {
        var (crt, _) = Peers.ClientCert("station-99", TestPki.Default.PathOf("tls-ca.crt"), TestPki.Default.PathOf("tls-ca.key"));
        var ex = Assert.Throws<StationRejectedException>(() => Authorizer().Authorize(Load(crt)))!;
        Assert.That(ex.Code, Is.EqualTo(StationError.NotListed));
        Assert.That(ex.Message, Is.EqualTo("station CN=station-99 is not in the station list (FactoryCa:Stations)"));
    }

    [Test]
    public void A_server_certificate_without_clientAuth_is_refused()
    {
        var ex = Assert.Throws<StationRejectedException>(() => Authorizer().Authorize(TestPki.Default.Cert("est-server")))!;
        Assert.That(ex.Code, Is.EqualTo(StationError.NotClientAuth));
    }

    [Test]
    public void An_expired_station_certificate_is_refused()
    {
        var later = new StationAuthorizer(TestPki.Default.Cert("tls-ca"), [new StationEntry("station-01", "station-01")],
            new FakeTimeProvider(DateTimeOffset.UtcNow.AddYears(5)));
        var ex = Assert.Throws<StationRejectedException>(() => later.Authorize(TestPki.Default.Cert("station-01")))!;
        Assert.That(ex.Code, Is.EqualTo(StationError.Untrusted));
    }

    [Test]
    public void A_remembered_decision_never_outlives_the_station_certificate()
    {
        var station = TestPki.Default.Cert("station-01");
        var clock = new FakeTimeProvider(new DateTimeOffset(station.NotAfter.ToUniversalTime(), TimeSpan.Zero).AddSeconds(-10));
        var authorizer = new StationAuthorizer(TestPki.Default.Cert("tls-ca"), [new StationEntry("station-01", "station-01")], clock);
        Assert.That(authorizer.Authorize(station).Id, Is.EqualTo("station-01"));

        // Within the reuse window but past notAfter: the chain is built again and the expired certificate refused.
        clock.Advance(TimeSpan.FromSeconds(20));
        var ex = Assert.Throws<StationRejectedException>(() => authorizer.Authorize(station))!;
        Assert.That(ex.Code, Is.EqualTo(StationError.Untrusted));
    }
}
