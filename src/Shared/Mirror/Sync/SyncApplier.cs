using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Google.Protobuf.Collections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OfflinePki.Asn1;
using OfflinePki.Keys;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Registry;
using OfflinePki.Sync.V1;

namespace OfflinePki.Sync;

/// <summary>Limits of a <see cref="SyncApplier"/>.</summary>
public sealed class SyncApplierOptions
{
    /// <summary>Largest serialized journal entry accepted, in bytes (default 1 MiB).</summary>
    public int MaxEntryBytes { get; set; } = 1 << 20;

    /// <summary>
    /// Most bytes of verified entries held in memory while waiting for the next checkpoint (default 64 MiB). Only
    /// entries covered by a checkpoint are applied, so entries after the last checkpoint wait in memory; a push with
    /// more than this between two checkpoints is refused with RESOURCE_EXHAUSTED.
    /// </summary>
    public long MaxUncheckpointedBytes { get; set; } = 64L << 20;

    /// <summary>Where rejected pushes are recorded for the <c>status</c> verb ("sync blocked: fork at seq 1042 from factory F1"); none when null.</summary>
    public ISyncAlertSink? Alerts { get; set; }

    /// <summary>Clock for alert times (default <see cref="TimeProvider.System"/>).</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}

/// <summary>
/// The mirror side of journal sync (brief, "Sync"): answers the head it holds, and verifies and applies a pushed
/// range of a factory journal in one transaction. Core logic, no transport: the gRPC endpoint is a thin adapter.
/// </summary>
/// <remarks>
/// <para>Every pushed entry is checked with a <see cref="JournalChainVerifier"/> (seq contiguity, hash chain, canonical
/// hash, genesis chain to the root, issuing-CA signature of each certificate, checkpoint signatures). Entries the
/// mirror already holds (seq ≤ its head) are compared by hash: equal is a no-op replay, different is a fork.</para>
/// <para>Only entries up to the last verified checkpoint of the push are applied; later entries are verified, then
/// dropped, and will be pushed again after the factory's next checkpoint. Any rejected entry rolls the whole push back.</para>
/// <para>Memory is flat in the number of entries: the transaction stages applied entries in the registry store, and at
/// most <see cref="SyncApplierOptions.MaxUncheckpointedBytes"/> of entries after the last checkpoint are held in memory.</para>
/// <para>Pushes of one journal are serialised; pushes of different journals run concurrently.</para>
/// </remarks>
public sealed class SyncApplier
{
    private readonly IJournalSink _sink;
    private readonly X509Certificate2 _root;
    private readonly SyncApplierOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _journalLocks = new(StringComparer.Ordinal);

    /// <summary>Creates the applier.</summary>
    /// <param name="sink">The registry slice that stores journals, entries and certificates.</param>
    /// <param name="trustedRoot">The root the genesis CA chain and journal signer must chain to.</param>
    /// <param name="options">Limits; defaults when null.</param>
    /// <param name="logger">Logger for alerts (rejected pushes) and applied ranges; no secrets are logged.</param>
    /// <exception cref="ArgumentNullException"><paramref name="sink"/> or <paramref name="trustedRoot"/> is null.</exception>
    public SyncApplier(IJournalSink sink, X509Certificate2 trustedRoot, SyncApplierOptions? options = null, ILogger<SyncApplier>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(sink);
        ArgumentNullException.ThrowIfNull(trustedRoot);
        _sink = sink;
        _root = trustedRoot;
        _options = options ?? new SyncApplierOptions();
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>
    /// Countersigns the head after every push and in GetHead answers (sync.proto v1.1 <c>MirrorReceipt</c>); null: no receipts.
    /// </summary>
    public MirrorReceiptSigner? ReceiptSigner { get; init; }

    /// <summary>The mirror's OEM production orders, sent to the calling factory in GetHead and push responses (sync.proto v1.2); null: none.</summary>
    public IOrderOutbox? Orders { get; init; }

    private void AddOrders(Google.Protobuf.Collections.RepeatedField<ByteString> field, string factoryId)
    {
        if (Orders is null)
        {
            return;
        }

        foreach (var order in Orders.OrdersFor(factoryId))
        {
            field.Add(ByteString.CopyFrom(order));
        }
    }

    /// <summary>The receipt for a head, or null when no <see cref="ReceiptSigner"/> is configured.</summary>
    /// <param name="state">The applied head.</param>
    /// <exception cref="SyncRejectedException"><see cref="SyncFault.Unavailable"/>: the receipt key cannot sign (the push itself is applied).</exception>
    public MirrorReceipt? ReceiptFor(JournalState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (ReceiptSigner is null)
        {
            return null;
        }

        try
        {
            return ReceiptSigner.Sign(state.JournalId, state.HeadSeq, state.HeadHash);
        }
        catch (OfflinePki.Keys.SigningKeyUnavailableException ex)
        {
            _logger.LogError("mirror receipt key cannot sign: {Reason}", ex.Message);
            throw new SyncRejectedException(SyncFault.Unavailable, state.HeadSeq, "the mirror receipt key cannot sign: " + ex.Message, ex);
        }
    }

    /// <summary>The mirror's head for one journal (JournalSync.GetHead).</summary>
    /// <param name="request">Journal id (16 bytes) and factory id.</param>
    /// <param name="caller">The authenticated caller; its principal is its factory id.</param>
    /// <returns>known=false if the mirror holds nothing of the journal; else the last applied seq and its hash.</returns>
    /// <exception cref="SyncRejectedException">
    /// <see cref="SyncFault.InvalidRequest"/>: a malformed request;
    /// <see cref="SyncFault.PermissionDenied"/>: the caller asks about another factory's journal;
    /// <see cref="SyncFault.Unavailable"/>: the receipt key cannot sign.
    /// </exception>
    public GetHeadResponse GetHead(GetHeadRequest request, CallerIdentity caller)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(caller);
        CheckJournalId(request.JournalId, "journal_id");
        if (string.IsNullOrEmpty(request.FactoryId))
        {
            throw new SyncRejectedException(SyncFault.InvalidRequest, null, "factory_id is required");
        }

        CheckFactory(caller, request.FactoryId);
        var state = _sink.GetJournal(request.JournalId.Span);
        if (state is null)
        {
            var unknown = new GetHeadResponse { Known = false };
            AddOrders(unknown.Orders, request.FactoryId);
            return unknown;
        }

        CheckFactory(caller, state.FactoryId);
        var head = new GetHeadResponse { Known = true, Seq = state.HeadSeq, Hash = ByteString.CopyFrom(state.HeadHash), Receipt = ReceiptFor(state) };
        AddOrders(head.Orders, state.FactoryId);
        return head;
    }

    /// <summary>Verifies and applies a pushed range of a journal (JournalSync.PushEntries).</summary>
    /// <param name="caller">The authenticated caller; its principal is its factory id.</param>
    /// <param name="stream">The client stream: one <see cref="PushMetadata"/>, then <see cref="EntryBatch"/> messages.</param>
    /// <param name="cancellationToken">The call's cancellation; a cancelled push applies nothing.</param>
    /// <returns>The mirror head after the push and the number of new entries applied (0 for a replay).</returns>
    /// <exception cref="SyncRejectedException">
    /// <see cref="SyncFault.InvalidRequest"/>: no metadata first, or malformed fields;
    /// <see cref="SyncFault.InvalidEntry"/>: a rejected entry (bad hash, bad signature, unknown signer, foreign certificate,
    /// malformed, out of range);
    /// <see cref="SyncFault.Conflict"/>: a gap, a fork, a stale checkpoint, another journal, or an unknown
    /// journal not starting at seq 1; a mixed stream (an entry that belongs to another journal the mirror holds, when the
    /// sink is an <see cref="IKnownJournals"/>) is rejected as <see cref="JournalFault.WrongJournal"/> with "mixed stream: seq N
    /// belongs to factory F2's journal …, not factory F1's journal …" and the alert reason "mixed stream";
    /// <see cref="SyncFault.PermissionDenied"/>: the journal belongs to another factory than the caller's;
    /// <see cref="SyncFault.ResourceExhausted"/>: too many bytes of entries without a checkpoint;
    /// <see cref="SyncFault.Unavailable"/>: the receipt key cannot sign (raised after the commit: the push is applied).
    /// Whenever another exception is thrown, nothing of the push is applied.
    /// </exception>
    public async Task<PushResponse> ApplyAsync(CallerIdentity caller, IAsyncEnumerable<PushRequest> stream, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(stream);
        var enumerator = stream.GetAsyncEnumerator(cancellationToken);
        await using (enumerator.ConfigureAwait(false))
        {
            if (!await enumerator.MoveNextAsync().ConfigureAwait(false) || enumerator.Current.BodyCase != PushRequest.BodyOneofCase.Metadata)
            {
                throw new SyncRejectedException(SyncFault.InvalidRequest, null, "the first PushRequest must carry metadata (journal_id, factory_id, first_seq)");
            }

            var meta = enumerator.Current.Metadata;
            CheckJournalId(meta.JournalId, "metadata.journal_id");
            if (string.IsNullOrEmpty(meta.FactoryId))
            {
                throw new SyncRejectedException(SyncFault.InvalidRequest, null, "metadata.factory_id is required");
            }

            if (meta.FirstSeq == 0)
            {
                throw new SyncRejectedException(SyncFault.InvalidRequest, null, "metadata.first_seq must be at least 1");
            }

            CheckFactory(caller, meta.FactoryId);
            var journalKey = Convert.ToHexStringLower(meta.JournalId.Span);
            var gate = _journalLocks.GetOrAdd(journalKey, _ => new SemaphoreSlim(1, 1));
            await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            SyncAlert? alert = null;
            string outcome = "error";
            try
            {
                using var push = new Push(this, caller, meta, journalKey);
                try
                {
                    var applied = await push.RunAsync(enumerator, cancellationToken).ConfigureAwait(false);
                    outcome = "accepted";
                    return applied;
                }
                finally
                {
                    alert = push.Alert;
                }
            }
            finally
            {
                OfflinePki.Telemetry.MirrorMetrics.SyncPushes.Add(1, new KeyValuePair<string, object?>("factory", meta.FactoryId),
                    new KeyValuePair<string, object?>("outcome", alert?.Fault.Replace(' ', '_') ?? outcome));

                // Recorded only once the push's transaction is rolled back: the alert store shares the registry file.
                if (alert is not null)
                {
                    RecordAlert(alert);
                }

                gate.Release();
            }
        }
    }

    /// <summary>A fault in words for alerts: <see cref="JournalFault.BadHash"/> becomes "bad hash".</summary>
    public static string FaultWords(JournalFault fault)
    {
        var name = fault.ToString();
        var sb = new System.Text.StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            if (i > 0 && char.IsUpper(name[i]))
            {
                sb.Append(' ');
            }

            sb.Append(char.ToLowerInvariant(name[i]));
        }

        return sb.ToString();
    }

    private void RecordAlert(SyncAlert alert)
    {
        if (_options.Alerts is not { } alerts)
        {
            return;
        }

        try
        {
            alerts.Record(alert);
        }
#pragma warning disable CA1031 // recording an alert must never mask the rejection itself
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _logger.LogError(ex, "could not record the sync alert for journal {Journal}", alert.JournalIdHex);
        }
    }

    private static void CheckJournalId(ByteString id, string field)
    {
        if (id.Length != JournalCodec.JournalIdSize)
        {
            throw new SyncRejectedException(SyncFault.InvalidRequest, null, $"{field} must be {JournalCodec.JournalIdSize} bytes, got {id.Length}");
        }
    }

    private static void CheckFactory(CallerIdentity caller, string factoryId)
    {
        if (!string.Equals(caller.Principal, factoryId, StringComparison.Ordinal))
        {
            throw new SyncRejectedException(SyncFault.PermissionDenied, null,
                $"client {caller.ClientName} may not push journal of factory {factoryId} (it is mapped to factory {caller.Principal})");
        }
    }

    /// <summary>One push: verifier, transaction, and the entries waiting for a checkpoint.</summary>
    private sealed class Push : IDisposable
    {
        private readonly SyncApplier _owner;
        private readonly CallerIdentity _caller;
        private readonly PushMetadata _meta;
        private readonly string _journalKey;
        private readonly byte[] _journalId;
        private readonly List<Pending> _pending = [];
        private readonly List<FactoryOrderRecord> _pendingOrders = [];
        private long _entryTimeMicros;
        private long _pendingBytes;
        private JournalState? _state;
        private JournalChainVerifier? _verifier;
        private IJournalApplyTransaction? _tx;
        private byte[]? _issuerKeyHash;
        private ulong _applied;
        private ulong _replayed;
        private ulong _expectedSeq;

        /// <summary>The alert to record once the push is rolled back, when it was rejected.</summary>
        public SyncAlert? Alert { get; private set; }

        public Push(SyncApplier owner, CallerIdentity caller, PushMetadata meta, string journalKey)
        {
            _owner = owner;
            _caller = caller;
            _meta = meta;
            _journalKey = journalKey;
            _journalId = meta.JournalId.ToByteArray();
        }

        public async Task<PushResponse> RunAsync(IAsyncEnumerator<PushRequest> enumerator, CancellationToken cancellationToken)
        {
            var sw = Stopwatch.StartNew();
            _state = _owner._sink.GetJournal(_journalId);
            if (_state is null)
            {
                if (_meta.FirstSeq != 1)
                {
                    throw new SyncRejectedException(SyncFault.Conflict, _meta.FirstSeq,
                        $"the mirror holds nothing of journal {_journalKey}; push it from seq 1 (genesis), not {_meta.FirstSeq}");
                }
            }
            else
            {
                CheckFactory(_caller, _state.FactoryId);
                if (_meta.FirstSeq > _state.HeadSeq + 1)
                {
                    throw new SyncRejectedException(SyncFault.Conflict, _meta.FirstSeq,
                        $"journal rejected at seq {_meta.FirstSeq}: Gap: the mirror head of journal {_journalKey} is seq {_state.HeadSeq}; resume from seq {_state.HeadSeq + 1}");
                }
            }

            _expectedSeq = _meta.FirstSeq;
            var head = _state is null ? JournalHead.Empty : new JournalHead(_state.HeadSeq, _state.HeadHash);
            var anchor = _state is null ? null : new JournalAnchor(_state.JournalId, _state.FactoryId, _state.IssuingCaCertificate, _state.JournalSignerCertificate);
            _verifier = new JournalChainVerifier(_owner._root, anchor, head, _owner._options.MaxEntryBytes) { MaterializeIssuedCertificates = false };
            if (_state is not null)
            {
                _issuerKeyHash = IssuerKeyHash(_state.IssuingCaCertificate);
            }

            try
            {
                // Pipeline: while batch N is checked in order and applied on this thread, the CA signatures of batch
                // N+1 are verified on the other cores (JournalChainVerifier.CheckCertificateSignaturesAhead).
                RepeatedField<JournalEntry>? pending = null;
                Task<JournalChainVerifier.CheckedAhead>? pendingChecks = null;
                try
                {
                    while (await enumerator.MoveNextAsync().ConfigureAwait(false))
                    {
                        var message = enumerator.Current;
                        if (message.BodyCase != PushRequest.BodyOneofCase.Entries)
                        {
                            throw new SyncRejectedException(SyncFault.InvalidRequest, null, "after the metadata, every PushRequest must carry entries");
                        }

                        var entries = message.Entries.Entries;
                        var verifier = _verifier;
                        var (batch, batchChecks) = (pending, pendingChecks);
                        (pending, pendingChecks) = (entries, Task.Run(() => verifier.CheckCertificateSignaturesAhead(entries), cancellationToken));
                        if (batch is not null)
                        {
                            await ApplyBatchAsync(batch, batchChecks!, cancellationToken).ConfigureAwait(false);
                        }
                    }

                    if (pending is not null)
                    {
                        await ApplyBatchAsync(pending, pendingChecks!, cancellationToken).ConfigureAwait(false);
                    }
                }
                finally
                {
                    if (pendingChecks is not null)
                    {
                        // A rejected push may leave the newest look-ahead running: let it finish before the verifier is
                        // disposed (after a completed push it has already been awaited).
                        try
                        {
                            await pendingChecks.ConfigureAwait(false);
                        }
                        catch (OperationCanceledException)
                        {
                            // cancelled with the call
                        }
                    }
                }
            }
            catch (JournalVerificationException ex)
            {
                _owner._logger.LogError("ALERT journal sync rejected: journal {Journal} factory {Factory} client {Client}: {Reason}; nothing of this push was applied",
                    _journalKey, _meta.FactoryId, _caller.ClientName, ex.Message);
                Alert = new SyncAlert(_owner._options.TimeProvider.GetUtcNow(), _meta.FactoryId, _journalKey, ex.Seq, MixedStream ? "mixed stream" : FaultWords(ex.Fault), ex.Message);
                throw new SyncRejectedException(SyncRejectedException.FaultFor(ex.Fault), ex.Seq, ex.Message, ex);
            }
            catch (SyncRejectedException ex) when (ex.Fault is SyncFault.PermissionDenied or SyncFault.ResourceExhausted)
            {
                _owner._logger.LogError("ALERT journal sync rejected: journal {Journal} factory {Factory} client {Client}: {Reason}; nothing of this push was applied",
                    _journalKey, _meta.FactoryId, _caller.ClientName, ex.Message);
                Alert = new SyncAlert(_owner._options.TimeProvider.GetUtcNow(), _meta.FactoryId, _journalKey, ex.Fault == SyncFault.PermissionDenied ? null : _expectedSeq - 1,
                    ex.Fault == SyncFault.PermissionDenied ? "permission denied" : "too many entries without a checkpoint", ex.Message);
                throw;
            }

            cancellationToken.ThrowIfCancellationRequested();
            if (_tx is not null && _applied > 0)
            {
                _tx.Commit();
            }

            var headState = _state;
            var response = headState is null
                ? new PushResponse { AppliedSeq = 0, HeadHash = ByteString.CopyFrom(new byte[JournalCodec.HashSize]), EntriesApplied = 0 }
                : new PushResponse { AppliedSeq = headState.HeadSeq, HeadHash = ByteString.CopyFrom(headState.HeadHash), EntriesApplied = _applied, Receipt = _owner.ReceiptFor(headState) };
            _owner.AddOrders(response.Orders, _meta.FactoryId);
            _owner._logger.LogInformation(
                "journal {Journal} factory {Factory}: applied {Applied} entries, replayed {Replayed}, dropped {Dropped} after the last checkpoint; head seq {Seq} ({Elapsed} ms)",
                _journalKey, _meta.FactoryId, _applied, _replayed, _pending.Count, response.AppliedSeq, sw.ElapsedMilliseconds);
            return response;
        }

        /// <summary>True when the push was rejected as a mixed stream (entries of another journal the mirror holds).</summary>
        public bool MixedStream { get; private set; }

        private async Task ApplyBatchAsync(RepeatedField<JournalEntry> entries, Task<JournalChainVerifier.CheckedAhead> checks, CancellationToken cancellationToken)
        {
            _verifier!.TrustCheckedAhead(await checks.ConfigureAwait(false));
            foreach (var entry in entries)
            {
                cancellationToken.ThrowIfCancellationRequested();
                Apply(entry);
            }
        }

        private void Apply(JournalEntry entry)
        {
            try
            {
                ApplyCore(entry);
            }
            catch (JournalVerificationException ex) when (ex.Fault is not (JournalFault.OutOfRange or JournalFault.Malformed))
            {
                // The entry does not chain onto this journal. Before calling it a fork (or a gap, a bad hash, a foreign
                // certificate), check whether it is an entry of another journal this mirror holds: a stream that mixes
                // two factories' journals gets its own diagnosis.
                if (FindForeignJournal(entry) is not { } foreign)
                {
                    throw;
                }

                MixedStream = true;
                throw new JournalVerificationException(entry.Seq, JournalFault.WrongJournal, string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"mixed stream: seq {entry.Seq} belongs to factory {foreign.Journal.FactoryId}'s journal {Convert.ToHexStringLower(foreign.Journal.JournalId)}, not factory {_meta.FactoryId}'s journal {_journalKey} ({foreign.How}; it would have been a {FaultWords(ex.Fault)}). Push each factory's journal on its own, from its own sync client"));
            }
        }

        /// <summary>
        /// The other journal (not this push's) that <paramref name="entry"/> belongs to, and how that is known: the mirror
        /// holds it with the same hash at the same seq; its prev_hash is that journal's previous entry; it is a checkpoint
        /// naming that journal; or its certificate is signed by that factory's issuing CA and not by this journal's. Null
        /// when no held journal claims it (then it is what the verifier said: a fork, a gap, ...). Cost: two primary-key
        /// lookups and at most one signature check per held journal, on the rejection path only.
        /// </summary>
        private (JournalState Journal, string How)? FindForeignJournal(JournalEntry entry)
        {
            if (_owner._sink is not IKnownJournals known)
            {
                return null;
            }

            var ownCa = _verifier?.Anchor?.IssuingCaCertificate ?? _state?.IssuingCaCertificate;
            foreach (var journal in known.ListJournals())
            {
                if (journal.JournalId.AsSpan().SequenceEqual(_journalId))
                {
                    continue;
                }

                if (HowItBelongs(entry, journal, ownCa) is { } how)
                {
                    return (journal, how);
                }
            }

            return null;
        }

        private string? HowItBelongs(JournalEntry entry, JournalState journal, byte[]? ownCa)
        {
            var sink = _owner._sink;
            if (entry.Seq is 0 or ulong.MaxValue)
            {
                return null;
            }

            if (sink.GetEntryHash(journal.JournalId, entry.Seq) is { } same && entry.Hash.Span.SequenceEqual(same))
            {
                return $"the mirror holds it as entry {entry.Seq} of that journal";
            }

            if (entry.Seq > 1 && sink.GetEntryHash(journal.JournalId, entry.Seq - 1) is { } previous && entry.PrevHash.Span.SequenceEqual(previous))
            {
                return $"its prev_hash is entry {entry.Seq - 1} of that journal";
            }

            try
            {
                switch (entry.Type)
                {
                    case EntryType.Checkpoint when Checkpoint.Parser.ParseFrom(entry.Payload).JournalId.Span.SequenceEqual(journal.JournalId):
                        return "it is a checkpoint of that journal";
                    case EntryType.CertificateIssued when ownCa is null || !ownCa.AsSpan().SequenceEqual(journal.IssuingCaCertificate):
                        var der = CertificateIssued.Parser.ParseFrom(entry.Payload).Certificate.Memory;
                        if (SignedBy(der, journal.IssuingCaCertificate) && (ownCa is null || !SignedBy(der, ownCa)))
                        {
                            return $"its certificate is signed by factory {journal.FactoryId}'s issuing CA";
                        }

                        break;
                }
            }
            catch (InvalidProtocolBufferException)
            {
                // Undecodable: not provably another journal's.
            }
            catch (CryptographicException)
            {
                // Undecodable certificate or an unusable CA key: not provably another journal's.
            }

            return null;
        }

        private static bool SignedBy(ReadOnlyMemory<byte> certificate, byte[] caDer)
        {
            var parts = DerCertificateParts.Parse(certificate);
            using var ca = X509CertificateLoader.LoadCertificate(caDer);
            if (!parts.Issuer.Span.SequenceEqual(ca.SubjectName.RawData))
            {
                return false;
            }

            using var key = SignatureCheckKey.FromCertificate(ca);
            return key.VerifyX509Signature(parts.SignatureAlgorithmOid, parts.Tbs.Span, parts.Signature.Span);
        }

        private void ApplyCore(JournalEntry entry)
        {
            if (entry.Seq == 0 || entry.Seq == ulong.MaxValue)
            {
                throw new JournalVerificationException(entry.Seq, JournalFault.OutOfRange, "seq must be between 1 and 2^64-2");
            }

            if (entry.Seq != _expectedSeq)
            {
                var fault = entry.Seq > _expectedSeq ? JournalFault.Gap : JournalFault.Fork;
                throw new JournalVerificationException(entry.Seq, fault, $"expected seq {_expectedSeq} in this push");
            }

            _expectedSeq++;
            if (_state is not null && entry.Seq <= _state.HeadSeq)
            {
                var stored = _owner._sink.GetEntryHash(_journalId, entry.Seq);
                if (stored is null || !entry.Hash.Span.SequenceEqual(stored))
                {
                    throw new JournalVerificationException(entry.Seq, JournalFault.Fork,
                        $"the mirror holds entry {entry.Seq} with hash {(stored is null ? "(none)" : Convert.ToHexStringLower(stored))}, the push has {Convert.ToHexStringLower(entry.Hash.Span)}");
                }

                _replayed++;
                return;
            }

            _entryTimeMicros = entry.TimeUnixMicros;
            var verified = _verifier!.Accept(entry);
            IssuedCertificateRecord? record = null;
            object? device = null;
            switch (verified.Payload)
            {
                case OrderAccepted o:
                    _pendingOrders.Add(new FactoryOrderRecord(_journalId, entry.Seq, o.OrderId, o.SignedOrder.ToByteArray(), o.OrderSha256.ToByteArray(), o.Source,
                        JournalCodec.FromUnixMicros(entry.TimeUnixMicros)));
                    break;
                case Genesis g:
                    if (!string.Equals(g.FactoryId, _caller.Principal, StringComparison.Ordinal))
                    {
                        throw new SyncRejectedException(SyncFault.PermissionDenied, entry.Seq,
                            $"client {_caller.ClientName} may not push journal of factory {g.FactoryId}");
                    }

                    if (!g.JournalId.Span.SequenceEqual(_journalId) || !string.Equals(g.FactoryId, _meta.FactoryId, StringComparison.Ordinal))
                    {
                        throw new JournalVerificationException(entry.Seq, JournalFault.WrongJournal,
                            $"genesis names journal {Convert.ToHexStringLower(g.JournalId.Span)} of factory {g.FactoryId}, the push metadata names journal {_journalKey} of factory {_meta.FactoryId}");
                    }

                    _issuerKeyHash = IssuerKeyHash(g.IssuingCaChain[0].Span);
                    break;
                case CertificateIssued c:
                    record = Record(entry.Seq, c);
                    device = DeviceEvents.Issuance(_meta.FactoryId, entry, c, record);
                    break;
                case EnrollmentRefused r:
                    device = DeviceEvents.Report(_meta.FactoryId, _journalKey, entry, r);
                    break;
            }

            var raw = entry.ToByteArray();
            _pending.Add(new Pending(entry.Seq, entry.Hash.ToByteArray(), (int)entry.Type, raw, record) { Device = device });
            _pendingBytes += raw.Length;
            if (entry.Type == EntryType.Checkpoint)
            {
                Flush();
            }
            else if (_pendingBytes > _owner._options.MaxUncheckpointedBytes)
            {
                throw new SyncRejectedException(SyncFault.ResourceExhausted, entry.Seq,
                    $"more than {_owner._options.MaxUncheckpointedBytes} bytes of entries after seq {_state?.HeadSeq ?? 0} without a checkpoint; the factory must checkpoint more often");
            }
        }

        private void Flush()
        {
            _tx ??= _owner._sink.BeginApply();
            foreach (var order in _pendingOrders)
            {
                _tx.AddOrderAccepted(order);
            }

            _pendingOrders.Clear();
            foreach (var p in _pending)
            {
                _tx.AddEntry(_journalId, p.Seq, p.Hash, p.Type, p.Raw);
                if (p.Certificate is not null)
                {
                    _tx.AddCertificate(p.Certificate);
                }

                if (p.Device is not null)
                {
                    DeviceEvents.Apply(_tx, p.Device);
                }
            }

            _applied += (ulong)_pending.Count;
            var last = _pending[^1];
            _pending.Clear();
            _pendingBytes = 0;
            var anchor = _verifier!.Anchor!;
            _state = new JournalState(anchor.JournalId, anchor.FactoryId, anchor.IssuingCaCertificate, anchor.JournalSignerCertificate, last.Seq, last.Hash);
            _tx.SetJournal(_state);
        }

        private IssuedCertificateRecord Record(ulong seq, CertificateIssued c)
        {
            var parts = DerCertificateParts.Parse(c.Certificate.Memory);
            return new IssuedCertificateRecord(
                SerialNumber.Normalize(parts.SerialNumber.Span),
                _issuerKeyHash!,
                c.Certificate.ToByteArray(),
                c.DeviceId,
                c.StationId,
                c.BatchId,
                parts.NotBefore,
                parts.NotAfter,
                _journalId,
                seq)
            {
                Details = Details(c),
            };
        }

        /// <summary>The journal's issuance facts for the mirror's per-order and batch reports (issuance_details), at the current entry's time.</summary>
        private IssuanceDetails Details(CertificateIssued c) => new(
            c.OperatorId, c.MacAddress, (int)c.Kind, c.Label, c.Profile, JournalCodec.FromUnixMicros(_entryTimeMicros),
            Convert.ToHexStringLower(SHA256.HashData(c.Certificate.Span)), c.SupersedesSerial.ToByteArray(), c.ServerGeneratedKey);

        public void Dispose()
        {
            _tx?.Dispose();
            _verifier?.Dispose();
        }

        private sealed record Pending(ulong Seq, byte[] Hash, int Type, byte[] Raw, IssuedCertificateRecord? Certificate)
        {
            /// <summary>A <see cref="DeviceIssuance"/> or <see cref="DeviceReport"/> to apply with the entry, or null.</summary>
            public object? Device { get; init; }
        }
    }

    /// <summary>RFC 6960 §4.1.1 issuerKeyHash: SHA-1 over the value (excluding tag, length and unused-bits octet) of the issuing CA's subjectPublicKey BIT STRING.</summary>
    internal static byte[] IssuerKeyHash(ReadOnlySpan<byte> issuingCaDer)
    {
        using var ca = X509CertificateLoader.LoadCertificate(issuingCaDer);
#pragma warning disable CA5350 // SHA-1 is what RFC 6960 CertID uses; not a security decision here.
        return SHA1.HashData(ca.PublicKey.EncodedKeyValue.RawData);
#pragma warning restore CA5350
    }
}
