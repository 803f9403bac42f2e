using System.Buffers;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using OfflinePki.Journal.V1;
using OfflinePki.Keys;

namespace OfflinePki.Journal;

/// <summary>
/// The factory journal on local disk (brief, "The journal"): appends with group commit, an fsync before any
/// append completes, automatic signed checkpoints, crash recovery of a torn tail, and fail-closed behaviour.
/// File format: <see cref="JournalFileFormat"/>.
/// </summary>
/// <remarks>
/// <para><b>Group commit, in two stages.</b> Appends go into a channel. The encode stage drains everything pending
/// (up to 4096 entries or 4 MiB), assigns seqs and hashes, and encodes the records in memory. The flush stage takes
/// every batch encoded so far, writes them with one write, fsyncs (fdatasync, see <see cref="FileJournalStorage"/>)
/// and then completes their waiters. The two overlap: while one fsync runs, the next batches are encoded, and the next
/// write and fsync cover them all. An append returns only after the fsync that covers it; the durable head
/// (<see cref="Head"/>, what <see cref="ReadFrom"/> serves) moves only then.</para>
/// <para><b>Checkpoints</b> are signed with the journal signer over <see cref="JournalCodec.CheckpointSigningBytes"/>
/// after every <see cref="JournalWriterOptions.CheckpointEveryEntries"/> entries, every
/// <see cref="JournalWriterOptions.CheckpointInterval"/> (on the injected <see cref="TimeProvider"/>'s timer) when
/// entries were added, on <see cref="CheckpointAsync"/>, and in <see cref="DisposeAsync"/>.</para>
/// <para><b>Fail closed.</b> A failed write, fsync or checkpoint signature puts the writer in a permanent failed state:
/// the failing batch, every batch encoded but not yet acknowledged, and every later append throw
/// <see cref="JournalUnavailableException"/>, and <see cref="Health"/> says why. Bytes of the failed batch may be in
/// the file; none was acknowledged, and recovery at the next start either keeps them (if complete and valid) or
/// truncates them as a torn tail.</para>
/// <para><b>Recovery</b> (opening an existing journal) reads and verifies every record: hash chain and checkpoint
/// signatures (not the per-certificate CA signatures, nor the chains to the root: those are the CLI verifier's and
/// the mirror's job). An incomplete or self-inconsistent last record that nothing valid follows is a torn tail
/// that was never acknowledged: it is truncated and a warning names its seq and offset. Anything else that is
/// wrong refuses to open (<see cref="JournalUnavailableException"/>): acknowledged entries are never dropped.</para>
/// </remarks>
public sealed class JournalWriter : IJournalAppender, IJournalReader, IAsyncDisposable
{
    private const int IndexStride = 1024;
    private const int EntryOverheadBytes = 128;
    private const int MaxBatchEntries = 4096;
    private const int MaxBatchBytes = 4 << 20;
    private const int MaxTornTailBytes = 32 << 20;

    private readonly JournalWriterOptions _options;
    private readonly ISigningKey _signerKey;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly IJournalStorage _storage;
    private readonly Channel<Pending> _channel = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ByteString _journalId;
    private readonly ByteString _signerSha256;
    private readonly Lock _indexLock = new();
    private readonly List<(ulong Seq, long Offset)> _index;
    private readonly ArrayBufferWriter<byte> _buffer = new(1 << 16);
    private readonly ArrayBufferWriter<byte> _flushBuffer = new(1 << 16);
    private readonly Channel<Written> _written = Channel.CreateUnbounded<Written>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly Task _loop;
    private readonly Task _flushLoop;
    private readonly ITimer _timer;
    private volatile Durable _durable;
    private volatile JournalUnavailableException? _failure;
    private JournalEntry _last;
    private long _encodedLength;
    private ulong _encodedSeq;
    private ulong _sinceCheckpoint;
    private long _lastTime;
    private long _appends;
    private long _fsyncs;
    private long _fsyncTicks;
    private long _checkpoints;
    private int _disposed;

    private JournalWriter(JournalWriterOptions options, ISigningKey signerKey, TimeProvider time, ILogger logger, IJournalStorage storage,
        JournalAnchor anchor, JournalEntry last, ulong sinceCheckpoint, List<(ulong, long)> index)
    {
        _options = options;
        _signerKey = signerKey;
        _time = time;
        _logger = logger;
        _storage = storage;
        Anchor = anchor;
        _journalId = ByteString.CopyFrom(anchor.JournalId);
        _signerSha256 = ByteString.CopyFrom(SHA256.HashData(anchor.JournalSignerCertificate));
        _index = index;
        _last = last;
        _lastTime = last.TimeUnixMicros;
        _sinceCheckpoint = sinceCheckpoint;
        _durable = new Durable(JournalCodec.HeadOf(last), storage.Length);
        _encodedLength = storage.Length;
        _encodedSeq = last.Seq;
        _loop = Task.Run(RunAsync);
        _flushLoop = Task.Run(FlushLoopAsync);
        _timer = time.CreateTimer(static s => ((JournalWriter)s!).OnTimer(), this, options.CheckpointInterval, options.CheckpointInterval);
    }

    /// <summary>The journal's identity (journal id, factory id, issuing CA and signer certificates from its genesis).</summary>
    public JournalAnchor Anchor { get; }

    /// <inheritdoc />
    public JournalHead Head => _durable.Head;

    /// <summary>Healthy, or failed and why (permanent until restart).</summary>
    public JournalHealth Health => _failure is { } f ? new JournalHealth(false, f.Message, _durable.Head.Seq) : new JournalHealth(true, null, _durable.Head.Seq);

    /// <summary>Entries appended through <see cref="AppendAsync"/> and made durable (checkpoints not included).</summary>
    public long Appends => Interlocked.Read(ref _appends);

    /// <summary>Successful fsyncs of the journal file since open (one per group-committed batch).</summary>
    public long Fsyncs => Interlocked.Read(ref _fsyncs);

    /// <summary>Time spent in fsync since open, summed over <see cref="Fsyncs"/> (a disk-latency figure for benchmarks and status).</summary>
    public TimeSpan FsyncTime => Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _fsyncTicks));

    /// <summary>Checkpoint entries made durable since open.</summary>
    public long Checkpoints => Interlocked.Read(ref _checkpoints);

    /// <summary>The seq of the last entry the encode stage has encoded (written or not, durable or not): for tests of the pipeline.</summary>
    internal ulong EncodedSeq => Volatile.Read(ref _encodedSeq);

    /// <summary>
    /// The bytes of the journal file that hold durable records: the offset just past the durable head's record. While
    /// the writer is open the file itself is longer (preallocated zeros, see <see cref="FileJournalStorage"/>).
    /// </summary>
    public long DurableLength => _durable.Length;

    /// <summary>The journal file path.</summary>
    public string FilePath => _storage.Path;

    /// <summary>
    /// Opens the journal in <see cref="JournalWriterOptions.Directory"/>, or creates it: a random 16-byte journal id,
    /// the genesis entry (seq 1) and an initial checkpoint (seq 2), fsynced with the directory.
    /// </summary>
    /// <param name="options">Validated options.</param>
    /// <param name="signerKey">The journal signer key; it signs checkpoints only.</param>
    /// <param name="signerCertificate">The journal signer certificate (EKU journal signer); must match <paramref name="signerKey"/>, and for an existing journal the one in its genesis.</param>
    /// <param name="genesis">Genesis contents for a new journal; for an existing one the factory id and issuing CA must match it.</param>
    /// <param name="time">The clock for entry times and the checkpoint timer.</param>
    /// <param name="logger">Logger (recovery warnings, failures).</param>
    /// <param name="storage">The file seam; null for <see cref="FileJournalStorage"/> over <c>Directory/journal.log</c>. The writer owns and disposes it.</param>
    /// <returns>The open writer, ready to append.</returns>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    /// <exception cref="ArgumentException">The signer certificate does not match the key, or the genesis parameters are incomplete.</exception>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">The options are invalid.</exception>
    /// <exception cref="JournalUnavailableException">The journal cannot be opened or created (I/O, corruption other than a torn tail, another factory's journal, another signer).</exception>
    public static Task<JournalWriter> OpenOrCreateAsync(JournalWriterOptions options, ISigningKey signerKey, X509Certificate2 signerCertificate,
        GenesisParameters genesis, TimeProvider time, ILogger logger, IJournalStorage? storage = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(signerKey);
        ArgumentNullException.ThrowIfNull(signerCertificate);
        ArgumentNullException.ThrowIfNull(genesis);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        options.Validate();
        if (string.IsNullOrEmpty(genesis.FactoryId) || genesis.IssuingCaChain is null || genesis.IssuingCaChain.Count == 0
            || genesis.PolicySha256 is null || genesis.PolicySha256.Length != 32)
        {
            throw new ArgumentException("genesis needs a factory id, at least the issuing CA certificate, and a 32-byte policy SHA-256", nameof(genesis));
        }

        if (!signerCertificate.PublicKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(signerKey.PublicKey.ExportSubjectPublicKeyInfo()))
        {
            throw new ArgumentException($"journal signer certificate '{signerCertificate.Subject}' does not match signing key {signerKey.KeyId}", nameof(signerCertificate));
        }

        return Task.Run(() => Open(options, signerKey, signerCertificate, genesis, time, logger, storage));
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentNullException"><paramref name="payload"/> is null.</exception>
    /// <exception cref="ArgumentException">The type is genesis, checkpoint or unknown; the payload is not the type's message; or the entry would exceed <see cref="JournalWriterOptions.MaxEntryBytes"/> (nothing is written).</exception>
    public Task<JournalEntry> AppendAsync(EntryType type, IMessage payload, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(payload);
        var expected = PayloadType(type);
        if (expected is null || type is EntryType.Genesis or EntryType.Checkpoint)
        {
            throw new ArgumentException($"entry type {type} cannot be appended (genesis and checkpoints are written by the journal itself)", nameof(type));
        }

        if (payload.GetType() != expected)
        {
            throw new ArgumentException($"entry type {type} needs a {expected.Name} payload, got {payload.GetType().Name}", nameof(payload));
        }

        ThrowIfFailed();
        var bytes = payload.ToByteString();
        if (bytes.Length + EntryOverheadBytes > _options.MaxEntryBytes)
        {
            throw new ArgumentException($"a {type} entry of {bytes.Length} payload bytes exceeds {JournalWriterOptions.SectionName}:MaxEntryBytes ({_options.MaxEntryBytes})", nameof(payload));
        }

        var pending = new Pending(PendingKind.Entry, type, bytes, new TaskCompletionSource<JournalEntry>(TaskCreationOptions.RunContinuationsAsynchronously));
        if (!_channel.Writer.TryWrite(pending))
        {
            throw Closed();
        }

        return pending.Completion!.Task.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Writes a signed checkpoint over the current head and waits until it is durable. If the last entry already is a
    /// checkpoint, returns it instead of signing a checkpoint of a checkpoint.
    /// </summary>
    /// <exception cref="JournalUnavailableException">The journal has failed or is closed.</exception>
    public Task<JournalEntry> CheckpointAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfFailed();
        var pending = new Pending(PendingKind.Checkpoint, EntryType.Checkpoint, ByteString.Empty, new TaskCompletionSource<JournalEntry>(TaskCreationOptions.RunContinuationsAsynchronously));
        if (!_channel.Writer.TryWrite(pending))
        {
            throw Closed();
        }

        return pending.Completion!.Task.WaitAsync(cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Reads up to the durable head at the time of the call with its own read-only stream, seeking with a sparse
    /// in-memory index (every 1024th seq); memory use does not grow with the journal. Enumerate it promptly: the
    /// stream stays open until the enumeration ends.
    /// </remarks>
    /// <exception cref="JournalUnavailableException">(During enumeration) the file cannot be read or does not match what was written.</exception>
    public IEnumerable<JournalEntry> ReadFrom(ulong firstSeq)
    {
        var durable = _durable;
        firstSeq = Math.Max(firstSeq, 1);
        if (firstSeq > durable.Head.Seq)
        {
            return [];
        }

        (ulong Seq, long Offset) start;
        lock (_indexLock)
        {
            int lo = 0, hi = _index.Count - 1;
            while (lo < hi)
            {
                int mid = (lo + hi + 1) / 2;
                if (_index[mid].Seq <= firstSeq) { lo = mid; } else { hi = mid - 1; }
            }

            start = _index[lo];
        }

        return ReadRange(_storage, start.Seq, start.Offset, firstSeq, durable.Head.Seq, durable.Length);
    }

    /// <summary>
    /// Stops the checkpoint timer, lets pending appends finish, writes a final checkpoint if entries were added since
    /// the last one (unless the journal has failed), and closes the file.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _timer.DisposeAsync().ConfigureAwait(false);
        Task<JournalEntry>? final = null;
        if (_failure is null)
        {
            var pending = new Pending(PendingKind.Checkpoint, EntryType.Checkpoint, ByteString.Empty, new TaskCompletionSource<JournalEntry>(TaskCreationOptions.RunContinuationsAsynchronously));
            if (_channel.Writer.TryWrite(pending))
            {
                final = pending.Completion!.Task;
            }
        }

        _channel.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
        await _flushLoop.ConfigureAwait(false);
        if (final is not null)
        {
            try
            {
                var cp = await final.ConfigureAwait(false);
                _logger.LogInformation("journal {Path} closed at seq {Seq} (checkpoint)", _storage.Path, cp.Seq);
            }
            catch (JournalUnavailableException)
            {
                // Already logged by the loop; the journal stays failed.
            }
        }

        _storage.Dispose();
    }

    private static Type? PayloadType(EntryType type) => type switch
    {
        EntryType.Genesis => typeof(Genesis),
        EntryType.CertificateIssued => typeof(CertificateIssued),
        EntryType.EnrollmentRefused => typeof(EnrollmentRefused),
        EntryType.BatchEvent => typeof(BatchEvent),
        EntryType.PolicyChanged => typeof(PolicyChanged),
        EntryType.Checkpoint => typeof(Checkpoint),
        EntryType.OrderAccepted => typeof(OrderAccepted),
        _ => null,
    };

    private void ThrowIfFailed()
    {
        if (_failure is { } f)
        {
            throw new JournalUnavailableException(f.Message, f.InnerException);
        }
    }

    private JournalUnavailableException Closed() =>
        _failure is { } f ? new JournalUnavailableException(f.Message, f.InnerException) : new JournalUnavailableException($"journal {_storage.Path} is closed");

    private void OnTimer()
    {
        if (Volatile.Read(ref _disposed) == 0 && _failure is null)
        {
            _channel.Writer.TryWrite(Pending.TimerCheckpoint);
        }
    }

    private async Task RunAsync()
    {
        var reader = _channel.Reader;
        var batch = new List<Pending>(256);
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                long bytes = 0;
                while (batch.Count < MaxBatchEntries && bytes < MaxBatchBytes && reader.TryRead(out var p))
                {
                    batch.Add(p);
                    bytes += p.Payload.Length + EntryOverheadBytes;
                }

                try
                {
                    ProcessBatch(batch);
                }
                catch (Exception ex)
                {
                    FailClosed($"journal failed: internal error while writing {_storage.Path}: {ex.Message}", ex, batch);
                }

                batch.Clear();
            }
        }
        finally
        {
            _written.Writer.TryComplete(); // the flush stage drains what was encoded, then ends
        }
    }

    /// <summary>
    /// The flush stage: one write and one fsync for every batch the encode stage has encoded so far, then the durable
    /// head moves and their waiters complete, in seq order.
    /// </summary>
    private async Task FlushLoopAsync()
    {
        var reader = _written.Reader;
        var written = new List<Written>(16);
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out var w))
            {
                written.Add(w);
            }

            try
            {
                Flush(written);
            }
            catch (Exception ex)
            {
                FailClosed($"journal failed: internal error while flushing {_storage.Path}: {ex.Message}", ex, written.SelectMany(w => w.Batch));
            }

            written.Clear();
        }
    }

    private void Flush(List<Written> written)
    {
        if (_failure is { } failed)
        {
            // A later batch failed to encode or write: nothing still in flight is acknowledged (its bytes, if durable,
            // are kept by recovery, like any entry written just before a crash).
            FailWith(failed, written.SelectMany(w => w.Batch));
            return;
        }

        var last = written[^1];
        if (last.Length > _durable.Length)
        {
            // One write for every batch encoded since the last turn: a write per batch costs more in the kernel than
            // the fsync it shares.
            _flushBuffer.ResetWrittenCount();
            foreach (var w in written)
            {
                _flushBuffer.Write(w.Bytes);
            }

            try
            {
                if (_storage.Length != written[0].Start)
                {
                    throw new InvalidOperationException($"the file is {_storage.Length} bytes long, but the next record starts at {written[0].Start}");
                }

                _storage.Append(_flushBuffer.WrittenSpan);
            }
            catch (Exception ex)
            {
                FailClosed($"journal failed: write to {_storage.Path} failed: {ex.Message}", ex, written.SelectMany(w => w.Batch));
                return;
            }

            long started = Stopwatch.GetTimestamp();
            try
            {
                _storage.Flush();
            }
            catch (Exception ex)
            {
                FailClosed($"journal failed: fsync of {_storage.Path} failed: {ex.Message}", ex, written.SelectMany(w => w.Batch));
                return;
            }

            long fsyncTicks = Stopwatch.GetTimestamp() - started;
            Interlocked.Increment(ref _fsyncs);
            Interlocked.Add(ref _fsyncTicks, fsyncTicks);
            OfflinePki.Telemetry.FactoryMetrics.JournalFsyncDuration.Record((double)fsyncTicks / Stopwatch.Frequency);
            OfflinePki.Telemetry.FactoryMetrics.JournalFsyncEntries.Record(written.Sum(w => w.Appended + w.Checkpoints));
        }

        foreach (var w in written)
        {
            Interlocked.Add(ref _appends, w.Appended);
            Interlocked.Add(ref _checkpoints, w.Checkpoints);
            if (w.NewIndex.Count > 0)
            {
                lock (_indexLock)
                {
                    _index.AddRange(w.NewIndex);
                }
            }
        }

        _durable = new Durable(last.Head, last.Length);
        foreach (var w in written)
        {
            for (int i = 0; i < w.Batch.Length; i++)
            {
                w.Batch[i].Completion?.TrySetResult(w.Results[i]!);
            }
        }
    }

    private void ProcessBatch(List<Pending> batch)
    {
        if (_failure is { } failed)
        {
            FailWith(failed, batch);
            return;
        }

        _buffer.ResetWrittenCount();
        var state = new BatchState(_encodedLength, _lastTime = Math.Max(_lastTime, JournalCodec.ToUnixMicros(_time.GetUtcNow())));
        var results = new JournalEntry?[batch.Count];
        long appended = 0;
        try
        {
            for (int i = 0; i < batch.Count; i++)
            {
                var p = batch[i];
                switch (p.Kind)
                {
                    case PendingKind.Entry:
                        results[i] = Write(state, p.Type, p.Payload);
                        appended++;
                        if (++_sinceCheckpoint >= (ulong)_options.CheckpointEveryEntries)
                        {
                            WriteCheckpoint(state);
                        }

                        break;
                    default:
                        results[i] = _last.Type == EntryType.Checkpoint ? _last : WriteCheckpoint(state);
                        break;
                }
            }
        }
        catch (CheckpointSigningException ex)
        {
            FailClosed($"journal failed: signing a checkpoint with journal signer {_signerKey.KeyId} failed: {ex.InnerException!.Message}", ex.InnerException, batch);
            return;
        }

        // Even a batch that encoded nothing (a checkpoint request answered with the last entry) goes to the flush
        // stage, so that it completes only once everything before it is durable.
        long start = _encodedLength;
        _encodedLength = state.Offset;
        Volatile.Write(ref _encodedSeq, _last.Seq);
        _written.Writer.TryWrite(new Written([.. batch], results, appended, state.Checkpoints, state.NewIndex, JournalCodec.HeadOf(_last),
            start, _buffer.WrittenCount == 0 ? [] : _buffer.WrittenSpan.ToArray(), _encodedLength));
    }

    private JournalEntry Write(BatchState state, EntryType type, ByteString payload)
    {
        var e = JournalCodec.CreateEntry(_last.Seq + 1, state.Time, type, payload, _last.Hash);
        if (e.Seq % IndexStride == 1)
        {
            state.NewIndex.Add((e.Seq, state.Offset));
        }

        state.Offset += JournalFileFormat.WriteRecord(_buffer, e);
        _last = e;
        return e;
    }

    private JournalEntry WriteCheckpoint(BatchState state)
    {
        var cp = MakeCheckpoint(_signerKey, _journalId, _signerSha256, _last, state.Time);
        var e = Write(state, EntryType.Checkpoint, cp.ToByteString());
        _sinceCheckpoint = 0;
        state.Checkpoints++;
        return e;
    }

    private static Checkpoint MakeCheckpoint(ISigningKey key, ByteString journalId, ByteString signerSha256, JournalEntry head, long time)
    {
        byte[] signature;
        try
        {
            signature = key.Sign(JournalCodec.CheckpointSigningBytes(journalId.Span, head.Seq, head.Hash.Span, time));
        }
        catch (Exception ex)
        {
            throw new CheckpointSigningException(ex);
        }

        return new Checkpoint
        {
            JournalId = journalId,
            Seq = head.Seq,
            HeadHash = head.Hash,
            TimeUnixMicros = time,
            Signature = UnsafeByteOperations.UnsafeWrap(signature),
            SignerCertificateSha256 = signerSha256,
        };
    }

    /// <summary>Fails <paramref name="batch"/> with the journal's earlier failure (already logged).</summary>
    private static void FailWith(JournalUnavailableException failed, IEnumerable<Pending> batch)
    {
        foreach (var p in batch)
        {
            p.Completion?.TrySetException(new JournalUnavailableException(failed.Message, failed.InnerException));
        }
    }

    private void FailClosed(string message, Exception ex, IEnumerable<Pending> batch)
    {
        var failure = new JournalUnavailableException(message, ex);
        Interlocked.CompareExchange(ref _failure, failure, null);
        _logger.LogCritical(ex, "{Message}; issuance must stop until the journal is repaired and the service restarted", message);
        foreach (var p in batch)
        {
            p.Completion?.TrySetException(new JournalUnavailableException(_failure!.Message, ex));
        }
    }

    internal static IEnumerable<JournalEntry> ReadRange(IJournalStorage storage, ulong seq, long offset, ulong firstSeq, ulong lastSeq, long endOffset)
    {
        Stream stream;
        try
        {
            stream = storage.OpenRead();
            stream.Position = offset;
        }
        catch (IOException ex)
        {
            throw new JournalUnavailableException($"journal {storage.Path} cannot be read: {ex.Message}", ex);
        }

        using (stream)
        {
            var buffer = new byte[4096];
            while (seq <= lastSeq && offset < endOffset)
            {
                JournalFileFormat.ReadStatus status;
                JournalEntry? entry;
                int length;
                try
                {
                    status = JournalFileFormat.ReadRecord(stream, ref buffer, out entry, out length);
                }
                catch (IOException ex)
                {
                    throw new JournalUnavailableException($"journal {storage.Path} cannot be read at offset {offset}: {ex.Message}", ex);
                }

                if (status != JournalFileFormat.ReadStatus.Ok || entry!.Seq != seq)
                {
                    throw new JournalUnavailableException($"journal {storage.Path} is unreadable at offset {offset} (expected seq {seq}: {status})");
                }

                if (seq >= firstSeq)
                {
                    yield return entry;
                }

                offset += length;
                seq++;
            }
        }
    }

    private static JournalWriter Open(JournalWriterOptions options, ISigningKey signerKey, X509Certificate2 signerCertificate,
        GenesisParameters genesis, TimeProvider time, ILogger logger, IJournalStorage? storage)
    {
        string path = Path.Combine(options.Directory, JournalFileFormat.FileName);
        if (storage is null)
        {
            try
            {
                Directory.CreateDirectory(options.Directory);
                storage = FileJournalStorage.Open(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new JournalUnavailableException($"journal {path} cannot be opened: {ex.Message} (check {JournalWriterOptions.SectionName}:Directory and its permissions)", ex);
            }
        }

        try
        {
            var recovered = storage.Length == 0 ? null : Recover(storage, logger);
            if (recovered is null)
            {
                return Create(options, signerKey, signerCertificate, genesis, time, logger, storage);
            }

            var (anchor, last, sinceCheckpoint, index) = recovered.Value;
            if (anchor.FactoryId != genesis.FactoryId)
            {
                throw new JournalUnavailableException($"journal {storage.Path} belongs to factory {anchor.FactoryId}, not {genesis.FactoryId}");
            }

            if (!anchor.IssuingCaCertificate.AsSpan().SequenceEqual(genesis.IssuingCaChain[0]))
            {
                throw new JournalUnavailableException($"journal {storage.Path} was started with another issuing CA certificate; a new issuing CA needs a new journal directory");
            }

            if (!anchor.JournalSignerCertificate.AsSpan().SequenceEqual(signerCertificate.RawData))
            {
                throw new JournalUnavailableException($"journal {storage.Path} was started with another journal signer certificate than '{signerCertificate.Subject}'; its checkpoints must keep the genesis signer");
            }

            logger.LogInformation("journal {Path} opened: factory {Factory}, journal {JournalId}, head seq {Seq}",
                storage.Path, anchor.FactoryId, Convert.ToHexStringLower(anchor.JournalId), last.Seq);
            return new JournalWriter(options, signerKey, time, logger, storage, anchor, last, sinceCheckpoint, index);
        }
        catch
        {
            storage.Dispose();
            throw;
        }
    }

    private static JournalWriter Create(JournalWriterOptions options, ISigningKey signerKey, X509Certificate2 signerCertificate,
        GenesisParameters genesis, TimeProvider time, ILogger logger, IJournalStorage storage)
    {
        var journalId = RandomNumberGenerator.GetBytes(JournalCodec.JournalIdSize);
        long now = JournalCodec.ToUnixMicros(time.GetUtcNow());
        var g = new Genesis
        {
            FactoryId = genesis.FactoryId,
            JournalId = ByteString.CopyFrom(journalId),
            JournalSignerCertificate = ByteString.CopyFrom(signerCertificate.RawData),
            PolicySha256 = ByteString.CopyFrom(genesis.PolicySha256),
        };
        foreach (var der in genesis.IssuingCaChain)
        {
            g.IssuingCaChain.Add(ByteString.CopyFrom(der));
        }

        var first = JournalCodec.CreateEntry(1, now, EntryType.Genesis, g.ToByteString(), JournalCodec.ZeroHash);
        JournalEntry second;
        try
        {
            var cp = MakeCheckpoint(signerKey, g.JournalId, ByteString.CopyFrom(SHA256.HashData(signerCertificate.RawData)), first, now);
            second = JournalCodec.CreateEntry(2, now, EntryType.Checkpoint, cp.ToByteString(), first.Hash);
        }
        catch (CheckpointSigningException ex)
        {
            throw new JournalUnavailableException($"journal {storage.Path} cannot be created: the journal signer {signerKey.KeyId} failed to sign: {ex.InnerException!.Message}", ex.InnerException);
        }

        var buffer = new ArrayBufferWriter<byte>();
        buffer.Write(JournalFileFormat.Magic);
        JournalFileFormat.WriteRecord(buffer, first);
        JournalFileFormat.WriteRecord(buffer, second);
        try
        {
            storage.Append(buffer.WrittenSpan);
            storage.Flush();
        }
        catch (Exception ex)
        {
            throw new JournalUnavailableException($"journal failed: creating {storage.Path} failed: {ex.Message}", ex);
        }

        var anchor = new JournalAnchor(journalId, genesis.FactoryId, genesis.IssuingCaChain[0].ToArray(), signerCertificate.RawData);
        logger.LogInformation("journal {Path} created: factory {Factory}, journal {JournalId}", storage.Path, genesis.FactoryId, Convert.ToHexStringLower(journalId));
        return new JournalWriter(options, signerKey, time, logger, storage, anchor, second, 0, [(1UL, (long)JournalFileFormat.Magic.Length)]);
    }

    /// <summary>Reads and verifies every record; truncates a torn tail. Null when the file holds no entry (a creation that never completed).</summary>
    private static (JournalAnchor Anchor, JournalEntry Last, ulong SinceCheckpoint, List<(ulong, long)> Index)? Recover(IJournalStorage storage, ILogger logger)
    {
        long fileLength = storage.Length;
        using var verifier = new JournalChainVerifier(null, null, null, JournalFileFormat.MaxRecordBytes, verifyIssuedCertificates: false)
        {
            MaterializeIssuedCertificates = false,
        };
        var index = new List<(ulong, long)>();
        JournalEntry? last = null;
        long offset = JournalFileFormat.Magic.Length;
        try
        {
            using var stream = storage.OpenRead();
            if (!JournalFileFormat.ReadMagic(stream, out int got))
            {
                if (fileLength < JournalFileFormat.Magic.Length && IsMagicPrefix(storage, (int)fileLength))
                {
                    logger.LogWarning("journal {Path}: a creation was interrupted ({Length} bytes, no entry); starting a new journal", storage.Path, fileLength);
                    storage.Truncate(0);
                    return null;
                }

                throw new JournalUnavailableException($"{storage.Path} is not an OfflinePki journal (bad magic); refusing to open it");
            }

            var buffer = new byte[4096];
            while (true)
            {
                var status = JournalFileFormat.ReadRecord(stream, ref buffer, out var entry, out int length);
                if (status == JournalFileFormat.ReadStatus.End)
                {
                    break;
                }

                if (status == JournalFileFormat.ReadStatus.Ok && IsSelfConsistent(entry!))
                {
                    bool chained = true;
                    try
                    {
                        verifier.Accept(entry!, hashAlreadyChecked: true);
                    }
                    catch (JournalVerificationException ex) when (
                        (ex.Fault is JournalFault.Gap or JournalFault.Fork or JournalFault.Malformed)
                        && (offset + length == fileLength || JournalFileFormat.RestIsZero(stream)))
                    {
                        // The writer never produces an unchained record; as the very last record (before any
                        // preallocated zeros) it cannot have been acknowledged, so it is handled like a torn tail below.
                        chained = false;
                    }
                    catch (JournalVerificationException ex)
                    {
                        throw new JournalUnavailableException(
                            $"journal {storage.Path} is corrupt at byte offset {offset}: {ex.Message}; refusing to open (acknowledged entries are never dropped). Verify it with the CLI and restore it from a backup or the mirror", ex);
                    }

                    if (!chained)
                    {
                        status = JournalFileFormat.ReadStatus.Unchained;
                    }
                    else if (entry!.Seq % IndexStride == 1)
                    {
                        index.Add((entry.Seq, offset));
                    }

                    if (chained)
                    {
                        offset += length;
                        last = entry;
                        continue;
                    }
                }

                // A damaged record at `offset`: a torn tail only if nothing valid follows it.
                ulong seq = (last?.Seq ?? 0) + 1;
                long tail = fileLength - offset;
                if (tail > MaxTornTailBytes || ValidRecordFollows(storage, offset, fileLength))
                {
                    throw new JournalUnavailableException(
                        $"journal {storage.Path} has a damaged record (seq {seq}, byte offset {offset}, {status}) followed by {tail} bytes that are not just a torn tail; refusing to open (acknowledged entries are never dropped). Verify it with the CLI and restore it from a backup or the mirror");
                }

                logger.LogWarning("journal {Path}: truncating a torn tail at seq {Seq}, byte offset {Offset} ({Bytes} bytes, {Status}); it was never acknowledged",
                    storage.Path, seq, offset, tail, status);
                break;
            }
        }
        catch (IOException ex)
        {
            throw new JournalUnavailableException($"journal {storage.Path} cannot be read: {ex.Message}", ex);
        }

        try
        {
            if (last is null)
            {
                logger.LogWarning("journal {Path}: no complete entry (a creation was interrupted); starting a new journal", storage.Path);
                storage.Truncate(0);
                return null;
            }

            if (offset != fileLength)
            {
                storage.Truncate(offset);
            }
        }
        catch (IOException ex)
        {
            throw new JournalUnavailableException($"journal failed: truncating the torn tail of {storage.Path} at offset {offset} failed: {ex.Message}", ex);
        }

        ulong since = verifier.LastCheckpointSeq == 0 ? last.Seq : last.Seq - verifier.LastCheckpointSeq;
        return (verifier.Anchor!, last, since, index);
    }

    private static bool IsSelfConsistent(JournalEntry e) =>
        e.PrevHash.Length == JournalCodec.HashSize && e.Hash.Length == JournalCodec.HashSize
        && JournalCodec.ComputeHash(e).AsSpan().SequenceEqual(e.Hash.Span);

    private static bool IsMagicPrefix(IJournalStorage storage, int length)
    {
        using var s = storage.OpenRead();
        var b = new byte[length];
        s.ReadExactly(b);
        return JournalFileFormat.Magic.StartsWith(b);
    }

    /// <summary>True if any byte offset after <paramref name="badOffset"/> starts a complete, self-consistent record.</summary>
    private static bool ValidRecordFollows(IJournalStorage storage, long badOffset, long fileLength)
    {
        int n = (int)(fileLength - badOffset);
        var tail = new byte[n];
        using (var s = storage.OpenRead())
        {
            s.Position = badOffset;
            s.ReadExactly(tail);
        }

        for (int p = 1; p + JournalFileFormat.LengthPrefixSize < n; p++)
        {
            uint len = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(tail.AsSpan(p));
            if (len == 0 || len > (uint)(n - p - JournalFileFormat.LengthPrefixSize))
            {
                continue;
            }

            try
            {
                var e = JournalEntry.Parser.ParseFrom(tail.AsSpan(p + JournalFileFormat.LengthPrefixSize, (int)len));
                if (IsSelfConsistent(e))
                {
                    return true;
                }
            }
            catch (InvalidProtocolBufferException)
            {
                // not a record here
            }
        }

        return false;
    }

    private enum PendingKind
    {
        Entry,
        Checkpoint,
    }

    private sealed record Pending(PendingKind Kind, EntryType Type, ByteString Payload, TaskCompletionSource<JournalEntry>? Completion)
    {
        public static Pending TimerCheckpoint { get; } = new(PendingKind.Checkpoint, EntryType.Checkpoint, ByteString.Empty, null);
    }

    private sealed record Durable(JournalHead Head, long Length);

    /// <summary>A batch the encode stage has encoded (not yet written or fsynced): its waiters, their entries, its records' bytes and where they go, and the head and file length after it.</summary>
    private sealed record Written(Pending[] Batch, JournalEntry?[] Results, long Appended, int Checkpoints, List<(ulong, long)> NewIndex, JournalHead Head,
        long Start, byte[] Bytes, long Length);

    /// <summary>Carries a signer failure out of batch assembly, so that it is reported as one.</summary>
    private sealed class CheckpointSigningException(Exception inner) : Exception("checkpoint signing failed", inner);

    private sealed class BatchState(long offset, long time)
    {
        public long Offset { get; set; } = offset;
        public long Time { get; } = time;
        public int Checkpoints { get; set; }
        public List<(ulong, long)> NewIndex { get; } = [];
    }
}
