using System.Runtime.CompilerServices;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Sync.Grpc;
using OfflinePki.Sync.V1;

namespace OfflinePki.Sync;

/// <summary>The outcome of one successful sync.</summary>
/// <param name="AppliedSeq">The mirror's head after the sync (the last checkpoint it applied).</param>
/// <param name="HeadHash">Hash of entry <paramref name="AppliedSeq"/> (32 bytes).</param>
/// <param name="EntriesPushed">Entries streamed to the mirror (0 when it was already up to date).</param>
/// <param name="EntriesApplied">New entries the mirror reported applied.</param>
/// <param name="Duration">Wall time of the sync.</param>
public sealed record SyncResult(ulong AppliedSeq, byte[] HeadHash, ulong EntriesPushed, ulong EntriesApplied, TimeSpan Duration);

/// <summary>A sync found the factory and mirror journals diverged, or the mirror answered inconsistently. An operator must look.</summary>
public sealed class JournalSyncException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What diverged, with seqs and hashes; no secrets.</param>
    /// <param name="isFork">True when the same seq has different hashes on the two sides.</param>
    public JournalSyncException(string message, bool isFork) : base(message) => IsFork = isFork;

    /// <summary>True when the same seq has different hashes on the two sides (a fork alert).</summary>
    public bool IsFork { get; }
}

/// <summary>
/// The factory side of journal sync (brief, "Sync"): writes a checkpoint, asks the mirror for its head, checks the
/// mirror's head entry matches ours, and streams the entries after it up to the checkpoint, in batches.
/// </summary>
public sealed class JournalSyncClient
{
    /// <summary>Method path of GetHead.</summary>
    public const string GetHeadPath = "/offlinepki.sync.v1.JournalSync/GetHead";

    /// <summary>Method path of PushEntries.</summary>
    public const string PushEntriesPath = "/offlinepki.sync.v1.JournalSync/PushEntries";

    private readonly GrpcClient _client;
    private readonly IJournalReader _reader;
    private readonly IJournalAppender _appender;
    private readonly SyncOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);
    private Genesis? _genesis;

    /// <summary>Creates the sync client.</summary>
    /// <param name="client">The gRPC client to the mirror (mTLS).</param>
    /// <param name="reader">Reads our journal.</param>
    /// <param name="appender">Writes the checkpoint that ends each push.</param>
    /// <param name="options">Batch sizes and deadlines.</param>
    /// <param name="timeProvider">Clock for durations; <see cref="TimeProvider.System"/> when null.</param>
    /// <param name="logger">Logger; fork alerts are logged at Critical.</param>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    public JournalSyncClient(GrpcClient client, IJournalReader reader, IJournalAppender appender, SyncOptions options,
        TimeProvider? timeProvider = null, ILogger<JournalSyncClient>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(appender);
        ArgumentNullException.ThrowIfNull(options);
        _client = client;
        _reader = reader;
        _appender = appender;
        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>
    /// Where verified mirror receipts go (<see cref="MirrorReceiptBook"/>); null: receipts are ignored. A receipt that does
    /// not verify fails the sync with a <see cref="JournalSyncException"/> (the entries stay applied on the mirror).
    /// </summary>
    public MirrorReceiptBook? Receipts { get; init; }

    /// <summary>
    /// Where production orders the mirror sends in its GetHead and PushEntries responses (sync.proto v1.2) go; null: they
    /// are ignored. A bad order is logged and skipped by the inbox; it never fails the sync.
    /// </summary>
    public OfflinePki.Orders.IOrderInbox? Orders { get; init; }

    /// <summary>
    /// Runs one sync: writes a checkpoint unless the journal head already is one, asks the mirror for its head, checks
    /// that our entry at that seq has the same hash, and streams the entries after it up to the checkpoint in batches of
    /// at most <see cref="SyncOptions.BatchMaxEntries"/> entries / about <see cref="SyncOptions.BatchMaxBytes"/> bytes.
    /// A backlog longer than <see cref="SyncOptions.PushMaxEntries"/> goes as several PushEntries calls, each ending at a
    /// checkpoint and each applied atomically by the mirror (and answered with its own receipt).
    /// Concurrent calls are serialised.
    /// </summary>
    /// <param name="cancellationToken">Cancels the sync; the mirror then applies nothing of the interrupted push.</param>
    /// <returns>The mirror head after the sync.</returns>
    /// <exception cref="GrpcException">The mirror refused the push or could not be reached (status says which).</exception>
    /// <exception cref="JournalSyncException">The mirror's journal diverges from ours (fork), or the mirror answered inconsistently.</exception>
    /// <exception cref="JournalUnavailableException">Our journal cannot write the checkpoint or be read.</exception>
    public async Task<SyncResult> SyncOnceAsync(CancellationToken cancellationToken = default)
    {
        await _oneAtATime.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await SyncCoreAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _oneAtATime.Release();
        }
    }

    private async Task<SyncResult> SyncCoreAsync(CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        // The push must end with a checkpoint: the mirror applies nothing after the last one. An idle journal whose
        // head already is a checkpoint is not given another one at every tick.
        var head = _reader.Head;
        var headEntry = head.Seq == 0 ? null : _reader.ReadFrom(head.Seq).FirstOrDefault();
        var target = headEntry is { Type: EntryType.Checkpoint } && headEntry.Seq == head.Seq
            ? head.Seq
            : (await _appender.CheckpointAsync(cancellationToken).ConfigureAwait(false)).Seq;
        var genesis = Genesis();
        var mirror = await _client.UnaryAsync<GetHeadRequest, GetHeadResponse>(GetHeadPath,
            new GetHeadRequest { JournalId = genesis.JournalId, FactoryId = genesis.FactoryId }, _options.Timeout, cancellationToken).ConfigureAwait(false);

        await DeliverOrdersAsync(mirror.Orders, cancellationToken).ConfigureAwait(false);
        ulong mirrorSeq = mirror.Known ? mirror.Seq : 0;
        if (mirrorSeq > target)
        {
            throw Fork($"the mirror holds journal {Hex(genesis.JournalId)} up to seq {mirrorSeq}, beyond our head {target}");
        }

        if (mirrorSeq > 0)
        {
            var ours = _reader.ReadFrom(mirrorSeq).FirstOrDefault();
            if (ours is null || ours.Seq != mirrorSeq || !ours.Hash.Equals(mirror.Hash))
            {
                throw Fork($"fork at seq {mirrorSeq} of journal {Hex(genesis.JournalId)}: the mirror holds hash {Hex(mirror.Hash)}, ours is {(ours is null ? "(missing)" : Hex(ours.Hash))}");
            }
        }

        if (mirrorSeq == target)
        {
            AcceptReceipt(mirror.Receipt, mirrorSeq);
            return new SyncResult(mirrorSeq, mirror.Hash.ToByteArray(), 0, 0, _time.GetElapsedTime(started));
        }

        // A long backlog goes as several pushes, each ending at a checkpoint once PushMaxEntries entries are on their way:
        // the mirror applies each push atomically, so its registry moves from one verified checkpoint to the next, its
        // write-ahead log stays bounded, and a cut link costs at most one push.
        ulong from = mirrorSeq, totalPushed = 0, totalApplied = 0;
        ByteString headHash = mirror.Hash;
        while (from < target)
        {
            var pushed = new Counter();
            var response = await _client.ClientStreamingAsync<PushRequest, PushResponse>(PushEntriesPath,
                Stream(genesis, from + 1, target, pushed, cancellationToken), _options.PushTimeout, cancellationToken).ConfigureAwait(false);

            if (response.AppliedSeq < from || response.AppliedSeq > target)
            {
                throw new JournalSyncException($"the mirror reports head seq {response.AppliedSeq}, outside the pushed range {from + 1}..{target}", isFork: false);
            }

            var applied = _reader.ReadFrom(response.AppliedSeq).FirstOrDefault();
            if (response.AppliedSeq > 0 && (applied is null || !applied.Hash.Equals(response.HeadHash)))
            {
                throw Fork($"after the push the mirror reports hash {Hex(response.HeadHash)} at seq {response.AppliedSeq}, ours is {(applied is null ? "(missing)" : Hex(applied.Hash))}");
            }

            AcceptReceipt(response.Receipt, response.AppliedSeq);
            await DeliverOrdersAsync(response.Orders, cancellationToken).ConfigureAwait(false);
            if (response.AppliedSeq == from)
            {
                throw new JournalSyncException($"the mirror applied nothing of the push {from + 1}..{from + pushed.Value} (its head stays at seq {from})", isFork: false);
            }

            _logger.LogDebug("journal sync: push {From}..{To} applied, mirror head seq {Head}", from + 1, from + pushed.Value, response.AppliedSeq);
            totalPushed += pushed.Value;
            totalApplied += response.EntriesApplied;
            from = response.AppliedSeq;
            headHash = response.HeadHash;
        }

        var result = new SyncResult(from, headHash.ToByteArray(), totalPushed, totalApplied, _time.GetElapsedTime(started));
        _logger.LogInformation("journal sync: pushed {Pushed} entries ({From}..{To}), mirror applied {Applied}, head seq {Head} in {Ms} ms",
            result.EntriesPushed, mirrorSeq + 1, target, result.EntriesApplied, result.AppliedSeq, (long)result.Duration.TotalMilliseconds);
        return result;
    }

    private async IAsyncEnumerable<PushRequest> Stream(Genesis genesis, ulong first, ulong last, Counter pushed,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        yield return new PushRequest { Metadata = new PushMetadata { JournalId = genesis.JournalId, FactoryId = genesis.FactoryId, FirstSeq = first } };
        var batch = new EntryBatch();
        int bytes = 0;
        foreach (var entry in _reader.ReadFrom(first))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (entry.Seq > last)
            {
                break;
            }

            int size = entry.CalculateSize() + 8;
            if (batch.Entries.Count > 0 && (batch.Entries.Count >= _options.BatchMaxEntries || bytes + size > _options.BatchMaxBytes))
            {
                yield return new PushRequest { Entries = batch };
                batch = new EntryBatch();
                bytes = 0;
                await Task.Yield();
            }

            batch.Entries.Add(entry);
            bytes += size;
            pushed.Value++;
            if (pushed.Value >= (ulong)_options.PushMaxEntries && entry.Type == EntryType.Checkpoint && entry.Seq < last)
            {
                break; // this push ends here; the next one starts after this checkpoint
            }
        }

        if (batch.Entries.Count > 0)
        {
            yield return new PushRequest { Entries = batch };
        }
    }

    private Genesis Genesis()
    {
        if (_genesis is null)
        {
            var first = _reader.ReadFrom(1).FirstOrDefault();
            if (first is null || first.Seq != 1 || first.Type != EntryType.Genesis)
            {
                throw new JournalUnavailableException("the journal has no genesis entry at seq 1; nothing to sync");
            }

            _genesis = Journal.V1.Genesis.Parser.ParseFrom(first.Payload);
        }

        return _genesis;
    }

    private void AcceptReceipt(MirrorReceipt? receipt, ulong appliedSeq)
    {
        if (Receipts is null || appliedSeq == 0)
        {
            return;
        }

        if (receipt is null)
        {
            _logger.LogWarning("the mirror returned no receipt for seq {Seq} (is MirrorCa:ReceiptSigner configured?)", appliedSeq);
            return;
        }

        if (receipt.Seq != appliedSeq)
        {
            throw new JournalSyncException($"the mirror's receipt confirms seq {receipt.Seq}, but it reports head seq {appliedSeq}", isFork: false);
        }

        try
        {
            Receipts.Accept(receipt);
        }
        catch (MirrorReceiptException ex)
        {
            _logger.LogError("ALERT mirror receipt refused: {Reason}", ex.Message);
            throw new JournalSyncException("mirror receipt refused: " + ex.Message, isFork: false);
        }
    }

    private async Task DeliverOrdersAsync(Google.Protobuf.Collections.RepeatedField<ByteString> orders, CancellationToken cancellationToken)
    {
        if (Orders is null || orders.Count == 0)
        {
            return;
        }

        int accepted = await Orders.DeliverAsync(orders.Select(o => o.ToByteArray()).ToList(), "sync", cancellationToken).ConfigureAwait(false);
        if (accepted > 0)
        {
            _logger.LogInformation("journal sync: accepted {Accepted} new production order(s) from the mirror", accepted);
        }
    }

    private JournalSyncException Fork(string message)
    {
        _logger.LogCritical("ALERT journal sync stopped: {Reason}", message);
        return new JournalSyncException(message, isFork: true);
    }

    private static string Hex(ByteString b) => Convert.ToHexStringLower(b.Span);

    private sealed class Counter
    {
        public ulong Value;
    }
}
