using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;
using NUnit.Framework;
using OfflinePki.Hosting.Grpc;
using OfflinePki.Sync.Grpc;
using OfflinePki.Sync.V1;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Sync;

/// <summary>The server adapter's answers to requests a well-behaved client would not send (raw HTTP/2 over mTLS).</summary>
[NonParallelizable]
public class GrpcServerProtocolTests
{
    private const string Echo = "/test.v1.Echo/Unary";

    private static TestPki Pki => TestPki.Default;

    private static async Task<HttpResponseMessage> Send(HttpMessageInvoker http, Uri baseAddress, byte[] body, string contentType = "application/grpc",
        HttpMethod? method = null, string? encoding = null, string? timeout = null)
    {
        var request = new HttpRequestMessage(method ?? HttpMethod.Post, new Uri(baseAddress, Echo))
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

    [Test]
    public async Task Server_answers_protocol_violations_with_the_spec_statuses()
    {
        await using var host = await GrpcTestHost.StartAsync(Pki, e => e.MapGrpcUnary(Echo, GetHeadRequest.Parser, GrpcTestHost.SyncCallers(Pki),
            (r, _) => Task.FromResult(r), new GrpcServerOptions { MaxReceiveMessageBytes = 1024 }));
        using var http = new HttpMessageInvoker(GrpcClient.CreateTlsHandler(host.BaseAddress, Pki.CertWithKey("factory-F1-sync-client"), Pki.Cert("tls-ca"),
            new GrpcClientOptions(), TimeProvider.System));
        var ok = GrpcFraming.Encode(new GetHeadRequest { FactoryId = "F1" }, 1024);

        var good = await Send(http, host.BaseAddress, ok);
        Assert.That((good.StatusCode, Status(good), good.Content.Headers.ContentType?.MediaType), Is.EqualTo((HttpStatusCode.OK, "0", "application/grpc")));

        var compressed = (byte[])ok.Clone();
        compressed[0] = 1;
        Assert.That(Status(await Send(http, host.BaseAddress, compressed)), Is.EqualTo("12"), "compressed flag without negotiated encoding → UNIMPLEMENTED");
        Assert.That(Status(await Send(http, host.BaseAddress, ok, encoding: "gzip")), Is.EqualTo("12"));
        Assert.That(Status(await Send(http, host.BaseAddress, [0, 0, 0, 0x10, 0])), Is.EqualTo("8"), "declared 1 MiB > 1 KiB limit → RESOURCE_EXHAUSTED");
        Assert.That(Status(await Send(http, host.BaseAddress, [0, 0, 0, 0, 9, 1])), Is.EqualTo("13"), "truncated message → INTERNAL");
        Assert.That(Status(await Send(http, host.BaseAddress, [0, 0, 0, 0, 2, 0xFF, 0xFF])), Is.EqualTo("3"), "unparsable request → INVALID_ARGUMENT");
        Assert.That(Status(await Send(http, host.BaseAddress, [])), Is.EqualTo("13"), "unary without a message → INTERNAL");
        Assert.That(Status(await Send(http, host.BaseAddress, [.. ok, .. ok])), Is.EqualTo("13"), "unary with two messages → INTERNAL");
        Assert.That(Status(await Send(http, host.BaseAddress, ok, timeout: "1x")), Is.EqualTo("13"), "malformed grpc-timeout");
        Assert.That((await Send(http, host.BaseAddress, ok, contentType: "application/json")).StatusCode, Is.EqualTo(HttpStatusCode.UnsupportedMediaType));
        Assert.That((await Send(http, host.BaseAddress, [], method: HttpMethod.Get)).StatusCode, Is.EqualTo(HttpStatusCode.MethodNotAllowed));

        // Our client refuses to send past its own limit.
        using var client = new GrpcClient(host.BaseAddress, Pki.CertWithKey("factory-F1-sync-client"), Pki.Cert("tls-ca"), new GrpcClientOptions { MaxSendMessageBytes = 8 });
        var big = await GrpcAssert.ThrowsAsync(() => client.UnaryAsync<GetHeadRequest, GetHeadRequest>(Echo, new GetHeadRequest { FactoryId = "0123456789" }, TimeSpan.FromSeconds(5)));
        Assert.That(big.StatusCode, Is.EqualTo(GrpcStatusCode.ResourceExhausted));

        // And the server's limit surfaces as RESOURCE_EXHAUSTED through our client.
        using var client2 = new GrpcClient(host.BaseAddress, Pki.CertWithKey("factory-F1-sync-client"), Pki.Cert("tls-ca"));
        var tooBig = await GrpcAssert.ThrowsAsync(() => client2.UnaryAsync<GetHeadRequest, GetHeadRequest>(Echo,
            new GetHeadRequest { FactoryId = new string('x', 2000) }, TimeSpan.FromSeconds(5)));
        Assert.That(tooBig.StatusCode, Is.EqualTo(GrpcStatusCode.ResourceExhausted));
    }
}
