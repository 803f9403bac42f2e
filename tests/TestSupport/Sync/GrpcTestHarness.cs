global using GrpcStatusCode = global::Grpc.Core.StatusCode;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using OfflinePki.Hosting.Sync;
using OfflinePki.Sync;

// Test harness. GrpcInteropTests.cs (python3-grpcio, both directions) must stay byte-for-byte unchanged: it proves the wire
// did not change when the hand-made gRPC stack was replaced by grpc-dotnet. It was written against the old API's shapes
// (GrpcClient.UnaryAsync, MapGrpcUnary with a caller policy, GrpcException), so these are those shapes, implemented over
// grpc-dotnet: Grpc.Net.Client over the production JournalSyncChannel, and Grpc.AspNetCore with the production
// CallerAuthorizationInterceptor policy check and SyncErrorInterceptor mapping. No framing, trailers or status code of ours.
namespace OfflinePki.Sync.Grpc
{
    /// <summary>A call ended with a non-OK status (test harness; wraps <see cref="global::Grpc.Core.RpcException"/>).</summary>
    internal sealed class GrpcException : Exception
    {
        public GrpcException(GrpcStatusCode statusCode, string message, Exception? inner = null)
            : base(message, inner) => StatusCode = statusCode;

        public GrpcStatusCode StatusCode { get; }
    }

    /// <summary>
    /// Calls any method by path over a production <see cref="JournalSyncChannel"/> (test harness). It is also a channel,
    /// so tests can hand it to <see cref="JournalSyncClient"/>.
    /// </summary>
    internal sealed class GrpcClient : ChannelBase, IDisposable
    {
        private readonly GrpcChannel _channel;

        public GrpcClient(Uri baseAddress, X509Certificate2 clientCertificate, X509Certificate2 serverTrustAnchor)
            : base(baseAddress.Authority) => _channel = JournalSyncChannel.Create(baseAddress, clientCertificate, serverTrustAnchor);

        public override CallInvoker CreateCallInvoker() => _channel.CreateCallInvoker();

        public async Task<TResp> UnaryAsync<TReq, TResp>(string path, TReq request, TimeSpan deadline, CancellationToken cancellationToken = default)
            where TReq : class, IMessage
            where TResp : class, IMessage<TResp>, new()
        {
            try
            {
                return await _channel.CreateCallInvoker().AsyncUnaryCall(MethodFor<TReq, TResp>(MethodType.Unary, path), null,
                    new CallOptions(deadline: DateTime.UtcNow + deadline, cancellationToken: cancellationToken), request);
            }
            catch (RpcException ex)
            {
                throw new GrpcException(ex.StatusCode, ex.Status.Detail, ex);
            }
        }

        public async Task<TResp> ClientStreamingAsync<TReq, TResp>(string path, IAsyncEnumerable<TReq> requests, TimeSpan deadline,
            CancellationToken cancellationToken = default)
            where TReq : class, IMessage
            where TResp : class, IMessage<TResp>, new()
        {
            using var call = _channel.CreateCallInvoker().AsyncClientStreamingCall(MethodFor<TReq, TResp>(MethodType.ClientStreaming, path), null,
                new CallOptions(deadline: DateTime.UtcNow + deadline, cancellationToken: cancellationToken));
            try
            {
                try
                {
                    await foreach (var r in requests.WithCancellation(cancellationToken))
                    {
                        await call.RequestStream.WriteAsync(r, cancellationToken);
                    }

                    await call.RequestStream.CompleteAsync();
                }
                catch (Exception ex) when (ex is RpcException || (ex is InvalidOperationException && call.ResponseAsync.IsCompleted))
                {
                    // The server ended the call: its status is the error.
                }

                return await call.ResponseAsync;
            }
            catch (RpcException ex)
            {
                throw new GrpcException(ex.StatusCode, ex.Status.Detail, ex);
            }
        }

        public void Dispose() => _channel.Dispose();

        private static Method<TReq, TResp> MethodFor<TReq, TResp>(MethodType type, string path)
            where TReq : class, IMessage
            where TResp : class, IMessage<TResp>, new()
        {
            var slash = path.LastIndexOf('/');
            return new Method<TReq, TResp>(type, path[1..slash], path[(slash + 1)..],
                Marshallers.Create<TReq>(m => m.ToByteArray(), _ => throw new NotSupportedException()),
                Marshallers.Create(_ => throw new NotSupportedException(), b => new MessageParser<TResp>(() => new TResp()).ParseFrom(b)));
        }
    }
}

namespace OfflinePki.Hosting.Grpc
{
    /// <summary>What a test handler knows about its call (test harness).</summary>
    internal sealed record GrpcCallContext(CallerIdentity Caller, CancellationToken CancellationToken);

    /// <summary>
    /// Maps test methods by path onto grpc-dotnet (test harness): each call is authorised with the given production
    /// <see cref="CallerIdentityPolicy"/>, and its errors are mapped by the production <see cref="SyncErrorInterceptor"/>.
    /// </summary>
    internal static class GrpcTestEndpoints
    {
        public static void MapGrpcUnary<TReq, TResp>(this IEndpointRouteBuilder endpoints, string path, MessageParser<TReq> parser,
            CallerIdentityPolicy callers, Func<TReq, GrpcCallContext, Task<TResp>> handler)
            where TReq : class, IMessage<TReq>
            where TResp : class, IMessage<TResp>, new()
        {
            endpoints.ServiceProvider.GetRequiredService<TestGrpcMethods>().Add(context => context.AddUnaryMethod(
                Method<TReq, TResp>(MethodType.Unary, path, parser), [],
                async (_, request, call) => await Invoke(call, callers, c => handler(request, c))));
        }

        public static void MapGrpcClientStreaming<TReq, TResp>(this IEndpointRouteBuilder endpoints, string path, MessageParser<TReq> parser,
            CallerIdentityPolicy callers, Func<IAsyncEnumerable<TReq>, GrpcCallContext, Task<TResp>> handler)
            where TReq : class, IMessage<TReq>
            where TResp : class, IMessage<TResp>, new()
        {
            endpoints.ServiceProvider.GetRequiredService<TestGrpcMethods>().Add(context => context.AddClientStreamingMethod(
                Method<TReq, TResp>(MethodType.ClientStreaming, path, parser), [],
                async (_, requests, call) => await Invoke(call, callers, c => handler(requests.ReadAllAsync(call.CancellationToken), c))));
        }

        private static async Task<TResp> Invoke<TResp>(ServerCallContext call, CallerIdentityPolicy callers, Func<GrpcCallContext, Task<TResp>> handler)
        {
            var caller = await CallerAuthorizationInterceptor.AuthorizeAsync(call, callers);
            try
            {
                return await handler(new GrpcCallContext(caller, call.CancellationToken));
            }
            catch (OfflinePki.Sync.Grpc.GrpcException ex)
            {
                throw new RpcException(new Status(ex.StatusCode, ex.Message));
            }
        }

        private static Method<TReq, TResp> Method<TReq, TResp>(MethodType type, string path, MessageParser<TReq> parser)
            where TReq : class, IMessage<TReq>
            where TResp : class, IMessage<TResp>, new()
        {
            var slash = path.LastIndexOf('/');
            return new Method<TReq, TResp>(type, path[1..slash], path[(slash + 1)..],
                Marshallers.Create<TReq>(m => m.ToByteArray(), parser.ParseFrom),
                Marshallers.Create<TResp>(m => m.ToByteArray(), b => new MessageParser<TResp>(() => new TResp()).ParseFrom(b)));
        }
    }

    /// <summary>The test methods mapped so far; bound when the host maps <see cref="TestGrpcService"/>.</summary>
    internal sealed class TestGrpcMethods : IServiceMethodProvider<TestGrpcService>
    {
        private readonly List<Action<ServiceMethodProviderContext<TestGrpcService>>> _methods = [];

        public bool Any => _methods.Count > 0;

        public void Add(Action<ServiceMethodProviderContext<TestGrpcService>> method) => _methods.Add(method);

        public void OnServiceMethodDiscovery(ServiceMethodProviderContext<TestGrpcService> context)
        {
            foreach (var method in _methods)
            {
                method(context);
            }
        }
    }

    /// <summary>The service type the test methods hang on.</summary>
    internal sealed class TestGrpcService
    {
    }
}
