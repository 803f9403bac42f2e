using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;
using OfflinePki.Asn1;
using OfflinePki.FactoryCa;
using OfflinePki.Issuance;
using OfflinePki.Journal;
using OfflinePki.Keys;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Factory;

/// <summary>The host with fault switches on the CA key and the serial source: HSM loss is 503, a lint failure is 500, and neither signs nor journals.</summary>
[NonParallelizable]
public class EstFaultTests
{
    private sealed class SwitchableSerials : ISerialNumberSource
    {
        private readonly RandomSerialNumberSource _random = new();
        public bool Short { get; set; }
        public byte[] Next() => Short ? [0x01, 0x02] : _random.Next();
    }

    private readonly FakeJournalAppender _journal = new();
    private readonly SwitchableSerials _serials = new();
    private CountingSigningKey _key = null!;
    private WebApplication _app = null!;
    private HttpClient _http = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        var pki = TestPki.Default;
        _key = new CountingSigningKey(SoftwareKeyLoader.Load(pki.PathOf("issuing-ca-F1.key")));
        _app = FactoryCaApp.Build(pki.PathOf("factoryca.json"), services =>
        {
            services.AddSingleton<IJournalAppender>(_journal);
            services.AddSingleton<ISerialNumberSource>(_serials);
            services.AddSingleton(new IssuingAuthority(pki.Cert("issuing-ca-F1"), _key, [pki.Root]));
        }, o => o.Est.Listen = "https://127.0.0.1:0");
        await _app.StartAsync();

        // A second real peer: .NET's own TLS client with the station certificate.
        var handler = new HttpClientHandler
        {
            ClientCertificateOptions = ClientCertificateOption.Manual,
            ServerCertificateCustomValidationCallback = (_, cert, _, _) =>
            {
                using var chain = new System.Security.Cryptography.X509Certificates.X509Chain();
                chain.ChainPolicy.TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(pki.Cert("tls-ca"));
                chain.ChainPolicy.RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
                return cert is not null && chain.Build(cert);
            },
        };
        handler.ClientCertificates.Add(pki.CertWithKey("station-02"));
        _http = new HttpClient(handler) { BaseAddress = new Uri(_app.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal))) };
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _http.Dispose();
        await _app.DisposeAsync();
    }

    private async Task<HttpResponseMessage> Enroll(string deviceId)
    {
        var content = new ByteArrayContent(Peers.Base64Body(Peers.P256Csr(deviceId)));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/pkcs10");
        return await _http.PostAsync("/.well-known/est/simpleenroll", content);
    }

    [Test]
    public async Task The_CA_key_going_away_is_503_and_nothing_is_journaled()
    {
        _key.FailWith = new SigningKeyUnavailableException("PKCS#11 token 'factory-ca' not present");
        try
        {
            int before = _journal.Count;
            using var reply = await Enroll("DEV-F001");
            Assert.That((int)reply.StatusCode, Is.EqualTo(503));
            Assert.That(reply.Headers.RetryAfter?.Delta, Is.EqualTo(TimeSpan.FromSeconds(30)));
            Assert.That(await reply.Content.ReadAsStringAsync(), Does.Contain("issuing CA key unavailable: PKCS#11 token 'factory-ca' not present"));
            Assert.That(_journal.Count, Is.EqualTo(before));
        }
        finally
        {
            _key.FailWith = null;
        }

        using var ok = await Enroll("DEV-F002");
        Assert.That((int)ok.StatusCode, Is.EqualTo(200), "recovers once the key is back");
    }

    [Test]
    public async Task A_lint_failure_is_500_never_signed_never_journaled()
    {
        _serials.Short = true;
        try
        {
            int signed = _key.Count, before = _journal.Count;
            using var reply = await Enroll("DEV-F003");
            Assert.That((int)reply.StatusCode, Is.EqualTo(500));
            Assert.That(await reply.Content.ReadAsStringAsync(), Does.Contain("serial_number_at_least_64_bits"));
            Assert.That(_key.Count, Is.EqualTo(signed), "the signer was never called");
            Assert.That(_journal.Count, Is.EqualTo(before));
        }
        finally
        {
            _serials.Short = false;
        }
    }
}
