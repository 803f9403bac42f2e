using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Health.V1;
using NUnit.Framework;
using OfflinePki.Hosting.Sync;
using OfflinePki.Sync;
using OfflinePki.Sync.V1;
using OfflinePki.Tests.Journal;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Sync;

/// <summary>The sync port on grpc-dotnet: slow pushes, the mTLS caller check without AIA fetching, and the standard health service.</summary>
[NonParallelizable]
public class SyncTransportTests
{
    private static TestPki Pki => TestPki.Default;

    private static GetHeadRequest HeadRequest => new() { FactoryId = "F1", JournalId = ByteString.CopyFrom(new byte[16]) };

    [Test]
    public async Task A_push_slower_than_kestrels_minimum_body_rate_is_not_cut()
    {
        var sink = new FakeJournalSink();
        await using var host = await GrpcTestHost.StartSyncAsync(Pki, new SyncApplier(sink, JournalTestData.M.Root));
        var b = new JournalTestData.Builder();
        b.AddCertificate("SLOW-1");
        b.AddCheckpoint();
        using var channel = JournalSyncChannel.Create(host.BaseAddress, Pki.CertWithKey("factory-F1-sync-client"), Pki.Cert("tls-ca"));
        var started = Stopwatch.StartNew();
        using var call = new JournalSync.JournalSyncClient(channel).PushEntries(deadline: DateTime.UtcNow.AddSeconds(60));

        // About 30 bytes in the first 11 s: far under Kestrel's default 240 B/s (5 s grace), which grpc-dotnet lifts for client streams.
        await call.RequestStream.WriteAsync(new PushRequest { Metadata = new PushMetadata { JournalId = ByteString.CopyFrom(b.JournalId), FactoryId = "F1", FirstSeq = 1 } });
        await Task.Delay(TimeSpan.FromSeconds(11));
        foreach (var entry in b.Entries)
        {
            var batch = new EntryBatch();
            batch.Entries.Add(entry);
            await call.RequestStream.WriteAsync(new PushRequest { Entries = batch });
        }

        await call.RequestStream.CompleteAsync();
        var response = await call.ResponseAsync;
        Assert.That(started.Elapsed, Is.GreaterThan(TimeSpan.FromSeconds(10)));
        Assert.That((response.AppliedSeq, response.EntriesApplied), Is.EqualTo((b.Head.Seq, b.Head.Seq)));
        Assert.That(sink.EntryCount, Is.EqualTo((int)b.Head.Seq));
    }

    [Test]
    public async Task A_client_certificate_with_an_aia_url_is_refused_without_fetching_it()
    {
        using var listener = new SlowListener();
        using var leaf = UntrustedClientWithAia($"http://127.0.0.1:{listener.Port}/ca.crt");
        var policy = GrpcTestHost.SyncCallers(Pki);

        // The policy alone: refused at once, nothing fetched.
        var watch = Stopwatch.StartNew();
        var refused = Assert.Throws<CallerRejectedException>(() => policy.Authorize(leaf));
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromMilliseconds(500)), "no AIA download");
        Assert.That((refused!.NoCertificate, refused.Message), Is.EqualTo((false, refused.Message)));
        Assert.That(refused.Message, Does.Contain("CN=factory-F1-sync").And.Contain("PartialChain"));

        // Over the wire: the TLS layer and the interceptor both leave the URL alone.
        var applier = new SyncApplier(new FakeJournalSink(), JournalTestData.M.Root);
        await using var host = await GrpcTestHost.StartSyncAsync(Pki, applier);
        using (var good = JournalSyncChannel.Create(host.BaseAddress, Pki.CertWithKey("factory-F1-sync-client"), Pki.Cert("tls-ca")))
        {
            var head = await new JournalSync.JournalSyncClient(good).GetHeadAsync(HeadRequest, deadline: DateTime.UtcNow.AddSeconds(10));
            Assert.That(head.Known, Is.False, "warm-up call");
        }

        var handler = JournalSyncChannel.CreateTlsHandler(host.BaseAddress, Pki.CertWithKey("factory-F1-sync-client"), Pki.Cert("tls-ca"), TimeProvider.System);
        handler.SslOptions.ClientCertificates = null;
        handler.SslOptions.ClientCertificateContext = SslStreamCertificateContext.Create(leaf, null, offline: true);
        using var channel = JournalSyncChannel.Create(host.BaseAddress, handler);
        watch.Restart();
        var denied = await Assert.ThrowsAsync<RpcException>(async () =>
            await new JournalSync.JournalSyncClient(channel).GetHeadAsync(HeadRequest, deadline: DateTime.UtcNow.AddSeconds(20)));
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(1)), "refused well under a second");
        Assert.That(denied!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied), denied.Status.Detail);
        Assert.That(denied.Status.Detail, Does.Contain("client certificate CN=factory-F1-sync is not a valid client certificate"));
        Assert.That(listener.Connections, Is.Zero, "the AIA caIssuers URL was never dialled");
    }

    [Test]
    public async Task The_sync_port_serves_the_standard_health_service()
    {
        var applier = new SyncApplier(new FakeJournalSink(), JournalTestData.M.Root);
        await using var host = await GrpcTestHost.StartSyncAsync(Pki, applier);

        using var channel = JournalSyncChannel.Create(host.BaseAddress, Pki.CertWithKey("factory-F1-sync-client"), Pki.Cert("tls-ca"));
        var health = new Health.HealthClient(channel);
        foreach (var service in new[] { "", "offlinepki.sync.v1.JournalSync" })
        {
            var reply = await health.CheckAsync(new HealthCheckRequest { Service = service }, deadline: DateTime.UtcNow.AddSeconds(10));
            Assert.That(reply.Status, Is.EqualTo(HealthCheckResponse.Types.ServingStatus.Serving), service);
        }

        var unknown = await Assert.ThrowsAsync<RpcException>(async () =>
            await health.CheckAsync(new HealthCheckRequest { Service = "no.such.Service" }, deadline: DateTime.UtcNow.AddSeconds(10)));
        Assert.That(unknown!.StatusCode, Is.EqualTo(StatusCode.NotFound));

        // python3-grpcio, without a client certificate: health answers, the sync methods do not.
        var py = PythonGrpc.Call(Pki, host.Port, "none", "unary", "/grpc.health.v1.Health/Check", TimeSpan.FromSeconds(10),
            new HealthCheckRequest { Service = "offlinepki.sync.v1.JournalSync" }.ToByteArray());
        Assert.That(py.Code, Is.EqualTo("OK"), py.Details);
        Assert.That(HealthCheckResponse.Parser.ParseFrom(py.Response).Status, Is.EqualTo(HealthCheckResponse.Types.ServingStatus.Serving));
        var anonymous = PythonGrpc.Call(Pki, host.Port, "none", "unary", "/offlinepki.sync.v1.JournalSync/GetHead", TimeSpan.FromSeconds(10), HeadRequest.ToByteArray());
        Assert.That(anonymous.Code, Is.EqualTo("UNAUTHENTICATED"), anonymous.Details);
    }

    /// <summary>
    /// A clientAuth certificate with an allowed CN, issued by a CA the mirror does not know, whose AIA caIssuers points at
    /// <paramref name="caIssuersUrl"/>: a chain builder that fetches AIA would dial it to find the issuer.
    /// </summary>
    private static X509Certificate2 UntrustedClientWithAia(string caIssuersUrl)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Unknown Intermediate", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        var now = DateTimeOffset.UtcNow;
        using var ca = caRequest.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=factory-F1-sync", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(new X509AuthorityInformationAccessExtension(null, [caIssuersUrl]));
        using var cert = request.Create(ca, now.AddHours(-1), now.AddDays(1), [1, 2, 3, 4]);
        return cert.CopyWithPrivateKey(key);
    }

    /// <summary>A TCP listener that counts connections and never answers (a slow AIA server).</summary>
    private sealed class SlowListener : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly List<TcpClient> _held = [];
        private int _connections;

        public SlowListener()
        {
            _listener.Start();
            _ = AcceptAsync();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public int Connections => Volatile.Read(ref _connections);

        private async Task AcceptAsync()
        {
            try
            {
                while (true)
                {
                    var client = await _listener.AcceptTcpClientAsync();
                    Interlocked.Increment(ref _connections);
                    lock (_held)
                    {
                        _held.Add(client);
                    }
                }
            }
            catch (Exception ex) when (ex is ObjectDisposedException or SocketException)
            {
                // stopped
            }
        }

        public void Dispose()
        {
            _listener.Stop();
            lock (_held)
            {
                _held.ForEach(c => c.Dispose());
            }
        }
    }
}
