using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using OfflinePki.Enrollment;
using OfflinePki.FactoryCa;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Policy;
using OfflinePki.Sync;
using OfflinePki.Tests.Support;
using OfflinePki.Factory;

namespace OfflinePki.Tests.Factory.Device;

/// <summary>A FactoryCa host with the real journal in its own data directory, driven over EST/mTLS by a station.</summary>
internal sealed class DeviceHost : IAsyncDisposable
{
    private DeviceHost(WebApplication app, HttpClient station, string dataDirectory)
    {
        App = app;
        Station = station;
        DataDirectory = dataDirectory;
    }

    public WebApplication App { get; }

    public HttpClient Station { get; }

    public string DataDirectory { get; }

    public JournalWriter Journal => App.Services.GetRequiredService<JournalWriter>();

    public DevicePolicy Policy => App.Services.GetRequiredService<DevicePolicy>();

    public static async Task<DeviceHost> StartAsync(FakeTimeProvider clock, string? dataDirectory = null, string refurbMode = "RotateKey", string checkDigit = "iso7064-mod37-36")
    {
        var pki = TestPki.Default;
        dataDirectory ??= Path.Combine(Path.GetTempPath(), "offlinepki-tests", "device-" + Guid.NewGuid().ToString("N")[..8]);
        var app = FactoryCaApp.Build(pki.PathOf("factoryca.json"), services =>
        {
            services.AddSingleton<TimeProvider>(clock);
            services.PostConfigure<SyncOptions>(o => o.Enabled = false);
            services.PostConfigure<DevicePolicyOptions>(o => o.Refurb.Mode = refurbMode);
        }, o =>
        {
            o.Est.Listen = "https://127.0.0.1:0";
            o.DataDirectory = dataDirectory;
            o.Profile.DeviceIdCheckDigit = checkDigit;
        });
        await app.StartAsync();
        var station = pki.MtlsClient("station-01");
        station.BaseAddress = new Uri(app.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal)));
        return new DeviceHost(app, station, dataDirectory);
    }

    public sealed record Reply(HttpStatusCode Status, string Body, X509Certificate2? Certificate);

    public async Task<Reply> EnrollAsync(string deviceId, ECDsa key, string? kind = null, string? order = null, string? previousDevice = null)
    {
        var csr = new CertificateRequest($"CN=x, SERIALNUMBER={deviceId}", key, HashAlgorithmName.SHA256).CreateSigningRequest();
        using var content = new StringContent(Convert.ToBase64String(csr));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/pkcs10");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/.well-known/est/simpleenroll") { Content = content };
        if (kind is not null)
        {
            request.Headers.Add(EstEndpoints.IssuanceKindHeader, kind);
        }

        if (order is not null)
        {
            request.Headers.Add(EstEndpoints.OrderIdHeader, order);
        }

        if (previousDevice is not null)
        {
            request.Headers.Add(EstEndpoints.PreviousDeviceIdHeader, previousDevice);
        }

        using var response = await Station.SendAsync(request);
        string body = await response.Content.ReadAsStringAsync();
        X509Certificate2? cert = null;
        if (response.StatusCode == HttpStatusCode.OK)
        {
            var pem = Tool.Run("openssl", ["pkcs7", "-inform", "DER", "-print_certs"], stdin: Convert.FromBase64String(body)).EnsureSuccess("openssl pkcs7").StdOut;
            cert = X509Certificate2.CreateFromPem(pem);
        }

        return new Reply(response.StatusCode, body, cert);
    }

    /// <summary>The entries after <paramref name="afterSeq"/>, checkpoints left out.</summary>
    public List<JournalEntry> EntriesAfter(ulong afterSeq) =>
        [.. Journal.ReadFrom(afterSeq + 1).Where(e => e.Type is not EntryType.Checkpoint)];

    public async ValueTask DisposeAsync()
    {
        Station.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>
/// The device rules through real EST over mTLS with the durable journal: check digits, one active IDevID, rework
/// (window, order, unknown device), refurb key rotation, cloned keys (journaled refusal), reenroll, concurrency, and
/// the state rebuilt after a restart. Every refusal asserts the HTTP status, the message and that nothing was issued.
/// </summary>
[NonParallelizable]
public class DeviceEstTests
{
    // The factory's clock: ten minutes ahead of real time (so never behind the station certificates dev-pki.sh makes) and
    // moved only forward, by the test, past the rework window or a year on. AdjustTime moves the wall clock as a real
    // clock change would, without firing a timer for every period skipped (the index catch-up ticks every 2 s).
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow.AddMinutes(10));
    private DeviceHost _host = null!;
    private static int _next;

    [OneTimeSetUp]
    public async Task Start() => _host = await DeviceHost.StartAsync(_clock);

    [OneTimeTearDown]
    public async Task Stop() => await _host.DisposeAsync();

    /// <summary>A fresh device ID with a valid MOD 37,36 check character.</summary>
    internal static string NewId() => DeviceIdFormat.Append(DeviceIdCheckDigit.Iso7064Mod37_36, $"DEV{Interlocked.Increment(ref _next):D5}{Guid.NewGuid().ToString("N")[..4].ToUpperInvariant()}");

    private static ECDsa NewKey() => ECDsa.Create(ECCurve.NamedCurves.nistP256);

    private async Task<DeviceHost.Reply> Refused(HttpStatusCode status, string message, Func<Task<DeviceHost.Reply>> send)
    {
        ulong before = _host.Journal.Head.Seq;
        var reply = await send();
        Assert.That(reply.Status, Is.EqualTo(status), reply.Body);
        Assert.That(reply.Body, Does.Contain(message));
        Assert.That(_host.EntriesAfter(before).Where(e => e.Type == EntryType.CertificateIssued), Is.Empty, "nothing may be issued");
        return reply;
    }

    private static CertificateIssued Issued(JournalEntry e) => CertificateIssued.Parser.ParseFrom(e.Payload);

    private CertificateIssued LastIssued() => Issued(_host.Journal.ReadFrom(1).Last(e => e.Type == EntryType.CertificateIssued));

    [Test]
    public async Task A_wrong_check_character_is_400_and_journals_nothing()
    {
        string id = NewId();
        string bad = id[..^1] + (id[^1] == 'A' ? 'B' : 'A');
        using var key = NewKey();
        ulong before = _host.Journal.Head.Seq;
        await Refused(HttpStatusCode.BadRequest, "fails its ISO/IEC 7064 MOD 37,36 check character", () => _host.EnrollAsync(bad, key));
        Assert.That(_host.Journal.Head.Seq, Is.EqualTo(before));
        Assert.That((await _host.EnrollAsync(id, key)).Status, Is.EqualTo(HttpStatusCode.OK), "the correct ID enrolls");
    }

    [Test]
    public async Task A_second_initial_enrollment_of_a_device_is_409()
    {
        string id = NewId();
        using var k1 = NewKey();
        using var k2 = NewKey();
        var first = await _host.EnrollAsync(id, k1);
        Assert.That(first.Status, Is.EqualTo(HttpStatusCode.OK), first.Body);
        var reply = await Refused(HttpStatusCode.Conflict, $"device {id} already holds an active IDevID (serial {first.Certificate!.SerialNumber}", () => _host.EnrollAsync(id, k2));
        Assert.That(reply.Body, Does.Contain("X-Issuance-Kind: rework"));
    }

    [Test]
    public async Task Rework_within_the_window_supersedes_and_the_journal_links_the_two()
    {
        string id = NewId();
        using var k1 = NewKey();
        using var k2 = NewKey();
        var first = await _host.EnrollAsync(id, k1);
        _clock.AdjustTime(_clock.GetUtcNow() + TimeSpan.FromHours(71));
        var rework = await _host.EnrollAsync(id, k2, kind: "rework");
        Assert.That(rework.Status, Is.EqualTo(HttpStatusCode.OK), rework.Body);
        var issued = LastIssued();
        Assert.That(issued.DeviceId, Is.EqualTo(id));
        Assert.That(issued.Kind, Is.EqualTo(IssuanceKind.Rework));
        Assert.That(Convert.ToHexString(issued.SupersedesSerial.Span), Is.EqualTo(first.Certificate!.SerialNumber));
        var status = _host.Policy.Find(id)!;
        Assert.That(status.State, Is.EqualTo(DeviceLifecycle.Reworked));
        Assert.That(status.ActiveSerialHex, Is.EqualTo(rework.Certificate!.SerialNumber));

        // A rework may also keep the key (the write failed, the key is still in the secure element), and supersedes the rework.
        var again = await _host.EnrollAsync(id, k2, kind: "rework");
        Assert.That(again.Status, Is.EqualTo(HttpStatusCode.OK), again.Body);
        Assert.That(Convert.ToHexString(LastIssued().SupersedesSerial.Span), Is.EqualTo(rework.Certificate.SerialNumber));
    }

    [Test]
    public async Task Rework_out_of_the_window_is_409()
    {
        string id = NewId();
        using var k1 = NewKey();
        using var k2 = NewKey();
        Assert.That((await _host.EnrollAsync(id, k1)).Status, Is.EqualTo(HttpStatusCode.OK));
        _clock.AdjustTime(_clock.GetUtcNow() + TimeSpan.FromHours(73));
        await Refused(HttpStatusCode.Conflict, "the rework window of device " + id + " closed at", () => _host.EnrollAsync(id, k2, kind: "rework"));
    }

    [Test]
    public async Task Rework_of_an_unknown_device_is_409()
    {
        using var key = NewKey();
        await Refused(HttpStatusCode.Conflict, "has never been enrolled on this factory", () => _host.EnrollAsync(NewId(), key, kind: "rework"));
    }

    [Test]
    public async Task Refurb_rotate_with_the_same_key_is_409_and_with_a_new_key_supersedes()
    {
        string id = NewId();
        using var k1 = NewKey();
        using var k2 = NewKey();
        var first = await _host.EnrollAsync(id, k1);
        _clock.AdjustTime(_clock.GetUtcNow() + TimeSpan.FromDays(400));
        await Refused(HttpStatusCode.Conflict, "needs a new key pair", () => _host.EnrollAsync(id, k1, kind: "refurb"));
        Assert.That(_host.EntriesAfter(0).Any(e => e.Type == EntryType.EnrollmentRefused && EnrollmentRefused.Parser.ParseFrom(e.Payload).DeviceId == id),
            Is.False, "the same device re-using its own key is not a cloned key: not reported");

        var refurb = await _host.EnrollAsync(id, k2, kind: "refurb");
        Assert.That(refurb.Status, Is.EqualTo(HttpStatusCode.OK), refurb.Body);
        var issued = LastIssued();
        Assert.That(issued.Kind, Is.EqualTo(IssuanceKind.Refurb));
        Assert.That(Convert.ToHexString(issued.SupersedesSerial.Span), Is.EqualTo(first.Certificate!.SerialNumber));
        Assert.That(_host.Policy.Find(id)!.State, Is.EqualTo(DeviceLifecycle.Refurbished));
    }

    [Test]
    public async Task Refurb_of_an_unknown_device_is_409()
    {
        using var key = NewKey();
        await Refused(HttpStatusCode.Conflict, "refurb (RotateKey): device", () => _host.EnrollAsync(NewId(), key, kind: "refurb"));
    }

    [Test]
    public async Task A_cloned_key_is_409_journaled_as_a_refusal_with_its_key_hash_and_nothing_is_issued()
    {
        string a = NewId(), b = NewId();
        using var key = NewKey();
        Assert.That((await _host.EnrollAsync(a, key)).Status, Is.EqualTo(HttpStatusCode.OK));
        ulong before = _host.Journal.Head.Seq;
        await Refused(HttpStatusCode.Conflict, $"is already certified for device {a}; the same key for device {b} is a cloned key", () => _host.EnrollAsync(b, key));

        var after = _host.EntriesAfter(before);
        Assert.That(after, Has.Count.EqualTo(1));
        Assert.That(after[0].Type, Is.EqualTo(EntryType.EnrollmentRefused));
        var refused = EnrollmentRefused.Parser.ParseFrom(after[0].Payload);
        Assert.That(refused.Code, Is.EqualTo(nameof(EnrollmentError.DuplicatePublicKey)));
        Assert.That(refused.DeviceId, Is.EqualTo(b));
        Assert.That(refused.StationId, Is.EqualTo("station-01"));
        Assert.That(refused.PublicKeySha256.ToByteArray(), Is.EqualTo(SHA256.HashData(key.ExportSubjectPublicKeyInfo())));
        Assert.That(_host.Policy.Find(b), Is.Null);
    }

    [Test]
    public async Task Reenroll_with_a_certificate_that_is_not_the_active_one_is_refused_and_with_the_active_one_supersedes()
    {
        string id = NewId();
        using var k1 = NewKey();
        using var k2 = NewKey();
        using var k3 = NewKey();
        var first = await _host.EnrollAsync(id, k1);
        var second = await _host.EnrollAsync(id, k2, kind: "rework");
        Assert.That(second.Status, Is.EqualTo(HttpStatusCode.OK), second.Body);
        var service = _host.App.Services.GetRequiredService<IEnrollmentService>();
        var station = _host.App.Services.GetRequiredService<IStationAuthorizer>().Authorize(TestPki.Default.CertWithKey("station-01"));
        byte[] Body(ECDsa k) => System.Text.Encoding.ASCII.GetBytes(Convert.ToBase64String(
            new CertificateRequest($"CN=x, SERIALNUMBER={id}", k, HashAlgorithmName.SHA256).CreateSigningRequest()));

        ulong before = _host.Journal.Head.Seq;
        var ex = (await Assert.ThrowsAsync<EnrollmentRejectedException>(() => service.EnrollAsync(
            new EnrollmentRequest(station, Body(k3)) { Kind = IssuanceKind.Reenroll, CurrentCertificate = first.Certificate }, CancellationToken.None)))!;
        Assert.That(ex.Code, Is.EqualTo(EnrollmentError.ReenrollMismatch));
        Assert.That(ex.Message, Does.Contain($"certificate serial {first.Certificate!.SerialNumber} is not the active IDevID of device {id} (active serial {second.Certificate!.SerialNumber})"));
        Assert.That(_host.Journal.Head.Seq, Is.EqualTo(before));

        var renewed = await service.EnrollAsync(new EnrollmentRequest(station, Body(k3)) { Kind = IssuanceKind.Reenroll, CurrentCertificate = second.Certificate }, CancellationToken.None);
        var issued = LastIssued();
        Assert.That(issued.Kind, Is.EqualTo(IssuanceKind.Reenroll));
        Assert.That(Convert.ToHexString(issued.SupersedesSerial.Span), Is.EqualTo(second.Certificate.SerialNumber));
        Assert.That(_host.Policy.Find(id)!.ActiveSerialHex, Is.EqualTo(renewed.SerialHex));
    }

    [Test]
    public async Task Eight_stations_enrolling_one_device_at_once_get_exactly_one_certificate()
    {
        string id = NewId();
        var keys = Enumerable.Range(0, 8).Select(_ => NewKey()).ToArray();
        ulong before = _host.Journal.Head.Seq;
        var replies = await Task.WhenAll(keys.Select(k => Task.Run(() => _host.EnrollAsync(id, k))));
        Assert.That(replies.Count(r => r.Status == HttpStatusCode.OK), Is.EqualTo(1));
        Assert.That(replies.Where(r => r.Status != HttpStatusCode.OK).Select(r => r.Status), Is.All.EqualTo(HttpStatusCode.Conflict));
        Assert.That(_host.EntriesAfter(before).Count(e => e.Type == EntryType.CertificateIssued), Is.EqualTo(1));
        foreach (var k in keys)
        {
            k.Dispose();
        }
    }

    [Test]
    public async Task After_a_restart_the_state_is_rebuilt_from_the_journal()
    {
        string enrolled = NewId(), cloneTarget = NewId();
        using var k1 = NewKey();
        using var k2 = NewKey();
        var first = await _host.EnrollAsync(enrolled, k1);
        Assert.That(first.Status, Is.EqualTo(HttpStatusCode.OK));
        string dir = _host.DataDirectory;
        await _host.DisposeAsync();
        _host = await DeviceHost.StartAsync(_clock, dir);

        Assert.That(_host.Policy.Find(enrolled)!.ActiveSerialHex, Is.EqualTo(first.Certificate!.SerialNumber));
        await Refused(HttpStatusCode.Conflict, "already holds an active IDevID", () => _host.EnrollAsync(enrolled, k2));
        await Refused(HttpStatusCode.Conflict, "cloned key", () => _host.EnrollAsync(cloneTarget, k1));
        var rework = await _host.EnrollAsync(enrolled, k2, kind: "rework");
        Assert.That(rework.Status, Is.EqualTo(HttpStatusCode.OK), rework.Body);
        Assert.That(Convert.ToHexString(LastIssued().SupersedesSerial.Span), Is.EqualTo(first.Certificate.SerialNumber));
    }

    [Test]
    public void An_unknown_check_digit_scheme_or_a_bad_rework_window_fails_at_startup_naming_the_key()
    {
        var pki = TestPki.Default;
        var ex = Assert.Throws<OptionsValidationException>(() => FactoryCaApp.Build(pki.PathOf("factoryca.json"), null, o =>
        {
            o.Est.Listen = "https://127.0.0.1:0";
            o.Profile.DeviceIdCheckDigit = "mod11";
        }))!;
        Assert.That(ex.Message, Does.Contain("FactoryCa:Profile:DeviceIdCheckDigit: 'mod11' is not a check-digit scheme"));

        var ex2 = Assert.Throws<OptionsValidationException>(() => FactoryCaApp.Build(pki.PathOf("factoryca.json"),
            s => s.PostConfigure<DevicePolicyOptions>(o => { o.Rework.Window = TimeSpan.Zero; o.Refurb.Mode = "Shred"; }),
            o => o.Est.Listen = "https://127.0.0.1:0"))!;
        Assert.That(ex2.Message, Does.Contain("FactoryCa:Rework:Window: 00:00:00 must be positive"));
        Assert.That(ex2.Message, Does.Contain("FactoryCa:Refurb:Mode: 'Shred' must be RotateKey or NewIdentity"));
    }
}

/// <summary>Refurb with FactoryCa:Refurb:Mode = NewIdentity over EST: the old device's certificate is superseded by the new ID's.</summary>
[NonParallelizable]
public class DeviceNewIdentityEstTests
{
    // The factory's clock: ten minutes ahead of real time (so never behind the station certificates dev-pki.sh makes) and
    // moved only forward, by the test, past the rework window or a year on. AdjustTime moves the wall clock as a real
    // clock change would, without firing a timer for every period skipped (the index catch-up ticks every 2 s).
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow.AddMinutes(10));
    private DeviceHost _host = null!;

    [OneTimeSetUp]
    public async Task Start() => _host = await DeviceHost.StartAsync(_clock, refurbMode: "NewIdentity");

    [OneTimeTearDown]
    public async Task Stop() => await _host.DisposeAsync();

    [Test]
    public async Task A_new_identity_supersedes_the_old_device_and_retires_its_ID()
    {
        string old = DeviceEstTests.NewId(), fresh = DeviceEstTests.NewId();
        using var k1 = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var k2 = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var first = await _host.EnrollAsync(old, k1);
        Assert.That(first.Status, Is.EqualTo(HttpStatusCode.OK));

        ulong before = _host.Journal.Head.Seq;
        var missing = await _host.EnrollAsync(fresh, k2, kind: "refurb");
        Assert.That(missing.Status, Is.EqualTo(HttpStatusCode.Conflict));
        Assert.That(missing.Body, Does.Contain("X-Previous-Device-Id"));
        var sameKey = await _host.EnrollAsync(fresh, k1, kind: "refurb", previousDevice: old);
        Assert.That(sameKey.Status, Is.EqualTo(HttpStatusCode.Conflict));
        Assert.That(sameKey.Body, Does.Contain("a new identity needs a new key pair"));
        var unknownOld = await _host.EnrollAsync(fresh, k2, kind: "refurb", previousDevice: DeviceEstTests.NewId());
        Assert.That(unknownOld.Status, Is.EqualTo(HttpStatusCode.Conflict));
        Assert.That(unknownOld.Body, Does.Contain("has never been enrolled"));
        Assert.That(_host.EntriesAfter(before).Where(e => e.Type == EntryType.CertificateIssued), Is.Empty);

        var refurb = await _host.EnrollAsync(fresh, k2, kind: "refurb", previousDevice: old);
        Assert.That(refurb.Status, Is.EqualTo(HttpStatusCode.OK), refurb.Body);
        var issued = CertificateIssued.Parser.ParseFrom(_host.Journal.ReadFrom(1).Last(e => e.Type == EntryType.CertificateIssued).Payload);
        Assert.That(issued.DeviceId, Is.EqualTo(fresh));
        Assert.That(issued.Kind, Is.EqualTo(IssuanceKind.Refurb));
        Assert.That(Convert.ToHexString(issued.SupersedesSerial.Span), Is.EqualTo(first.Certificate!.SerialNumber));
        Assert.That(_host.Policy.Find(old)!.State, Is.EqualTo(DeviceLifecycle.Retired));
        Assert.That(_host.Policy.Find(fresh)!.State, Is.EqualTo(DeviceLifecycle.Refurbished));

        using var k3 = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var reuse = await _host.EnrollAsync(old, k3);
        Assert.That(reuse.Status, Is.EqualTo(HttpStatusCode.Conflict));
        Assert.That(reuse.Body, Does.Contain($"was retired when its unit was refurbished as {fresh}"));

        // Rebuilt after a restart: the retired ID and the link survive.
        string dir = _host.DataDirectory;
        await _host.DisposeAsync();
        _host = await DeviceHost.StartAsync(_clock, dir, refurbMode: "NewIdentity");
        Assert.That(_host.Policy.Find(old)!.RetiredTo, Is.EqualTo(fresh));
        Assert.That(_host.Policy.Find(fresh)!.ActiveSerialHex, Is.EqualTo(refurb.Certificate!.SerialNumber));
    }
}
