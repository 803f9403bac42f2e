using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using OfflinePki.Hosting.Grpc;
using OfflinePki.Sync;
using OfflinePki.Sync.Grpc;
using OfflinePki.Sync.V1;

namespace OfflinePki.Hosting.Sync;

/// <summary>Maps the mirror's offlinepki.sync.v1.JournalSync service onto Kestrel.</summary>
public static class JournalSyncEndpoints
{
    /// <summary>The gRPC service name.</summary>
    public const string ServiceName = "offlinepki.sync.v1.JournalSync";

    /// <summary>
    /// Maps <c>/offlinepki.sync.v1.JournalSync/GetHead</c> and <c>/offlinepki.sync.v1.JournalSync/PushEntries</c>.
    /// Every call is authorised by <paramref name="callers"/> (client CN → factory id) before the applier runs.
    /// </summary>
    /// <param name="endpoints">The route builder (the mirror's mTLS listener).</param>
    /// <param name="applier">The core sync logic.</param>
    /// <param name="callers">Allowed sync clients; the principal of each is its factory id.</param>
    /// <param name="options">Transport limits; defaults when null (4 MiB messages).</param>
    /// <returns><paramref name="endpoints"/>.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static IEndpointRouteBuilder MapJournalSync(this IEndpointRouteBuilder endpoints, SyncApplier applier, CallerIdentityPolicy callers,
        GrpcServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(applier);
        ArgumentNullException.ThrowIfNull(callers);
        endpoints.MapGrpcUnary(JournalSyncClient.GetHeadPath, GetHeadRequest.Parser, callers,
            (request, call) => Task.FromResult(applier.GetHead(request, call.Caller)), options);
        endpoints.MapGrpcClientStreaming(JournalSyncClient.PushEntriesPath, PushRequest.Parser, callers,
            (requests, call) => applier.ApplyAsync(call.Caller, requests, call.CancellationToken), options);
        return endpoints;
    }
}
