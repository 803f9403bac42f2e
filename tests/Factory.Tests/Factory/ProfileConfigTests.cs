using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using OfflinePki.Asn1;
using OfflinePki.Enrollment;
using OfflinePki.FactoryCa;
using OfflinePki.Issuance;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Keys;
using OfflinePki.Policy;
using OfflinePki.Tests.Support;
using OfflinePki.Factory;

namespace OfflinePki.Tests.Factory;

/// <summary>
/// Profiles as data: the multi-profile sample validates; each bad profile setting fails at startup naming its key;
/// the per-kind lint sets refuse a certificate of the wrong shape before signing; the rate limiter runs on a clock.
/// </summary>
public class ProfileConfigTests
{
    private static TestPki Pki => TestPki.Default;

    /// <summary>The multi-profile sample with dev-pki's placeholders filled, written next to the dev PKI.</summary>
    private static string Sample(Func<string, string>? edit = null, string name = "factoryca-profiles.json")
    {
        string json = File.ReadAllText(Path.Combine(TestPki.RepoRoot, "ops", "config", "factoryca.profiles.sample.json"))
            .Replace("@FACTORY@", "F1", StringComparison.Ordinal).Replace("@MIRROR_URL@", "http://127.0.0.1:8080", StringComparison.Ordinal)
            .Replace("data/factory-F1", Path.Combine(Peers.Scratch, "profiles-" + Guid.NewGuid().ToString("N")[..6]), StringComparison.Ordinal);
        string path = Pki.PathOf(name);
        File.WriteAllText(path, edit is null ? json : edit(json));
        return path;
    }

    private static FactoryCaOptions Bind(string path)
    {
        var o = new ConfigurationBuilder().AddJsonFile(path).Build().GetSection(FactoryCaOptions.SectionName).Get<FactoryCaOptions>()!;
        o.ResolvePaths(Path.GetDirectoryName(path)!);
        return o;
    }

    [Test]
    public async Task The_multi_profile_sample_validates_and_builds_three_profiles_with_one_issuer()
    {
        var path = Sample();
        var result = new FactoryCaOptionsValidator().Validate(null, Bind(path));
        Assert.That(result.Succeeded, Is.True, result.FailureMessage);
        await using var app = FactoryCaApp.Build(path);
        var issuer = app.Services.GetRequiredService<ICertificateIssuer>();
        Assert.That(issuer.Profiles.Names, Is.EqualTo(new[] { "idevid", "tls-client", "matter-dac" }));
        Assert.That(issuer.Profile.Name, Is.EqualTo("idevid"));
        Assert.That(issuer.Profiles.Select(p => p.Kind),
            Is.EqualTo(new[] { CertificateProfileKind.IDevId, CertificateProfileKind.TlsClient, CertificateProfileKind.MatterDac }));
        Assert.That(issuer.Profiles.Single(p => p.Kind == CertificateProfileKind.MatterDac).MatterVendorId, Is.EqualTo(0xFFF1));
        Assert.That(app.Services.GetServices<IEnrollmentPolicy>().OfType<StationLimitsPolicy>().Count(), Is.EqualTo(1));
    }

    [TestCase("\"VendorId\": \"FFF1\"", "\"VendorId\": \"FFG1\"", "FactoryCa:Profiles:2:VendorId: 'FFG1' is not 4 hex digits (e.g. FFF1)")]
    [TestCase("\"VendorId\": \"FFF1\",", "", "FactoryCa:Profiles:2:VendorId: a matter-dac profile needs a vendor id")]
    [TestCase("\"ProductId\": \"8000\"", "\"ProductId\": \"80000\"", "FactoryCa:Profiles:2:ProductId: '80000' is not 4 hex digits")]
    [TestCase("\"Validity\": \"825.00:00:00\"", "\"Validity\": \"NoWellDefinedExpiration\"", "FactoryCa:Profiles:1:Validity: a tls-client profile needs a finite validity")]
    [TestCase("\"Kind\": \"tls-client\"", "\"Kind\": \"tls-server\"", "FactoryCa:Profiles:1:Kind: 'tls-server' is not a profile kind")]
    [TestCase("\"ProductId\": \"8000\",", "\"ProductId\": \"8000\", \"KeyTypes\": [ \"P-384\" ],", "FactoryCa:Profiles:2:KeyTypes: a matter-dac profile allows P-256 keys only")]
    [TestCase("\"KeyTypes\": [ \"P-256\", \"P-384\", \"RSA\" ]", "\"KeyTypes\": [ \"Ed25519\" ]", "FactoryCa:Profiles:1:KeyTypes: key type 'Ed25519' is not one of")]
    [TestCase("\"DefaultProfile\": \"idevid\"", "\"DefaultProfile\": \"nope\"", "FactoryCa:DefaultProfile: 'nope' is not a configured profile")]
    [TestCase("\"tls\": { \"Profile\": \"tls-client\" }", "\"tls\": { \"Profile\": \"tls-clnt\" }", "FactoryCa:Est:Labels:tls:Profile: 'tls-clnt' is not a configured profile")]
    [TestCase("\"gw\": {", "\"csrattrs\": {", "FactoryCa:Est:Labels:csrattrs: a label is 1-64 of [A-Za-z0-9._-] and not an EST operation name")]
    [TestCase("\"Name\": \"tls-client\"", "\"Name\": \"idevid\"", "FactoryCa:Profiles:1:Name: profile name 'idevid' is used twice")]
    [TestCase("\"Profiles\": [ \"idevid\", \"tls-client\" ]", "\"Profiles\": [ \"idevid\", \"dac\" ]", "FactoryCa:Stations:1:Profiles: unknown profile 'dac'")]
    public void A_bad_profile_setting_fails_at_startup_naming_its_key(string from, string to, string message)
    {
        var path = Sample(json =>
        {
            Assert.That(json, Does.Contain(from), "the sample changed: update this case");
            return json.Replace(from, to, StringComparison.Ordinal);
        }, "factoryca-profiles-bad.json");
        var ex = Assert.Throws<OptionsValidationException>(() => FactoryCaApp.Build(path))!;
        Assert.That(ex.Failures, Has.Some.StartWith(message), string.Join("\n", ex.Failures));
    }

    [Test]
    public void Profile_and_Profiles_together_are_refused()
    {
        var path = Sample(json => json.Replace("\"DefaultProfile\": \"idevid\",", "\"DefaultProfile\": \"idevid\", \"Profile\": { \"SubjectCommonName\": \"x\" },", StringComparison.Ordinal),
            "factoryca-profiles-both.json");
        var ex = Assert.Throws<OptionsValidationException>(() => FactoryCaApp.Build(path))!;
        Assert.That(ex.Failures, Has.Some.StartWith("FactoryCa:Profile: give either FactoryCa:Profile (one profile) or FactoryCa:Profiles (a list), not both"));
    }

    private static (IssuingAuthority Authority, CountingSigningKey Key) Authority()
    {
        var key = new CountingSigningKey(SoftwareKeyLoader.Load(Pki.PathOf("issuing-ca-F1.key")));
        return (new IssuingAuthority(Pki.Cert("issuing-ca-F1"), key, [Pki.Root]), key);
    }

    private static CertificateProfile Profile(CertificateProfileKind kind, TimeSpan? validity) => new CertificateProfile(
        kind == CertificateProfileKind.MatterDac ? "matter" : "tls", "Example", "Example OEM", validity,
        new Uri("http://mirror.example/crl/F1.crl"), new Uri("http://mirror.example/ocsp"), new Uri("http://mirror.example/ca/F1.crt"),
        null, "^[A-Za-z0-9-]{4,64}$")
    {
        Kind = kind,
        MatterVendorId = kind == CertificateProfileKind.MatterDac ? (ushort)0xFFF1 : null,
        MatterProductId = kind == CertificateProfileKind.MatterDac ? (ushort)0x8000 : null,
    };

    [Test]
    public void The_Matter_lint_set_refuses_a_tls_client_shaped_certificate_before_signing()
    {
        var (authority, key) = Authority();
        var tls = Profile(CertificateProfileKind.TlsClient, TimeSpan.FromDays(30));
        var issuer = new CertificateIssuer(authority, tls, new RandomSerialNumberSource(), new InMemoryIssuedSerials(), TimeProvider.System, CertificateLinter.MatterDac);
        var csr = new CsrIntake(tls).Validate(Peers.P256Csr("LNT-0001"));
        var ex = Assert.Throws<CertificateLintException>(() => issuer.Issue(new IssuanceRequest(csr.DeviceId, csr.SubjectPublicKeyInfo)))!;
        Assert.That(ex.Failures.Select(f => f.Lint), Is.SupersetOf(new[]
        {
            "matter_dac_not_after_99991231235959Z", "matter_subject_vendor_and_product_id", "matter_no_extended_key_usage",
        }));
        Assert.That(ex.Failures.Single(f => f.Lint == "matter_no_extended_key_usage").Citation, Is.EqualTo("Matter Core Specification §6.2.2"));
        Assert.That(key.Count, Is.Zero, "a failed lint never reaches the signer");
    }

    [Test]
    public void The_tls_client_lint_set_refuses_an_IDevID_shaped_certificate_before_signing()
    {
        var (authority, key) = Authority();
        var idevid = new CertificateProfile("idevid", "Example", "Example OEM", null, new Uri("http://mirror.example/crl/F1.crl"),
            new Uri("http://mirror.example/ocsp"), new Uri("http://mirror.example/ca/F1.crt"), null, "^[A-Za-z0-9-]{4,64}$");
        var issuer = new CertificateIssuer(authority, idevid, new RandomSerialNumberSource(), new InMemoryIssuedSerials(), TimeProvider.System, CertificateLinter.TlsClient);
        var csr = new CsrIntake(idevid).Validate(Peers.P256Csr("LNT-0002"));
        var ex = Assert.Throws<CertificateLintException>(() => issuer.Issue(new IssuanceRequest(csr.DeviceId, csr.SubjectPublicKeyInfo)))!;
        Assert.That(ex.Failures.Select(f => f.Lint), Is.SupersetOf(new[] { "eku_client_auth", "validity_finite" }));
        Assert.That(key.Count, Is.Zero);
    }

    [Test]
    public void One_issuer_serves_several_profiles_each_with_its_own_lints_and_refuses_a_foreign_profile()
    {
        var (authority, key) = Authority();
        var tls = Profile(CertificateProfileKind.TlsClient, TimeSpan.FromDays(30));
        var matter = Profile(CertificateProfileKind.MatterDac, null);
        var issuer = new CertificateIssuer(authority, new CertificateProfileSet([tls, matter], "matter"), new RandomSerialNumberSource(),
            new InMemoryIssuedSerials(), TimeProvider.System);
        var csr = new CsrIntake(matter).Validate(Peers.P256Csr("LNT-0003"));
        var dac = issuer.Issue(new IssuanceRequest(csr.DeviceId, csr.SubjectPublicKeyInfo));
        var client = issuer.Issue(new IssuanceRequest(csr.DeviceId, csr.SubjectPublicKeyInfo) { Profile = tls });
        Assert.That(key.Count, Is.EqualTo(2));
        using var d = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(dac.Der);
        using var c = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(client.Der);
        Assert.That(d.Subject, Does.Contain("1.3.6.1.4.1.37244.2.1=FFF1"));
        Assert.That(c.Extensions[OfflinePki.Asn1.Oids.ExtendedKeyUsage], Is.Not.Null);
        var foreign = Profile(CertificateProfileKind.TlsClient, TimeSpan.FromDays(1));
        Assert.Throws<ArgumentException>(() => issuer.Issue(new IssuanceRequest(csr.DeviceId, csr.SubjectPublicKeyInfo) { Profile = foreign }));
        Assert.That(key.Count, Is.EqualTo(2));
    }

    [Test]
    public void A_Matter_profile_refuses_an_issuing_key_that_does_not_sign_ecdsa_with_SHA256()
    {
        string k = Peers.NewPath(".key"), crt = Peers.NewPath(".crt");
        Tool.OpenSsl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes", "-subj", "/CN=P384 CA", "-days", "2",
            "-keyout", k, "-out", crt, "-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign,cRLSign").EnsureSuccess("ca");
        var cert = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(crt);
        var authority = new IssuingAuthority(cert, SoftwareKeyLoader.Load(k), [cert]);
        var ex = Assert.Throws<ArgumentException>(() => _ = new CertificateIssuer(authority, Profile(CertificateProfileKind.MatterDac, null),
            new RandomSerialNumberSource(), new InMemoryIssuedSerials(), TimeProvider.System))!;
        Assert.That(ex.Message, Does.Contain("must be signed with ecdsa-with-SHA256 by a P-256 CA key (Matter Core §6.1)"));
    }

    /// <summary>A CSR whose operator id attribute carries the given values (each one DER value; .NET writes the SET).</summary>
    private static byte[] CsrWithAttribute(params Action<System.Formats.Asn1.AsnWriter>[] values)
    {
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var req = new System.Security.Cryptography.X509Certificates.CertificateRequest("SERIALNUMBER=ATT-0001, CN=x", key,
            System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var writeValue in values)
        {
            var w = new System.Formats.Asn1.AsnWriter(System.Formats.Asn1.AsnEncodingRules.DER);
            writeValue(w);
            req.OtherRequestAttributes.Add(new System.Security.Cryptography.AsnEncodedData(Oids.OperatorIdAttribute, w.Encode()));
        }

        return req.CreateSigningRequest();
    }

    [Test]
    public void The_operator_id_CSR_attribute_is_read_and_a_malformed_one_is_refused()
    {
        var intake = new CsrIntake(Profile(CertificateProfileKind.TlsClient, TimeSpan.FromDays(1)));
        var ok = intake.Validate(CsrWithAttribute(w => w.WriteCharacterString(System.Formats.Asn1.UniversalTagNumber.UTF8String, "op-12")));
        Assert.That(ok.OperatorId, Is.EqualTo("op-12"));
        Assert.That(intake.Validate(Peers.P256Csr("ATT-0002")).OperatorId, Is.Null);

        var ia5 = Assert.Throws<EnrollmentRejectedException>(() => intake.Validate(
            CsrWithAttribute(w => w.WriteCharacterString(System.Formats.Asn1.UniversalTagNumber.IA5String, "op-12"))))!;
        Assert.That(ia5.Code, Is.EqualTo(EnrollmentError.OperatorIdInvalid));
        Assert.That(ia5.Message, Does.Contain("must appear once with one UTF8String or PrintableString value"));
        var two = Assert.Throws<EnrollmentRejectedException>(() => intake.Validate(CsrWithAttribute(
            w => w.WriteCharacterString(System.Formats.Asn1.UniversalTagNumber.UTF8String, "op-1"),
            w => w.WriteCharacterString(System.Formats.Asn1.UniversalTagNumber.UTF8String, "op-2"))))!;
        Assert.That(two.Code, Is.EqualTo(EnrollmentError.OperatorIdInvalid));
        Assert.That(two.Message, Does.Contain("must appear once").Or.Contain("must have exactly one value"));
    }

    [Test]
    public void The_clocked_token_bucket_refills_from_the_clock_and_says_when_to_retry()
    {
        var clock = new FakeTimeProvider();
        using var limiter = new ClockedTokenBucketRateLimiter(2, TimeSpan.FromSeconds(30), clock);
        Assert.That(limiter.AttemptAcquire().IsAcquired, Is.True);
        Assert.That(limiter.AttemptAcquire().IsAcquired, Is.True);
        using var refused = limiter.AttemptAcquire();
        Assert.That(refused.IsAcquired, Is.False);
        Assert.That(refused.TryGetMetadata(System.Threading.RateLimiting.MetadataName.RetryAfter, out var retry), Is.True);
        Assert.That(retry, Is.GreaterThan(TimeSpan.FromSeconds(25)).And.LessThanOrEqualTo(TimeSpan.FromSeconds(30)));
        clock.Advance(TimeSpan.FromSeconds(31));
        Assert.That(limiter.AttemptAcquire().IsAcquired, Is.True);
        Assert.That(limiter.AttemptAcquire().IsAcquired, Is.False);
        clock.Advance(TimeSpan.FromHours(1));
        Assert.That(limiter.GetStatistics()!.CurrentAvailablePermits, Is.EqualTo(2), "never more than the bucket");
    }

    [Test]
    public async Task A_revocation_written_while_the_daemon_is_stopped_is_journaled_when_it_starts()
    {
        var path = Sample(name: "factoryca-profiles-offline.json");
        var data = Bind(path).DataDirectory;
        using var st = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(Pki.PathOf("station-02.crt"));
        string fp = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(st.RawData));
        Assert.That(await RevokeStationCommand.RunAsync(path, fp, null, "decommissioned", CancellationToken.None), Is.Zero);
        Assert.That(File.ReadAllText(Path.Combine(data, RevokedStationStore.FileName)), Does.StartWith(fp + " "));

        var journal = new FakeJournalAppender();
        await using (var app = FactoryCaApp.Build(path, s => s.AddSingleton<IJournalAppender>(journal), o => o.Est.Listen = "https://127.0.0.1:0"))
        {
            await app.StartAsync();
            Assert.That(app.Services.GetRequiredService<IRevokedStations>().IsRevoked(fp), Is.True);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!journal.Appends.Any(a => a.Type == EntryType.PolicyChanged) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }

            await app.StopAsync();
        }

        var changed = journal.Appends.Where(a => a.Type == EntryType.PolicyChanged).Select(a => ((PolicyChanged)a.Payload).Summary).ToList();
        Assert.That(changed, Has.Exactly(1).Contains("sha256=" + fp).And.Contains("decommissioned"));
        Assert.That(File.ReadAllText(Path.Combine(data, RevokedStationStore.JournaledFileName)), Does.Contain(fp));
    }

    [Test]
    public void The_revoke_station_verb_rejects_bad_arguments_with_exit_2()
    {
        var path = Sample(name: "factoryca-profiles-cli.json");
        var dll = Path.Combine(AppContext.BaseDirectory, "FactoryCa.dll");
        var neither = Tool.Run("dotnet", [dll, "revoke-station", "--config", path, "--reason", "x"]);
        Assert.That(neither.ExitCode, Is.EqualTo(2));
        Assert.That(neither.StdErr, Does.Contain("give exactly one of --fingerprint <sha256 hex> or --cert <station certificate file>"));
        var bad = Tool.Run("dotnet", [dll, "revoke-station", "--config", path, "--fingerprint", "12:34", "--reason", "x"]);
        Assert.That(bad.ExitCode, Is.EqualTo(2));
        Assert.That(bad.StdErr, Does.Contain("is not a SHA-256 fingerprint (64 hex digits)"));
        var ok = Tool.Run("dotnet", [dll, "revoke-station", "--config", path, "--cert", Pki.PathOf("station-01.crt"), "--reason", "retired"]);
        Assert.That(ok.ExitCode, Is.Zero, ok.StdErr);
        Assert.That(ok.StdOut, Does.Contain("revoked in").And.Contain("the daemon is not running"));
    }
}
