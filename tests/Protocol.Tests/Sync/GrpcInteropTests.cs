using Google.Protobuf;
using Microsoft.AspNetCore.Routing;
using NUnit.Framework;
using OfflinePki.Hosting.Grpc;
using OfflinePki.Sync.Grpc;
using OfflinePki.Sync.V1;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Sync;

/// <summary>Wire compatibility with python3-grpcio, both directions, over mTLS on loopback.</summary>
[NonParallelizable]
public class GrpcInteropTests
{
    private const string Unary = "/test.v1.Echo/Unary";
    private const string Count = "/test.v1.Echo/Count";
    private const string Fail = "/test.v1.Echo/Fail";
    private const string Slow = "/test.v1.Echo/Slow";

    private static TestPki Pki => TestPki.Default;

    private static void MapTestService(IEndpointRouteBuilder e)
    {
        var callers = GrpcTestHost.SyncCallers(Pki);
        e.MapGrpcUnary(Unary, GetHeadRequest.Parser, callers, (req, call) =>
            Task.FromResult(new GetHeadResponse { Known = true, Seq = (ulong)req.FactoryId.Length, Hash = ByteString.CopyFromUtf8(call.Caller.Principal + "/" + call.Caller.ClientName) }));
        e.MapGrpcClientStreaming(Count, PushRequest.Parser, callers, async (requests, call) =>
        {
            ulong n = 0, entries = 0;
            await foreach (var r in requests.WithCancellation(call.CancellationToken))
            {
                n++;
                entries += (ulong)(r.Entries?.Entries.Count ?? 0);
            }

            return new PushResponse { AppliedSeq = n, EntriesApplied = entries };
        });
        e.MapGrpcUnary<GetHeadRequest, GetHeadResponse>(Fail, GetHeadRequest.Parser, callers, (_, _) =>
            throw new GrpcException(GrpcStatusCode.FailedPrecondition, "journal rejected at seq 7: Fork: 100% über"));
        e.MapGrpcUnary<GetHeadRequest, GetHeadResponse>("/test.v1.Echo/Crash", GetHeadRequest.Parser, callers, (_, _) =>
            throw new InvalidOperationException("secret-path /etc/key.pem"));
        e.MapGrpcUnary(Slow, GetHeadRequest.Parser, callers, async (req, call) =>
        {
            await Task.Delay(TimeSpan.FromSeconds(20), call.CancellationToken);
            return new GetHeadResponse();
        });
    }

    private static PushRequest Batch(int n)
    {
        var batch = new EntryBatch();
        for (int i = 0; i < n; i++)
        {
            batch.Entries.Add(new OfflinePki.Journal.V1.JournalEntry { Seq = (ulong)i + 1 });
        }

        return new PushRequest { Entries = batch };
    }

    [Test]
    public async Task Python_client_calls_our_server_unary_streaming_errors_and_deadline()
    {
        await using var host = await GrpcTestHost.StartAsync(Pki, MapTestService);
        var timeout = TimeSpan.FromSeconds(10);

        var unary = PythonGrpc.Call(Pki, host.Port, "factory-F1-sync-client", "unary", Unary, timeout,
            new GetHeadRequest { FactoryId = "F1xyz" }.ToByteArray());
        Assert.That(unary.Code, Is.EqualTo("OK"), unary.Details);
        var head = GetHeadResponse.Parser.ParseFrom(unary.Response);
        Assert.That(head.Seq, Is.EqualTo(5));
        Assert.That(head.Hash.ToStringUtf8(), Is.EqualTo("F1/factory-F1-sync"));

        var stream = PythonGrpc.Call(Pki, host.Port, "factory-F1-sync-client", "stream", Count, timeout,
            new PushRequest { Metadata = new PushMetadata { FactoryId = "F1" } }.ToByteArray(), Batch(3).ToByteArray(), Batch(500).ToByteArray());
        Assert.That(stream.Code, Is.EqualTo("OK"), stream.Details);
        var pushed = PushResponse.Parser.ParseFrom(stream.Response);
        Assert.That((pushed.AppliedSeq, pushed.EntriesApplied), Is.EqualTo((3UL, 503UL)));

        var fail = PythonGrpc.Call(Pki, host.Port, "factory-F1-sync-client", "unary", Fail, timeout, []);
        Assert.That(fail.Code, Is.EqualTo("FAILED_PRECONDITION"));
        Assert.That(fail.Details, Is.EqualTo("journal rejected at seq 7: Fork: 100% über"));

        var crash = PythonGrpc.Call(Pki, host.Port, "factory-F1-sync-client", "unary", "/test.v1.Echo/Crash", timeout, []);
        Assert.That(crash.Code, Is.EqualTo("INTERNAL"));
        Assert.That(crash.Details, Does.Not.Contain("secret"));

        var slow = PythonGrpc.Call(Pki, host.Port, "factory-F1-sync-client", "unary", Slow, TimeSpan.FromMilliseconds(300), []);
        Assert.That(slow.Code, Is.EqualTo("DEADLINE_EXCEEDED"));

        var anonymous = PythonGrpc.Call(Pki, host.Port, "none", "unary", Unary, timeout, []);
        Assert.That(anonymous.Code, Is.EqualTo("UNAUTHENTICATED"), anonymous.Details);

        var station = PythonGrpc.Call(Pki, host.Port, "station-01", "unary", Unary, timeout, []);
        Assert.That(station.Code, Is.EqualTo("PERMISSION_DENIED"));
        Assert.That(station.Details, Does.Contain("CN=station-01"));
    }

    [Test]
    public async Task Our_client_calls_python_server()
    {
        using var server = PythonGrpc.StartServer(Pki);
        using var client = new GrpcClient(new Uri($"https://127.0.0.1:{server.Port}/"), Pki.CertWithKey("factory-F1-sync-client"), Pki.Cert("tls-ca"));
        var deadline = TimeSpan.FromSeconds(10);

        var req = new GetHeadRequest { FactoryId = "F1", JournalId = ByteString.CopyFrom(Enumerable.Range(0, 16).Select(i => (byte)i).ToArray()) };
        var echo = await client.UnaryAsync<GetHeadRequest, GetHeadRequest>("/test.v1.Echo/Unary", req, deadline);
        Assert.That(echo, Is.EqualTo(req));

        var empty = await client.UnaryAsync<GetHeadRequest, GetHeadRequest>("/test.v1.Echo/Unary", new GetHeadRequest(), deadline);
        Assert.That(empty, Is.EqualTo(new GetHeadRequest()));

        var requests = new[] { new PushRequest { Metadata = new PushMetadata { FactoryId = "F1" } }, Batch(10), Batch(2000) };
        var counted = await client.ClientStreamingAsync<PushRequest, PushResponse>("/test.v1.Echo/Count", requests.ToAsyncEnumerable(), deadline);
        Assert.That(counted.AppliedSeq, Is.EqualTo(3));
        Assert.That(counted.EntriesApplied, Is.EqualTo((ulong)requests.Sum(r => r.CalculateSize())));

        var fail = await GrpcAssert.ThrowsAsync(() => client.UnaryAsync<GetHeadRequest, GetHeadRequest>("/test.v1.Echo/Fail", req, deadline));
        Assert.That(fail.StatusCode, Is.EqualTo(GrpcStatusCode.FailedPrecondition));
        Assert.That(fail.Message, Is.EqualTo("journal fork at seq 7: über 100% wrong"));

        var missing = await GrpcAssert.ThrowsAsync(() => client.UnaryAsync<GetHeadRequest, GetHeadRequest>("/test.v1.Echo/Nope", req, deadline));
        Assert.That(missing.StatusCode, Is.EqualTo(GrpcStatusCode.Unimplemented));

        var slow = await GrpcAssert.ThrowsAsync(() => client.UnaryAsync<GetHeadRequest, GetHeadRequest>("/test.v1.Echo/Slow", req, TimeSpan.FromMilliseconds(300)));
        Assert.That(slow.StatusCode, Is.EqualTo(GrpcStatusCode.DeadlineExceeded));
    }

    [Test]
    public async Task Our_client_calls_our_server_and_rejects_untrusted_server()
    {
        await using var host = await GrpcTestHost.StartAsync(Pki, MapTestService);
        using var client = new GrpcClient(host.BaseAddress, Pki.CertWithKey("factory-F1-sync-client"), Pki.Cert("tls-ca"));
        var head = await client.UnaryAsync<GetHeadRequest, GetHeadResponse>(Unary, new GetHeadRequest { FactoryId = "abc" }, TimeSpan.FromSeconds(10));
        Assert.That(head.Seq, Is.EqualTo(3));

        var pushed = await client.ClientStreamingAsync<PushRequest, PushResponse>(Count, Stream(), TimeSpan.FromSeconds(10));
        Assert.That((pushed.AppliedSeq, pushed.EntriesApplied), Is.EqualTo((41UL, 40UL * 100)));

        var fail = await GrpcAssert.ThrowsAsync(() => client.UnaryAsync<GetHeadRequest, GetHeadResponse>(Fail, new GetHeadRequest(), TimeSpan.FromSeconds(10)));
        Assert.That((fail.StatusCode, fail.Message), Is.EqualTo((GrpcStatusCode.FailedPrecondition, "journal rejected at seq 7: Fork: 100% über")));

        var slow = await GrpcAssert.ThrowsAsync(() => client.UnaryAsync<GetHeadRequest, GetHeadResponse>(Slow, new GetHeadRequest(), TimeSpan.FromMilliseconds(300)));
        Assert.That(slow.StatusCode, Is.EqualTo(GrpcStatusCode.DeadlineExceeded));

        // A server certificate from another CA (the root CA here) is refused: UNAVAILABLE, nothing sent.
        using var wrongTrust = new GrpcClient(host.BaseAddress, Pki.CertWithKey("factory-F1-sync-client"), Pki.Root);
        var untrusted = await GrpcAssert.ThrowsAsync(() => wrongTrust.UnaryAsync<GetHeadRequest, GetHeadResponse>(Unary, new GetHeadRequest(), TimeSpan.FromSeconds(10)));
        Assert.That(untrusted.StatusCode, Is.EqualTo(GrpcStatusCode.Unavailable));

        static async IAsyncEnumerable<PushRequest> Stream()
        {
            yield return new PushRequest { Metadata = new PushMetadata { FactoryId = "F1" } };
            for (int i = 0; i < 40; i++)
            {
                await Task.Yield();
                yield return Batch(100);
            }
        }
    }
}
