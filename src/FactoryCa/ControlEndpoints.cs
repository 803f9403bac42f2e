using System.Net.Sockets;
using System.Text.Json;
using Microsoft.Extensions.Options;
using OfflinePki.Hosting.Sync;
using OfflinePki.Journal;
using OfflinePki.Journal.Index;
using OfflinePki.Policy;
using OfflinePki.Sync;

namespace OfflinePki.FactoryCa;

/// <summary>
/// The local control channel: a Unix domain socket at FactoryCa:DataDirectory/control.sock (mode 0600 through the
/// directory's permissions), never a TCP port. The CLI verbs <c>sync-now</c> and <c>status</c> talk to a running
/// daemon through it. Requests arriving over TCP get 404.
/// </summary>
public static class ControlEndpoints
{
    /// <summary>File name of the control socket inside the data directory.</summary>
    public const string SocketName = "control.sock";

    /// <summary>The socket path for a data directory.</summary>
    public static string SocketPath(string dataDirectory) => Path.Combine(dataDirectory, SocketName);

    /// <summary>Maps POST /control/sync and GET /control/status, reachable on the Unix socket only.</summary>
    public static IEndpointRouteBuilder MapControl(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var group = endpoints.MapGroup("/control").AddEndpointFilter(async (ctx, next) =>
            ctx.HttpContext.Connection.RemoteIpAddress is null ? await next(ctx).ConfigureAwait(false) : Results.NotFound());
        group.MapPost("/order", ImportOrder);
        group.MapGet("/orders", ListOrders);
        group.MapPost("/sync", SyncNow);
        group.MapGet("/status", Status);
        group.MapPost("/checkpoint", Checkpoint);
        group.MapPost("/receipt", Receipt);
        group.MapPost("/revoke-station", RevokeStationAsync);
        return endpoints;
    }

    private static async Task<IResult> SyncNow(JournalSyncClient client, MirrorReceiptStore receipts, CancellationToken cancellationToken)
    {
        try
        {
            var r = await client.SyncOnceAsync(cancellationToken).ConfigureAwait(false);
            return Results.Json(new
            {
                appliedSeq = r.AppliedSeq,
                headHash = Convert.ToHexStringLower(r.HeadHash),
                entriesPushed = r.EntriesPushed,
                entriesApplied = r.EntriesApplied,
                durationMs = (long)r.Duration.TotalMilliseconds,
                confirmedSeq = receipts.ConfirmedSeq,
            });
        }
        catch (Grpc.Core.RpcException ex)
        {
            return Results.Text($"sync failed: {ex.StatusCode}: {ex.Status.Detail}\n", statusCode: StatusCodes.Status502BadGateway);
        }
        catch (Exception ex) when (ex is JournalSyncException or JournalUnavailableException)
        {
            return Results.Text("sync failed: " + ex.Message + "\n", statusCode: StatusCodes.Status502BadGateway);
        }
    }

    private static async Task<IResult> Checkpoint(IJournalAppender journal, CancellationToken cancellationToken)
    {
        try
        {
            var e = await journal.CheckpointAsync(cancellationToken).ConfigureAwait(false);
            return Results.Json(new { checkpointSeq = e.Seq });
        }
        catch (JournalUnavailableException ex)
        {
            return Results.Text("checkpoint failed: " + ex.Message + "\n", statusCode: StatusCodes.Status503ServiceUnavailable);
        }
    }

    private static async Task<IResult> Receipt(HttpRequest request, MirrorReceiptBook book, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
        try
        {
            var receipt = OfflinePki.Sync.V1.MirrorReceipt.Parser.ParseFrom(buffer.ToArray());
            bool advanced = book.Accept(receipt);
            return Results.Json(new { confirmedSeq = book.Store.ConfirmedSeq, advanced });
        }
        catch (Exception ex) when (ex is MirrorReceiptException or Google.Protobuf.InvalidProtocolBufferException)
        {
            return Results.Text("receipt refused: " + ex.Message + "\n", statusCode: StatusCodes.Status400BadRequest);
        }
    }

    private static async Task<IResult> ImportOrder(HttpRequest request, OfflinePki.Orders.OrderBook book, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
        try
        {
            var r = await book.AcceptAsync(buffer.ToArray(), "file", cancellationToken).ConfigureAwait(false);
            return Results.Json(new { orderId = r.OrderId, accepted = r.Accepted, quantity = r.Quantity, issued = r.Issued, journalSeq = r.JournalSeq });
        }
        catch (OfflinePki.Orders.OrderRejectedException ex)
        {
            return Results.Text($"order refused ({ex.Fault}): {ex.Message}\n", statusCode: StatusCodes.Status400BadRequest);
        }
        catch (JournalUnavailableException ex)
        {
            return Results.Text("order not accepted, the journal is unavailable: " + ex.Message + "\n", statusCode: StatusCodes.Status503ServiceUnavailable);
        }
    }

    private static IResult ListOrders(OfflinePki.Orders.OrderBook book) => Results.Json(book.Snapshot().Select(s => new
    {
        orderId = s.Order.OrderId,
        sku = s.Order.Sku,
        profile = s.Order.Profile,
        quantity = s.Order.Quantity,
        issued = s.Issued,
        inFlight = s.InFlight,
        remaining = s.Remaining,
        notBefore = s.Order.NotBefore,
        notAfter = s.Order.NotAfter,
    }), new JsonSerializerOptions { WriteIndented = true });

    private static IResult Status(JournalWriter journal, FactoryIndex index, JournalSyncWorker sync, IOptions<FactoryCaOptions> options, DivergenceGate divergence,
        MirrorReceiptStore receipts, Keys.KeyHealthBoard keyBoard)
    {
        var keys = keyBoard.Check();
        var health = journal.Health;
        var last = sync.LastSuccess;
        var d = divergence.Status();
        var receipt = receipts.Latest;
        return Results.Json(new
        {
            factoryId = options.Value.FactoryId,
            // Ready: every key (CA, journal signer, TLS) signed its probe now; else the reasons name each key, never a PIN.
            ready = keys.All(k => k.Available) && journal.Health.IsHealthy,
            keys = keys.Select(k => new { configKey = k.ConfigKey, backend = k.Backend, location = k.Location, available = k.Available, reason = k.Reason }),
            journal = new
            {
                id = Convert.ToHexStringLower(journal.Anchor.JournalId),
                headSeq = journal.Head.Seq,
                headHash = Convert.ToHexStringLower(journal.Head.Hash),
                healthy = journal.Health.IsHealthy,
                failure = health.Failure,
                appends = journal.Appends,
                fsyncs = journal.Fsyncs,
                checkpoints = journal.Checkpoints,
            },
            index = new { appliedSeq = index.AppliedSeq, certificatesIssued = index.CountIssued() },
            sync = new
            {
                lastSuccessAt = last?.At,
                mirrorSeq = last?.Result.AppliedSeq,
                lastError = sync.LastError,
                forkDetected = sync.ForkDetected,
            },
            divergence = new
            {
                mode = divergence.Options.Mode.ToString(),
                confirmedSeq = d.ConfirmedSeq,
                receiptTime = receipt is null ? (DateTimeOffset?)null : JournalCodec.FromUnixMicros(receipt.TimeUnixMicros),
                unconfirmedEntries = d.UnconfirmedEntries,
                oldestUnconfirmedAt = d.OldestUnconfirmedAt,
                unconfirmedAgeSeconds = (long)d.UnconfirmedAge.TotalSeconds,
                maxUnconfirmedEntries = divergence.Options.MaxUnconfirmedEntries,
                maxUnconfirmedAgeSeconds = (long)divergence.Options.MaxUnconfirmedAge.TotalSeconds,
                exceeded = d.Exceeded,
                lineStopped = d.Exceeded is not null && divergence.Options.Mode == DivergenceMode.StopTheLine,
            },
        }, new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>An HttpClient that talks to the control socket of the daemon owning <paramref name="dataDirectory"/>.</summary>
    public static HttpClient CreateClient(string dataDirectory)
    {
        string path = SocketPath(dataDirectory);
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return new HttpClient(handler) { BaseAddress = new Uri("http://factoryca.control/"), Timeout = TimeSpan.FromMinutes(15) };
    }

    /// <summary>POST /control/revoke-station?fingerprint=..&amp;reason=..: revokes (durably), journals, and answers JSON.</summary>
    internal static async Task<IResult> RevokeStationAsync(HttpRequest request, RevokedStationStore store, IJournalAppender journal, CancellationToken cancellationToken)
    {
        string fingerprint = request.Query["fingerprint"].FirstOrDefault() ?? string.Empty;
        string reason = request.Query["reason"].FirstOrDefault() ?? string.Empty;
        RevokedStation entry;
        bool added;
        try
        {
            (entry, added) = store.Revoke(fingerprint, reason);
        }
        catch (ArgumentException ex)
        {
            return Results.Text(StationRevocation.FirstLine(ex.Message) + "\n", statusCode: StatusCodes.Status400BadRequest);
        }

        try
        {
            var seqs = await StationRevocation.JournalPendingAsync(journal, store, cancellationToken).ConfigureAwait(false);
            return Results.Json(new { fingerprint = entry.Sha256, added, journalSeq = seqs.TryGetValue(entry.Sha256, out var seq) ? seq : (ulong?)null });
        }
        catch (JournalUnavailableException ex)
        {
            return Results.Text($"revoked (in force, in {store.FilePath}) but not journaled yet: {ex.Message}\n", statusCode: StatusCodes.Status503ServiceUnavailable);
        }
    }
}
