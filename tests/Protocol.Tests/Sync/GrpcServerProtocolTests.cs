using System.Net;
using System.Net.Http.Headers;
using System.Buffers.Binary;
using Google.Protobuf;
using Grpc.Core;
using NUnit.Framework;
using OfflinePki.Sync;
using OfflinePki.Sync.V1;
using OfflinePki.Tests.Journal;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Sync;

/// <summary>The mirror's JournalSync service (grpc-dotnet) answering requests a well-behaved client would not send (raw HTTP/2 over mTLS).</summary>
[NonParallelizable]
public class GrpcServerProtocolTests
{
    private const string GetHead = "/offlinepki.sync.v1.JournalSync/GetHead";

    private static TestPki Pki => TestPki.Default;

    private static byte[] Frame(IMessage message, byte flag = 0)
    {
        var body = message.ToByteArray();
        var frame = new byte[5 + body.Length];
        frame[0] = flag;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)body.Length);
        body.CopyTo(frame, 5);
        return frame;
    }

    private static async Task<HttpResponseMessage> Send(HttpMessageInvoker http, Uri baseAddress, byte[] body, string contentType = "application/grpc",
        HttpMethod? method = null, string? encoding = null, string? timeout = null)
    {
        var request = new HttpRequestMessage(method ?? HttpMethod.Post, new Uri(baseAddress, GetHead))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        if (method != HttpMethod.Get)
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        }

        request.Headers.TE.Add(new TransferCodingWithQualityHeaderValue("trailers"));
        if (encoding is not null)
        {
            request.Headers.TryAddWithoutValidation("grpc-encoding", encoding);
        }

        if (timeout is not null)
        {
            request.Headers.TryAddWithoutValidation("grpc-timeout", timeout);
        }

        var response = await http.SendAsync(request, CancellationToken.None);
        await response.Content.ReadAsByteArrayAsync();
        return response;
    }

    private static string? Status(HttpResponseMessage r) =>
        r.Headers.TryGetValues("grpc-status", out var h) ? h.First() : r.TrailingHeaders.TryGetValues("grpc-status", out var t) ? t.First() : null;

    private static string? Message(HttpResponseMessage r) =>
        r.Headers.TryGetValues("grpc-message", out var h) ? h.First() : r.TrailingHeaders.TryGetValues("grpc-message", out var t) ? t.First() : null;

    [Test]
    public async Task Server_answers_protocol_violations_with_the_spec_statuses()
    {
        var applier = new SyncApplier(new FakeJournalSink(), JournalTestData.M.Root);
        await using var host = await GrpcTestHost.StartSyncAsync(Pki, applier, configure: o => o.MaxReceiveMessageBytes = 1024);
        using var http = new HttpMessageInvoker(JournalSyncChannel.CreateTlsHandler(host.BaseAddress, Pki.CertWithKey("factory-F1-sync-client"), Pki.Cert("tls-ca"),
            TimeProvider.System));
        var request = new GetHeadRequest { FactoryId = "F1", JournalId = ByteString.CopyFrom(new byte[16]) };
        var ok = Frame(request);

        var good = await Send(http, host.BaseAddress, ok);
        Assert.That((good.StatusCode, Status(good), good.Content.Headers.ContentType?.MediaType), Is.EqualTo((HttpStatusCode.OK, "0", "application/grpc")));

        Assert.That(Status(await Send(http, host.BaseAddress, Frame(request, flag: 1))), Is.Not.EqualTo("0"), "compressed flag without a grpc-encoding is refused");
        Assert.That(Status(await Send(http, host.BaseAddress, Frame(request, flag: 1), encoding: "x-unknown")), Is.EqualTo("12"),
            "a message compressed with an unknown grpc-encoding → UNIMPLEMENTED");
        Assert.That(Status(await Send(http, host.BaseAddress, [0, 0, 0x10, 0, 0])), Is.EqualTo("8"), "declared 1 MiB > 1 KiB limit → RESOURCE_EXHAUSTED");
        Assert.That(Status(await Send(http, host.BaseAddress, [0, 0, 0, 0, 9, 1])), Is.EqualTo("13"), "truncated message → INTERNAL");
        var unparsable = await Send(http, host.BaseAddress, [0, 0, 0, 0, 2, 0xFF, 0xFF]);
        Assert.That(Status(unparsable), Is.EqualTo("3"), "unparsable request → INVALID_ARGUMENT");
        Assert.That(Uri.UnescapeDataString(Message(unparsable) ?? ""), Does.Contain("not a valid GetHeadRequest"));
        Assert.That(Status(await Send(http, host.BaseAddress, [])), Is.EqualTo("13"), "unary without a message → INTERNAL");
        Assert.That(Status(await Send(http, host.BaseAddress, [.. ok, .. ok])), Is.EqualTo("13"), "unary with two messages → INTERNAL");
        Assert.That((await Send(http, host.BaseAddress, ok, contentType: "application/json")).StatusCode, Is.EqualTo(HttpStatusCode.UnsupportedMediaType));
        Assert.That((await Send(http, host.BaseAddress, [], method: HttpMethod.Get)).StatusCode, Is.EqualTo(HttpStatusCode.NotFound), "grpc-dotnet maps POST only");

        // A bad field is INVALID_ARGUMENT with the applier's message, mapped at the edge.
        var shortId = await Send(http, host.BaseAddress, Frame(new GetHeadRequest { FactoryId = "F1", JournalId = ByteString.CopyFrom(new byte[3]) }));
        Assert.That((Status(shortId), Uri.UnescapeDataString(Message(shortId) ?? "")), Is.EqualTo(("3", "journal_id must be 16 bytes, got 3")));

        // Our client refuses to send past its own limit.
        using (var small = JournalSyncChannel.Create(host.BaseAddress,
            JournalSyncChannel.CreateTlsHandler(host.BaseAddress, Pki.CertWithKey("factory-F1-sync-client"), Pki.Cert("tls-ca"), TimeProvider.System), maxMessageBytes: 8))
        {
            var big = await Assert.ThrowsAsync<RpcException>(async () => await new JournalSync.JournalSyncClient(small).GetHeadAsync(request, deadline: DateTime.UtcNow.AddSeconds(5)));
            Assert.That(big!.StatusCode, Is.EqualTo(StatusCode.ResourceExhausted));
        }

        // And the server's limit surfaces as RESOURCE_EXHAUSTED through our client.
        using var channel = JournalSyncChannel.Create(host.BaseAddress, Pki.CertWithKey("factory-F1-sync-client"), Pki.Cert("tls-ca"));
        var tooBig = await Assert.ThrowsAsync<RpcException>(async () => await new JournalSync.JournalSyncClient(channel).GetHeadAsync(
            new GetHeadRequest { FactoryId = new string('x', 2000) }, deadline: DateTime.UtcNow.AddSeconds(5)));
        Assert.That(tooBig!.StatusCode, Is.EqualTo(StatusCode.ResourceExhausted));
    }
}
