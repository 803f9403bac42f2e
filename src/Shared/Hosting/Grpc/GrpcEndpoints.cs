using System.Runtime.CompilerServices;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OfflinePki.Sync.Grpc;

namespace OfflinePki.Hosting.Grpc;

/// <summary>
/// Maps gRPC methods onto ASP.NET Core endpoints, following gRPC over HTTP/2 (PROTOCOL-HTTP2.md): POST over HTTP/2,
/// <c>content-type: application/grpc</c>, length-prefixed messages, <c>grpc-timeout</c> as the call deadline, and the
/// status in the <c>grpc-status</c>/<c>grpc-message</c> trailers (or a trailers-only response for early errors).
/// Every call is authorised by a <see cref="CallerIdentityPolicy"/> before its handler runs.
/// </summary>
public static class GrpcEndpoints
{
    /// <summary>Maps a unary method.</summary>
    /// <typeparam name="TReq">Request message type.</typeparam>
    /// <typeparam name="TResp">Response message type.</typeparam>
    /// <param name="endpoints">The route builder.</param>
    /// <param name="path">Method path, "/package.Service/Method".</param>
    /// <param name="parser">Parser of the request; an unparsable request → INVALID_ARGUMENT.</param>
    /// <param name="callers">Who may call; enforced before <paramref name="handler"/>.</param>
    /// <param name="handler">The handler. Throw <see cref="GrpcException"/> to answer with a status; any other exception → INTERNAL with a generic message (details go to the log only).</param>
    /// <param name="options">Limits; defaults when null.</param>
    /// <returns>The endpoint convention builder.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static IEndpointConventionBuilder MapGrpcUnary<TReq, TResp>(this IEndpointRouteBuilder endpoints, string path,
        MessageParser<TReq> parser, CallerIdentityPolicy callers, Func<TReq, GrpcCallContext, Task<TResp>> handler, GrpcServerOptions? options = null)
        where TReq : IMessage<TReq>
        where TResp : IMessage
    {
        ArgumentNullException.ThrowIfNull(parser);
        ArgumentNullException.ThrowIfNull(handler);
        return Map(endpoints, path, callers, options ?? new GrpcServerOptions(), async (http, call, o) =>
        {
            var body = http.Request.Body;
            var first = await GrpcFraming.ReadMessageAsync(body, o.MaxReceiveMessageBytes, call.CancellationToken).ConfigureAwait(false)
                ?? throw new GrpcException(GrpcStatusCode.Internal, $"{path}: unary call without a request message");
            if (await GrpcFraming.ReadMessageAsync(body, o.MaxReceiveMessageBytes, call.CancellationToken).ConfigureAwait(false) is not null)
            {
                throw new GrpcException(GrpcStatusCode.Internal, $"{path}: unary call with more than one request message");
            }

            var request = GrpcFraming.Parse(parser, first, GrpcStatusCode.InvalidArgument);
            return await handler(request, call).ConfigureAwait(false);
        });
    }

    /// <summary>Maps a client-streaming method. Request messages are read one at a time as the handler enumerates them.</summary>
    /// <typeparam name="TReq">Request message type.</typeparam>
    /// <typeparam name="TResp">Response message type.</typeparam>
    /// <param name="endpoints">The route builder.</param>
    /// <param name="path">Method path, "/package.Service/Method".</param>
    /// <param name="parser">Parser of each request; an unparsable one → INVALID_ARGUMENT.</param>
    /// <param name="callers">Who may call; enforced before <paramref name="handler"/>.</param>
    /// <param name="handler">The handler; enumerate the requests once. Exceptions map as for <see cref="MapGrpcUnary{TReq, TResp}"/>.</param>
    /// <param name="options">Limits; defaults when null.</param>
    /// <returns>The endpoint convention builder.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static IEndpointConventionBuilder MapGrpcClientStreaming<TReq, TResp>(this IEndpointRouteBuilder endpoints, string path,
        MessageParser<TReq> parser, CallerIdentityPolicy callers, Func<IAsyncEnumerable<TReq>, GrpcCallContext, Task<TResp>> handler,
        GrpcServerOptions? options = null)
        where TReq : IMessage<TReq>
        where TResp : IMessage
    {
        ArgumentNullException.ThrowIfNull(parser);
        ArgumentNullException.ThrowIfNull(handler);
        return Map(endpoints, path, callers, options ?? new GrpcServerOptions(), (http, call, o) =>
            handler(GrpcFraming.ReadMessagesAsync(http.Request.Body, parser, o.MaxReceiveMessageBytes, GrpcStatusCode.InvalidArgument, call.CancellationToken), call));
    }

    private static IEndpointConventionBuilder Map<TResp>(IEndpointRouteBuilder endpoints, string path, CallerIdentityPolicy callers,
        GrpcServerOptions options, Func<HttpContext, GrpcCallContext, GrpcServerOptions, Task<TResp>> invoke)
        where TResp : IMessage
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(callers);
        if (!path.StartsWith('/'))
        {
            throw new ArgumentException("A gRPC method path starts with '/' (\"/package.Service/Method\").", nameof(path));
        }

        return endpoints.Map(path, http => HandleAsync(http, path, callers, options, invoke));
    }

    private static async Task HandleAsync<TResp>(HttpContext http, string path, CallerIdentityPolicy callers, GrpcServerOptions options,
        Func<HttpContext, GrpcCallContext, GrpcServerOptions, Task<TResp>> invoke)
        where TResp : IMessage
    {
        var logger = http.RequestServices?.GetService<ILoggerFactory>()?.CreateLogger("OfflinePki.Hosting.Grpc") ?? NullLogger.Instance;
        var request = http.Request;
        var response = http.Response;

        // Transport checks: answered with plain HTTP statuses (the client may not be a gRPC client at all).
        if (!HttpMethods.IsPost(request.Method))
        {
            response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            response.Headers.Allow = "POST";
            return;
        }

        if (!GrpcProtocol.IsGrpcContentType(request.ContentType))
        {
            response.StatusCode = StatusCodes.Status415UnsupportedMediaType;
            response.Headers.Accept = GrpcProtocol.ContentType;
            return;
        }

        if (!HttpProtocol.IsHttp2(request.Protocol))
        {
            // Per PROTOCOL-HTTP2.md a gRPC error needs HTTP/2 trailers; HTTP/1.x cannot carry them reliably.
            response.StatusCode = StatusCodes.Status426UpgradeRequired;
            response.Headers.Upgrade = "h2";
            return;
        }

        // A gRPC stream is bounded per message (MaxReceiveMessageBytes), not as a whole body: lift the listener-wide
        // request body cap, which exists for small HTTP requests (OCSP, EST) and would cut a long journal push.
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            bodyLimit.MaxRequestBodySize = null;
        }

        var time = options.TimeProvider;
        var timeout = options.MaxCallDuration;
        DateTimeOffset? deadline = null;
        var timeoutHeader = request.Headers[GrpcProtocol.TimeoutHeader].ToString();
        if (timeoutHeader.Length > 0)
        {
            if (!GrpcTimeout.TryParse(timeoutHeader, out var clientTimeout))
            {
                await WriteErrorAsync(http, new GrpcException(GrpcStatusCode.Internal, $"malformed grpc-timeout header '{timeoutHeader}'")).ConfigureAwait(false);
                return;
            }

            deadline = time.GetUtcNow() + clientTimeout;
            if (clientTimeout < timeout)
            {
                timeout = clientTimeout;
            }
        }

        var encoding = request.Headers[GrpcProtocol.EncodingHeader].ToString();
        using var deadlineCts = new CancellationTokenSource(timeout, time);
        using var callCts = CancellationTokenSource.CreateLinkedTokenSource(deadlineCts.Token, http.RequestAborted);
        try
        {
            if (encoding.Length > 0 && !encoding.Equals("identity", StringComparison.OrdinalIgnoreCase))
            {
                throw new GrpcException(GrpcStatusCode.Unimplemented, $"grpc-encoding '{encoding}' is not supported; use identity");
            }

            var certificate = http.Connection.ClientCertificate
                ?? await http.Connection.GetClientCertificateAsync(callCts.Token).ConfigureAwait(false);
            var caller = callers.Authorize(certificate);
            var call = new GrpcCallContext(http, caller, path, deadline, callCts.Token);
            var result = await invoke(http, call, options).ConfigureAwait(false);
            var frame = GrpcFraming.Encode(result, options.MaxSendMessageBytes);

            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = GrpcProtocol.ContentType;
            response.Headers[GrpcProtocol.AcceptEncodingHeader] = "identity";
            response.DeclareTrailer(GrpcProtocol.StatusHeader);
            response.DeclareTrailer(GrpcProtocol.MessageHeader);
            await response.Body.WriteAsync(frame, callCts.Token).ConfigureAwait(false);
            response.AppendTrailer(GrpcProtocol.StatusHeader, "0");
        }
        catch (GrpcException ex)
        {
            if (ex.StatusCode is GrpcStatusCode.Internal or GrpcStatusCode.Unknown)
            {
                logger.LogWarning("gRPC {Method} from {Remote}: {Code}: {Detail}", path, http.Connection.RemoteIpAddress, GrpcStatus.CanonicalName(ex.StatusCode), ex.Message);
            }
            else
            {
                logger.LogInformation("gRPC {Method} from {Remote}: {Code}: {Detail}", path, http.Connection.RemoteIpAddress, GrpcStatus.CanonicalName(ex.StatusCode), ex.Message);
            }

            await WriteErrorAsync(http, ex).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (deadlineCts.IsCancellationRequested && !http.RequestAborted.IsCancellationRequested)
        {
            logger.LogInformation("gRPC {Method} from {Remote}: deadline of {Timeout} exceeded", path, http.Connection.RemoteIpAddress, timeout);
            await WriteErrorAsync(http, new GrpcException(GrpcStatusCode.DeadlineExceeded, $"deadline of {timeout} exceeded")).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client went away (RST_STREAM): nobody is left to read a status.
            logger.LogInformation("gRPC {Method} from {Remote}: cancelled by the client", path, http.Connection.RemoteIpAddress);
        }
        catch (IOException ex)
        {
            logger.LogInformation(ex, "gRPC {Method} from {Remote}: connection failed", path, http.Connection.RemoteIpAddress);
            await WriteErrorAsync(http, new GrpcException(GrpcStatusCode.Unavailable, "connection failed while reading the request")).ConfigureAwait(false);
        }
        catch (Exception ex) when (http.RequestAborted.IsCancellationRequested)
        {
            logger.LogInformation("gRPC {Method} from {Remote}: client went away ({Error})", path, http.Connection.RemoteIpAddress, ex.GetType().Name);
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "gRPC {Method} from {Remote}: unhandled error", path, http.Connection.RemoteIpAddress);
            await WriteErrorAsync(http, new GrpcException(GrpcStatusCode.Internal, "internal error; see the server log")).ConfigureAwait(false);
        }
    }

    private static Task WriteErrorAsync(HttpContext http, GrpcException error)
    {
        var response = http.Response;
        var code = ((int)error.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var message = GrpcMessageEncoding.Encode(error.Message);
        if (!response.HasStarted)
        {
            // Trailers-only response: one HEADERS frame with END_STREAM.
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = GrpcProtocol.ContentType;
            response.Headers[GrpcProtocol.StatusHeader] = code;
            if (message.Length > 0)
            {
                response.Headers[GrpcProtocol.MessageHeader] = message;
            }

            return Task.CompletedTask;
        }

        if (response.SupportsTrailers())
        {
            response.AppendTrailer(GrpcProtocol.StatusHeader, code);
            if (message.Length > 0)
            {
                response.AppendTrailer(GrpcProtocol.MessageHeader, message);
            }
        }
        else
        {
            http.Abort();
        }

        return Task.CompletedTask;
    }
}
