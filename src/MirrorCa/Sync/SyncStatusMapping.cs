using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;
using OfflinePki.Sync;

namespace OfflinePki.Hosting.Sync;

/// <summary>
/// The one place where the sync core's exceptions become gRPC statuses (conventions §12, as Boulder's grpc/errors.go):
/// <see cref="SyncRejectedException"/> by its <see cref="SyncFault"/>, <see cref="CallerRejectedException"/> as
/// UNAUTHENTICATED or PERMISSION_DENIED, and anything unexpected as INTERNAL with a generic message (the details go to
/// the server log only, never to the peer).
/// </summary>
public static class SyncStatusMapping
{
    /// <summary>The gRPC status code of a sync fault.</summary>
    /// <param name="fault">The fault.</param>
    /// <returns>
    /// <see cref="SyncFault.InvalidRequest"/> and <see cref="SyncFault.InvalidEntry"/> → INVALID_ARGUMENT;
    /// <see cref="SyncFault.Conflict"/> → FAILED_PRECONDITION; <see cref="SyncFault.PermissionDenied"/> → PERMISSION_DENIED;
    /// <see cref="SyncFault.ResourceExhausted"/> → RESOURCE_EXHAUSTED; <see cref="SyncFault.Unavailable"/> → UNAVAILABLE.
    /// </returns>
    public static StatusCode CodeFor(SyncFault fault) => fault switch
    {
        SyncFault.InvalidRequest or SyncFault.InvalidEntry => StatusCode.InvalidArgument,
        SyncFault.Conflict => StatusCode.FailedPrecondition,
        SyncFault.PermissionDenied => StatusCode.PermissionDenied,
        SyncFault.ResourceExhausted => StatusCode.ResourceExhausted,
        SyncFault.Unavailable => StatusCode.Unavailable,
        _ => StatusCode.Internal,
    };

    /// <summary>
    /// The status a handler's exception answers with. An <see cref="RpcException"/> keeps its status; a cancelled call is
    /// DEADLINE_EXCEEDED when its deadline passed, else CANCELLED; an <see cref="IOException"/> while reading the request
    /// is UNAVAILABLE; anything else is INTERNAL "internal error; see the server log".
    /// </summary>
    /// <param name="exception">What the handler threw.</param>
    /// <param name="context">The call.</param>
    /// <param name="now">The current time, to tell a passed deadline from a cancellation.</param>
    /// <returns>The status to send.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static Status StatusFor(Exception exception, ServerCallContext context, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(exception);
        ArgumentNullException.ThrowIfNull(context);
        return exception switch
        {
            RpcException rpc => rpc.Status,
            SyncRejectedException rejected => new Status(CodeFor(rejected.Fault), rejected.Message),
            CallerRejectedException caller => new Status(caller.NoCertificate ? StatusCode.Unauthenticated : StatusCode.PermissionDenied, caller.Message),
            CallDurationExceededException d => new Status(StatusCode.DeadlineExceeded, d.Message),
            OperationCanceledException when context.Deadline <= now.UtcDateTime => new Status(StatusCode.DeadlineExceeded, "deadline exceeded"),
            OperationCanceledException => new Status(StatusCode.Cancelled, "call cancelled"),
            IOException => new Status(StatusCode.Unavailable, "connection failed while reading the request"),
            _ => new Status(StatusCode.Internal, "internal error; see the server log"),
        };
    }
}

/// <summary>A call ran longer than the server's own limit (<see cref="JournalSyncServiceOptions.MaxCallDuration"/>).</summary>
public sealed class CallDurationExceededException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="limit">The limit that passed.</param>
    /// <param name="inner">The cancellation it caused.</param>
    public CallDurationExceededException(TimeSpan limit, Exception? inner = null)
        : base($"deadline of {limit} exceeded (the server's limit on one call)", inner)
    {
    }
}

/// <summary>
/// Server interceptor that applies <see cref="SyncStatusMapping"/> to every unary and client-streaming handler of a
/// service, and logs each refusal once: INTERNAL and UNKNOWN at Warning (or Error with the exception when unexpected),
/// the rest at Information. Register it first, so it also maps what later interceptors throw.
/// </summary>
public sealed class SyncErrorInterceptor : Interceptor
{
    private readonly ILogger _logger;
    private readonly TimeProvider _time;

    /// <summary>Creates the interceptor.</summary>
    /// <param name="logger">Where refusals are logged (no secrets are logged: the messages are the ones sent to the peer).</param>
    /// <param name="timeProvider">Clock to tell a passed deadline; <see cref="TimeProvider.System"/> when null.</param>
    /// <exception cref="ArgumentNullException"><paramref name="logger"/> is null.</exception>
    public SyncErrorInterceptor(ILogger<SyncErrorInterceptor> logger, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(logger);
        _logger = logger;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <inheritdoc />
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        try
        {
            return await continuation(request, context).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            throw Map(ex, context);
        }
    }

    /// <inheritdoc />
    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        try
        {
            return await continuation(requestStream, context).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            throw Map(ex, context);
        }
    }

    private RpcException Map(Exception ex, ServerCallContext context)
    {
        var status = SyncStatusMapping.StatusFor(ex, context, _time.GetUtcNow());
        var remote = context.Peer;
        if (status.StatusCode == StatusCode.Internal && ex is not RpcException)
        {
            _logger.LogError(ex, "gRPC {Method} from {Remote}: unhandled error", context.Method, remote);
        }
        else if (status.StatusCode is StatusCode.Internal or StatusCode.Unknown)
        {
            _logger.LogWarning("gRPC {Method} from {Remote}: {Code}: {Detail}", context.Method, remote, status.StatusCode, status.Detail);
        }
        else
        {
            _logger.LogInformation("gRPC {Method} from {Remote}: {Code}: {Detail}", context.Method, remote, status.StatusCode, status.Detail);
        }

        return ex as RpcException is { } same && same.Status.StatusCode == status.StatusCode ? same : new RpcException(status);
    }
}
