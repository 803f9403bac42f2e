using Microsoft.AspNetCore.Http;
using OfflinePki.Sync.Grpc;

namespace OfflinePki.Hosting.Grpc;

/// <summary>What a gRPC handler knows about its call: the verified caller and the call's cancellation.</summary>
public sealed class GrpcCallContext
{
    internal GrpcCallContext(HttpContext httpContext, CallerIdentity caller, string method, DateTimeOffset? deadline, CancellationToken cancellationToken)
    {
        HttpContext = httpContext;
        Caller = caller;
        Method = method;
        Deadline = deadline;
        CancellationToken = cancellationToken;
    }

    /// <summary>The caller, authenticated by mTLS and mapped by the endpoint's <see cref="CallerIdentityPolicy"/>.</summary>
    public CallerIdentity Caller { get; }

    /// <summary>The method path, "/package.Service/Method".</summary>
    public string Method { get; }

    /// <summary>When the client's <c>grpc-timeout</c> expires, or null if it sent none.</summary>
    public DateTimeOffset? Deadline { get; }

    /// <summary>Fires when the client goes away or the deadline passes.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>The underlying HTTP context (for the remote address in logs; avoid using it for logic).</summary>
    public HttpContext HttpContext { get; }
}
