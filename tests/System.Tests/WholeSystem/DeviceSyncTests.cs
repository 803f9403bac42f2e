using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;
using OfflinePki.FactoryCa;
using OfflinePki.MirrorCa;
using OfflinePki.Registry;
using OfflinePki.Revocation;
using OfflinePki.Sync;
using OfflinePki.Tests.Mirror;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.WholeSystem;

/// <summary>
/// Rework, refurb and cloned keys from the factory to the mirror: both daemons on loopback, EST over mTLS, gRPC sync.
/// The mirror revokes each superseded certificate with reason superseded (checked with openssl ocsp and the CRL),
/// audits it as sync:F1, records the device states, and shows the cloned key in `MirrorCa status`; a second sync changes nothing.
/// </summary>
[NonParallelizable]
public class DeviceSyncTests
{
    private TestPki _pki = null!;
    private BothDaemons _daemons = null!;
    private WebApplication _mirror = null!;
    private WebApplication _factory = null!;
    private HttpClient _station = null!;
    private string _mirrorHttp = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _pki = TestPki.Create("F1");
        _daemons = await BothDaemons.StartAsync(_pki);
        _mirror = _daemons.Mirror;
        _factory = _daemons.Factory;
        _mirrorHttp = _daemons.MirrorHttp;
        _station = _pki.MtlsClient("station-01");
        _station.BaseAddress = new Uri(_daemons.FactoryHttps);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _station.Dispose();
        await _daemons.DisposeAsync();
    }

    private async Task<(HttpStatusCode Status, X509Certificate2? Cert, string Body)> Enroll(string deviceId, ECDsa key, string? kind = null)
    {
        var csr = new CertificateRequest($"CN=x, SERIALNUMBER={deviceId}", key, HashAlgorithmName.SHA256).CreateSigningRequest();
        using var content = new StringContent(Convert.ToBase64String(csr));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/pkcs10");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/.well-known/est/simpleenroll") { Content = content };
        if (kind is not null)
        {
            request.Headers.Add(EstEndpoints.IssuanceKindHeader, kind);
        }

        using var response = await _station.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.OK)
        {
            return (response.StatusCode, null, body);
        }

        var pem = Tool.Run("openssl", ["pkcs7", "-inform", "DER", "-print_certs"], stdin: Convert.FromBase64String(body)).EnsureSuccess("pkcs7").StdOut;
        return (response.StatusCode, X509Certificate2.CreateFromPem(pem), body);
    }

    private string Ocsp(X509Certificate2 cert)
    {
        string path = _pki.PathOf($"dev-ocsp-{cert.SerialNumber}.pem");
        File.WriteAllText(path, cert.ExportCertificatePem());
        var r = Tool.OpenSsl("ocsp", "-issuer", _pki.PathOf("issuing-ca-F1.crt"), "-cert", path, "-url", _mirrorHttp + "/ocsp",
            "-CAfile", _pki.PathOf("root-ca.crt")).EnsureSuccess("openssl ocsp");
        Assert.That(r.StdErr + r.StdOut, Does.Contain("Response verify OK"));
        return r.StdOut;
    }

    [Test]
    public async Task The_mirror_revokes_superseded_certificates_records_device_states_and_reports_cloned_keys()
    {
        using var k1 = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var k2 = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var k3 = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var k4 = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var initial = await Enroll("SYNC-A1", k1);
        var rework = await Enroll("SYNC-A1", k2, "rework");
        var other = await Enroll("SYNC-B1", k3);
        var refurb = await Enroll("SYNC-B1", k4, "refurb");
        Assert.That(new[] { initial.Status, rework.Status, other.Status, refurb.Status }, Is.All.EqualTo(HttpStatusCode.OK), rework.Body + refurb.Body);
        var clone = await Enroll("SYNC-C1", k2);
        Assert.That(clone.Status, Is.EqualTo(HttpStatusCode.Conflict), clone.Body);

        Assert.That(await SyncNowCommand.RunAsync(_pki.PathOf("factoryca.json"), CancellationToken.None), Is.EqualTo(0));
        var registry = _mirror.Services.GetRequiredService<MirrorRegistry>();
        byte[] issuer = IssuerHashes.KeyHash(_pki.Cert("issuing-ca-F1"));

        // Superseded: revoked with reason superseded; the replacements are good.
        foreach (var (old, successor) in new[] { (initial.Cert!, rework.Cert!), (other.Cert!, refurb.Cert!) })
        {
            var status = registry.GetStatus(issuer, Convert.FromHexString(old.SerialNumber));
            Assert.That(status.State, Is.EqualTo(RegistryCertificateState.Revoked));
            Assert.That(status.Revocation!.Reason, Is.EqualTo(OfflinePki.Revocation.CrlReason.Superseded));
            Assert.That(Ocsp(old), Does.Contain(": revoked").And.Contain("Reason: superseded"));
            Assert.That(Ocsp(successor), Does.Contain(": good"));
        }

        // The CRL (re-published after the revocation) lists both with reason superseded.
        string crlPath = _pki.PathOf("device-sync.crl");
        string crlText = "";
        using var http = new HttpClient();
        for (int i = 0; i < 100 && !(crlText.Contains(initial.Cert!.SerialNumber, StringComparison.Ordinal) && crlText.Contains(other.Cert!.SerialNumber, StringComparison.Ordinal)); i++)
        {
            await File.WriteAllBytesAsync(crlPath, await http.GetByteArrayAsync($"{_mirrorHttp}/crl/F1.crl"));
            crlText = Tool.OpenSsl("crl", "-inform", "DER", "-in", crlPath, "-noout", "-text").EnsureSuccess("openssl crl").StdOut;
            if (!crlText.Contains(initial.Cert!.SerialNumber, StringComparison.Ordinal))
            {
                await Task.Delay(100);
            }
        }

        Assert.That(crlText, Does.Contain(initial.Cert!.SerialNumber).And.Contain(other.Cert!.SerialNumber).And.Contain("Superseded"));
        Assert.That(crlText, Does.Not.Contain(rework.Cert!.SerialNumber));

        // Audit: actor sync:F1, both serials named.
        var audit = registry.ReadAudit().Where(a => a.Action == "supersede").ToList();
        Assert.That(audit, Has.Count.EqualTo(2));
        Assert.That(audit.Select(a => a.Actor), Is.All.EqualTo("sync:F1"));
        Assert.That(audit[0].Detail, Does.Contain($"serial={initial.Cert.SerialNumber}").And.Contain($"superseded_by={rework.Cert.SerialNumber}").And.Contain("kind=reworked"));
        Assert.That(registry.VerifyAudit().Ok, Is.True);

        // Device states.
        Assert.That(registry.GetDevice("F1", "SYNC-A1")!.State, Is.EqualTo(DeviceRegistryState.Reworked));
        Assert.That(registry.GetDevice("F1", "SYNC-A1")!.CurrentSerialHex, Is.EqualTo(rework.Cert.SerialNumber));
        Assert.That(registry.GetDevice("F1", "SYNC-B1")!.State, Is.EqualTo(DeviceRegistryState.Refurbished));
        Assert.That(registry.GetDevice("F1", "SYNC-C1"), Is.Null, "the cloned-key request got nothing");

        // The cloned key is a report, shown by `MirrorCa status`.
        var report = registry.RecentDeviceReports().Single();
        Assert.That(report.Code, Is.EqualTo("DuplicatePublicKey"));
        Assert.That(report.DeviceId, Is.EqualTo("SYNC-C1"));
        Assert.That(report.PublicKeySha256Hex, Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(k2.ExportSubjectPublicKeyInfo()))));
        var (exit, output, _) = MirrorCli.Run("status", "--config", _pki.PathOf("mirrorca.json"));
        Assert.That(exit, Is.Zero);
        Assert.That(output, Does.Contain("ALERT").And.Contain("cloned key: device SYNC-C1 at station station-01"));
        Assert.That(output, Does.Contain("devices: initial 0, reworked 1, refurbished 1"));

        // A second sync is a no-op: nothing revoked twice, no duplicate report.
        long revocationVersion = registry.RevocationVersion;
        var again = await _factory.Services.GetRequiredService<JournalSyncClient>().SyncOnceAsync(CancellationToken.None);
        Assert.That(again.EntriesApplied, Is.Zero);
        Assert.That(registry.RevocationVersion, Is.EqualTo(revocationVersion));
        Assert.That(registry.CountDeviceReports(), Is.EqualTo(1));
    }

    [Test]
    public void A_registry_file_from_before_the_device_tables_opens_and_gains_them()
    {
        string path = Path.Combine(Path.GetTempPath(), "offlinepki-tests", "old-registry-" + Guid.NewGuid().ToString("N")[..8] + ".db");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using (var c = new SqliteConnection($"Data Source={path};Pooling=false"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "CREATE TABLE journals (journal_id BLOB PRIMARY KEY, factory_id TEXT NOT NULL, issuing_ca BLOB NOT NULL, issuer_key_hash BLOB NOT NULL, signer_cert BLOB NOT NULL, head_seq INTEGER NOT NULL, head_hash BLOB NOT NULL);";
            cmd.ExecuteNonQuery();
        }

        using var registry = new MirrorRegistry(path, TimeProvider.System);
        Assert.That(registry.CountDeviceReports(), Is.Zero);
        Assert.That(registry.CountDevicesByState(), Is.Empty);
        Assert.That(registry.GetDevice("F1", "X"), Is.Null);
    }
}
