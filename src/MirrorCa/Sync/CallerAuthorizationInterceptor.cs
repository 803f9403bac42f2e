using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.Http;
using OfflinePki.Sync;

namespace OfflinePki.Hosting.Sync;

/// <summary>
/// Server interceptor that authenticates and authorises every call of a service with one <see cref="CallerIdentityPolicy"/>
/// (conventions §9) before its handler runs: the TLS client certificate (from <c>ServerCallContext.GetHttpContext()</c>)
/// must chain to the client CA with the clientAuth EKU, and its CN must be allowed. The caller is then available to the
/// handler through <see cref="Caller"/>. A refused caller gets UNAUTHENTICATED or PERMISSION_DENIED (through
/// <see cref="SyncErrorInterceptor"/>), with a message that says what to do.
/// </summary>
public sealed class CallerAuthorizationInterceptor : Interceptor
{
    private static readonly object CallerKey = new();
    private readonly CallerIdentityPolicy _policy;

    /// <summary>Creates the interceptor.</summary>
    /// <param name="policy">Who may call the service.</param>
    /// <exception cref="ArgumentNullException"><paramref name="policy"/> is null.</exception>
    public CallerAuthorizationInterceptor(CallerIdentityPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        _policy = policy;
    }

    /// <summary>
    /// Authenticates the caller of <paramref name="context"/> with <paramref name="policy"/> and records it on the call.
    /// </summary>
    /// <param name="context">The call (served by ASP.NET Core).</param>
    /// <param name="policy">Who may call.</param>
    /// <returns>The caller.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="CallerRejectedException">No client certificate, or it is refused.</exception>
    public static async Task<CallerIdentity> AuthorizeAsync(ServerCallContext context, CallerIdentityPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(policy);
        var http = context.GetHttpContext();
        var certificate = http.Connection.ClientCertificate
            ?? await http.Connection.GetClientCertificateAsync(context.CancellationToken).ConfigureAwait(false);
        var caller = policy.Authorize(certificate);
        context.UserState[CallerKey] = caller;
        return caller;
    }

    /// <summary>The caller this interceptor authorised for <paramref name="context"/>.</summary>
    /// <param name="context">The call.</param>
    /// <returns>The caller.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="context"/> is null.</exception>
    /// <exception cref="InvalidOperationException">No caller was authorised: the service is mapped without this interceptor (fail closed).</exception>
    public static CallerIdentity Caller(ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.UserState.TryGetValue(CallerKey, out var caller) && caller is CallerIdentity identity
            ? identity
            : throw new InvalidOperationException($"{context.Method}: no authorised caller; the service must be registered with a {nameof(CallerAuthorizationInterceptor)}");
    }

    /// <inheritdoc />
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        await AuthorizeAsync(context, _policy).ConfigureAwait(false);
        return await continuation(request, context).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        await AuthorizeAsync(context, _policy).ConfigureAwait(false);
        return await continuation(requestStream, context).ConfigureAwait(false);
    }
}
