using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using OfflinePki.Asn1;
using OfflinePki.Enrollment;
using OfflinePki.Issuance;
using OfflinePki.Keys;
using OfflinePki.Tests.Support;
using OfflinePki.Factory;

namespace OfflinePki.Tests.Factory;

/// <summary>Prepare → lint → sign, with hand-written fakes of ISigningKey, ISerialNumberSource and IIssuedSerials.</summary>
public class IssuerTests
{
    private sealed class FixedSerials(params byte[][] serials) : ISerialNumberSource
    {
        private int _i;
        public byte[] Next() => serials[Math.Min(_i++, serials.Length - 1)];
    }

    private sealed class EverySerialIssued : IIssuedSerials
    {
        public bool Contains(byte[] serial) => true;
    }

    private static CertificateProfile Profile(TimeSpan? validity = null) => new("idevid", "Example Device", "Example OEM", validity,
        new Uri("http://mirror.example/crl/F1.crl"), new Uri("http://mirror.example/ocsp"), new Uri("http://mirror.example/ca/F1.crt"),
        null, "^[A-Za-z0-9-]{4,64}$");

    private static (IssuingAuthority Authority, CountingSigningKey Key) Authority()
    {
        var pki = TestPki.Default;
        var key = new CountingSigningKey(SoftwareKeyLoader.Load(pki.PathOf("issuing-ca-F1.key")));
        return (new IssuingAuthority(pki.Cert("issuing-ca-F1"), key, [pki.Root]), key);
    }

    private static IssuanceRequest Request(string deviceId = "DEV-1000")
    {
        var csr = new CsrIntake(Profile().DeviceIdPattern).Validate(Peers.P256Csr(deviceId));
        return new IssuanceRequest(csr.DeviceId, csr.SubjectPublicKeyInfo);
    }

    [Test]
    public void Concurrent_first_issuances_on_a_fresh_issuer_all_pass_the_self_check()
    {
        // Regression: the self-check's hash algorithm was cached lazily in a HashAlgorithmName? field, which a second
        // thread could read torn (HasValue set, Name still null) and fail the issuance with ArgumentNullException.
        var (authority, _) = Authority();
        var requests = Enumerable.Range(0, 8).Select(i => Request($"DEV-{2000 + i}")).ToArray();
        for (int round = 0; round < 600; round++)
        {
            var issuer = new CertificateIssuer(authority, Profile(), new RandomSerialNumberSource(), new InMemoryIssuedSerials(), TimeProvider.System);
            using var go = new Barrier(requests.Length);
            var errors = new System.Collections.Concurrent.ConcurrentBag<Exception>();
            var threads = requests.Select(r => new Thread(() =>
            {
                go.SignalAndWait();
                try
                {
                    issuer.Issue(r);
                }
                catch (Exception ex)
                {
                    errors.Add(ex);
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            Assert.That(errors, Is.Empty, $"round {round}");
        }
    }

    [Test]
    public void Issues_an_IDevID_that_chains_and_carries_the_profile()
    {
        var (authority, key) = Authority();
        var issuer = new CertificateIssuer(authority, Profile(), new RandomSerialNumberSource(), new InMemoryIssuedSerials(), TimeProvider.System);
        var issued = issuer.Issue(Request());
        Assert.That(key.Count, Is.EqualTo(1));

        using var cert = X509CertificateLoader.LoadCertificate(issued.Der);
        Assert.That(cert.Version, Is.EqualTo(3));
        Assert.That(cert.Issuer, Is.EqualTo(authority.Certificate.Subject));
        Assert.That(cert.SubjectName.Name, Does.Contain("SERIALNUMBER=DEV-1000").Or.Contain("2.5.4.5=DEV-1000"));
        Assert.That(cert.NotAfter.ToUniversalTime(), Is.EqualTo(new DateTime(9999, 12, 31, 23, 59, 59, DateTimeKind.Utc)));
        Assert.That(cert.Extensions.OfType<X509KeyUsageExtension>().Single().Critical, Is.True);
        Assert.That(cert.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority, Is.False);
        Assert.That(cert.Extensions.OfType<X509AuthorityKeyIdentifierExtension>().Single().KeyIdentifier!.Value.ToArray(),
            Is.EqualTo(authority.SubjectKeyIdentifier));

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(TestPki.Default.Root);
        chain.ChainPolicy.ExtraStore.Add(authority.Certificate);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        Assert.That(chain.Build(cert), Is.True, string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation)));

        var view = TbsCertificateView.Parse(new AsnReader(issued.Der, AsnEncodingRules.DER).ReadSequence().ReadEncodedValue());
        var hw = OfflinePki.Issuance.Lints.HardwareModuleNameLint.Read(view);
        Assert.That(hw!.Value.Type, Is.EqualTo(CertificateProfile.DefaultHardwareModuleType));
        Assert.That(hw.Value.SerialNum, Is.EqualTo("DEV-1000"u8.ToArray()));
        Assert.That(view.ValidityTags.NotAfter, Is.EqualTo(UniversalTagNumber.GeneralizedTime));

        // BouncyCastle, a second reader, verifies the signature and reads the same fields.
        var bc = BouncyOracle.Certificate(issued.Der, authority.Certificate);
        Assert.That(BouncyOracle.SerialHex(bc), Is.EqualTo(cert.SerialNumber).And.EqualTo(SerialNumber.ToHex(issued.Serial)));
        Assert.That(BouncyOracle.SubjectValues(bc, Oids.SerialNumberAttribute), Is.EqualTo(new[] { "DEV-1000" }));
        Assert.That(bc.NotAfter, Is.EqualTo(new DateTime(9999, 12, 31, 23, 59, 59, DateTimeKind.Utc)));
        Assert.That(bc.NotBefore, Is.EqualTo(issued.NotBefore.UtcDateTime));
        Assert.That(bc.GetCriticalExtensionOids(), Does.Contain("2.5.29.15"));
        Assert.That(bc.GetKeyUsage()![0], Is.True, "digitalSignature");
        Assert.That(bc.GetBasicConstraints(), Is.EqualTo(-1), "not a CA");
        Assert.That(BouncyOracle.HardwareModuleSerial(bc), Is.EqualTo("DEV-1000"u8.ToArray()));
    }

    [Test]
    public void A_finite_validity_runs_from_the_injected_clock()
    {
        var (authority, _) = Authority();
        var now = new DateTimeOffset(2030, 1, 2, 3, 4, 5, 678, TimeSpan.Zero);
        var issuer = new CertificateIssuer(authority, Profile(TimeSpan.FromDays(365 * 25)), new RandomSerialNumberSource(),
            new InMemoryIssuedSerials(), new FakeTimeProvider(now));
        var issued = issuer.Issue(Request());
        Assert.That(issued.NotBefore, Is.EqualTo(new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero)));
        Assert.That(issued.NotAfter, Is.EqualTo(issued.NotBefore.AddDays(365 * 25)));
        var view = TbsCertificateView.Parse(new AsnReader(issued.Der, AsnEncodingRules.DER).ReadSequence().ReadEncodedValue());
        Assert.That(view.ValidityTags, Is.EqualTo((UniversalTagNumber.UtcTime, UniversalTagNumber.GeneralizedTime)), "2030 UTCTime, 2054 GeneralizedTime");
        var bc = BouncyOracle.Certificate(issued.Der, authority.Certificate);
        Assert.That(bc.NotBefore, Is.EqualTo(issued.NotBefore.UtcDateTime), "BouncyCastle reads the UTCTime notBefore");
        Assert.That(bc.NotAfter, Is.EqualTo(issued.NotAfter.UtcDateTime), "BouncyCastle reads the GeneralizedTime notAfter");
    }

    [Test]
    public void A_failed_lint_never_reaches_the_signer()
    {
        var (authority, key) = Authority();
        var shortSerial = new FixedSerials([0x01, 0x02, 0x03, 0x04]);
        var issuer = new CertificateIssuer(authority, Profile(), shortSerial, new InMemoryIssuedSerials(), TimeProvider.System);
        var ex = Assert.Throws<CertificateLintException>(() => issuer.Issue(Request()))!;
        Assert.That(ex.Failures.Select(f => f.Lint), Is.EqualTo(new[] { "serial_number_at_least_64_bits" }));
        Assert.That(ex.Message, Does.Contain("CA/B Forum BR §7.1"));
        Assert.That(key.Count, Is.Zero);
    }

    [Test]
    public void A_serial_already_issued_is_never_signed_again()
    {
        var (authority, key) = Authority();
        var issuer = new CertificateIssuer(authority, Profile(), new RandomSerialNumberSource(), new EverySerialIssued(), TimeProvider.System);
        Assert.Throws<InvalidOperationException>(() => issuer.Issue(Request()));
        Assert.That(key.Count, Is.Zero);

        var serial = new RandomSerialNumberSource().Next();
        var fresh = new RandomSerialNumberSource().Next();
        var seen = new InMemoryIssuedSerials();
        seen.Record(serial);
        var retrying = new CertificateIssuer(authority, Profile(), new FixedSerials(serial, fresh), seen, TimeProvider.System);
        Assert.That(retrying.Issue(Request()).Serial, Is.EqualTo(fresh));
    }

    [Test]
    public void Each_lint_flags_a_broken_TBS()
    {
        var (authority, _) = Authority();
        var profile = Profile();
        var issuer = new CertificateIssuer(authority, profile, new RandomSerialNumberSource(), new InMemoryIssuedSerials(), TimeProvider.System);
        var good = issuer.Issue(Request());
        var tbs = new AsnReader(good.Der, AsnEncodingRules.DER).ReadSequence().ReadEncodedValue().ToArray();
        var ctx = new LintContext(authority, profile, new PreparedCertificate(tbs, good.Serial, good.NotBefore, good.NotAfter, "DEV-1000"));
        Assert.DoesNotThrow(() => CertificateLinter.Default.Lint(ctx));

        // The same TBS, presented as if prepared for another device: the subject/SAN lint names the rule.
        var wrongDevice = ctx with { Prepared = ctx.Prepared with { DeviceId = "DEV-9999" } };
        var ex = Assert.Throws<CertificateLintException>(() => CertificateLinter.Default.Lint(wrongDevice))!;
        Assert.That(ex.Failures.Single().Lint, Is.EqualTo("subject_serial_number_is_device_serial"));

        // Another profile's hwType and URLs.
        var other = new CertificateProfile("idevid", "Example Device", "Example OEM", null, new Uri("http://other/crl"), new Uri("http://other/ocsp"),
            new Uri("http://other/ca"), "1.2.3.4", "^.*$");
        var ex2 = Assert.Throws<CertificateLintException>(() => CertificateLinter.Default.Lint(ctx with { Profile = other }))!;
        Assert.That(ex2.Failures.Select(f => f.Lint), Is.EquivalentTo(new[]
        {
            "san_hardware_module_name", "crl_distribution_point_present", "authority_info_access_ocsp_and_ca_issuers",
        }));

        // Garbage instead of a TBS.
        Assert.Throws<CertificateLintException>(() => CertificateLinter.Default.Lint(ctx with { Prepared = ctx.Prepared with { TbsDer = [0x30, 0x00] } }));
    }

    [Test]
    public void A_key_that_does_not_match_the_CA_certificate_is_refused_at_startup()
    {
        var pki = TestPki.Default;
        using var wrong = SoftwareKeyLoader.Load(pki.PathOf("journal-signer-F1.key"));
        Assert.Throws<ArgumentException>(() => _ = new IssuingAuthority(pki.Cert("issuing-ca-F1"), wrong, [pki.Root]));
        using var signerKey = SoftwareKeyLoader.Load(pki.PathOf("journal-signer-F1.key"));
        Assert.Throws<ArgumentException>(() => _ = new IssuingAuthority(pki.Cert("journal-signer-F1"), signerKey, [pki.Root]), "not a CA");
    }

    [Test]
    public async Task A_station_not_authorised_for_the_profile_is_refused_before_anything_is_signed()
    {
        var (authority, key) = Authority();
        var issuer = new CertificateIssuer(authority, Profile(), new RandomSerialNumberSource(), new InMemoryIssuedSerials(), TimeProvider.System);
        var journal = new FakeJournalAppender();
        var service = new EnrollmentService(issuer, journal, Microsoft.Extensions.Logging.Abstractions.NullLogger<EnrollmentService>.Instance);
        var station = new Policy.StationIdentity("st-07", "st-07", "00", ["idevid-gw"]);
        var ex = (await Assert.ThrowsAsync<EnrollmentRejectedException>(() => service.EnrollAsync(
            station, Peers.Base64Body(Peers.P256Csr("DEV-1002")), "op-1", CancellationToken.None)))!;
        Assert.That(ex.Code, Is.EqualTo(EnrollmentError.StationNotAuthorizedForProfile));
        Assert.That(ex.Message, Does.StartWith("station CN=st-07 is not authorised for profile idevid"));
        Assert.That(key.Count + journal.Count, Is.Zero);

        var allowed = await service.EnrollAsync(station with { Profiles = ["idevid"] }, Peers.Base64Body(Peers.P256Csr("DEV-1003")), "op-1", CancellationToken.None);
        Assert.That(allowed.JournalSeq, Is.EqualTo(1UL));
        Assert.That(allowed.Chain, Has.Count.EqualTo(2));
    }

    [Test]
    public async Task A_signing_key_failure_is_reported_as_unavailable()
    {
        var (authority, key) = Authority();
        key.FailWith = new SigningKeyUnavailableException("token removed");
        var issuer = new CertificateIssuer(authority, Profile(), new RandomSerialNumberSource(), new InMemoryIssuedSerials(), TimeProvider.System);
        var journal = new FakeJournalAppender();
        var service = new EnrollmentService(issuer, journal, Microsoft.Extensions.Logging.Abstractions.NullLogger<EnrollmentService>.Instance);
        var ex = (await Assert.ThrowsAsync<EnrollmentUnavailableException>(() => service.EnrollAsync(
            new Policy.StationIdentity("station-01", "station-01", "00"), Peers.Base64Body(Peers.P256Csr("DEV-1001")), null, CancellationToken.None)))!;
        Assert.That(ex.Message, Does.Contain("token removed"));
        Assert.That(journal.Count, Is.Zero);
    }

    [Test]
    public async Task A_signature_that_does_not_verify_with_the_CA_certificate_is_discarded_and_nothing_is_journaled()
    {
        var (authority, key) = Authority();
        key.CorruptSignatures = true;
        var issuer = new CertificateIssuer(authority, Profile(), new RandomSerialNumberSource(), new InMemoryIssuedSerials(), TimeProvider.System);
        var ex = Assert.Throws<SigningKeyUnavailableException>(() => issuer.Issue(Request("DEV-1004")))!;
        Assert.That(ex.Message, Is.EqualTo($"signature by key {key.KeyId} does not verify with the issuing CA certificate; certificate discarded"));

        // The station is told why, as for a key that cannot sign (EST 503), and nothing is journaled.
        var journal = new FakeJournalAppender();
        var service = new EnrollmentService(issuer, journal, Microsoft.Extensions.Logging.Abstractions.NullLogger<EnrollmentService>.Instance);
        var unavailable = (await Assert.ThrowsAsync<EnrollmentUnavailableException>(() => service.EnrollAsync(new Policy.StationIdentity("station-01", "station-01", "00"),
            Peers.Base64Body(Peers.P256Csr("DEV-1005")), null, CancellationToken.None)))!;
        Assert.That(unavailable.Message, Is.EqualTo($"issuing CA key unavailable: signature by key {key.KeyId} does not verify with the issuing CA certificate; certificate discarded"));
        Assert.That(journal.Count, Is.Zero);

        key.CorruptSignatures = false;
        Assert.That(issuer.Issue(Request("DEV-1006")).Der, Is.Not.Empty, "the same issuer signs again once the key is sound");
    }
}
