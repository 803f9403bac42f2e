using System.Net;
using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
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

    private readonly JournalSync.JournalSyncClient _client;
    private readonly IJournalReader _reader;
    private readonly IJournalAppender _appender;
    private readonly SyncOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);
    private Genesis? _genesis;

    /// <summary>Creates the sync client.</summary>
    /// <param name="channel">The gRPC channel to the mirror (mTLS, see <see cref="JournalSyncChannel.Create(Uri, X509Certificate2, X509Certificate2, TimeProvider?)"/>); not disposed by this client.</param>
    /// <param name="reader">Reads our journal.</param>
    /// <param name="appender">Writes the checkpoint that ends each push.</param>
    /// <param name="options">Batch sizes and deadlines.</param>
    /// <param name="timeProvider">Clock for durations; <see cref="TimeProvider.System"/> when null.</param>
    /// <param name="logger">Logger; fork alerts are logged at Critical.</param>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    public JournalSyncClient(ChannelBase channel, IJournalReader reader, IJournalAppender appender, SyncOptions options,
        TimeProvider? timeProvider = null, ILogger<JournalSyncClient>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(channel);
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(appender);
        ArgumentNullException.ThrowIfNull(options);
        _client = new JournalSync.JournalSyncClient(channel);
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
    /// <exception cref="RpcException">The mirror refused the push or could not be reached (<see cref="RpcException.StatusCode"/> says which,
    /// <see cref="Status.Detail"/> why): e.g. FAILED_PRECONDITION for a gap or fork the mirror found, PERMISSION_DENIED for another
    /// factory's journal, UNAVAILABLE when the mirror cannot be reached, DEADLINE_EXCEEDED after <see cref="SyncOptions.Timeout"/> or
    /// <see cref="SyncOptions.PushTimeout"/>, CANCELLED when <paramref name="cancellationToken"/> fires during a call.</exception>
    /// <exception cref="JournalSyncException">The mirror's journal diverges from ours (fork), or the mirror answered inconsistently.</exception>
    /// <exception cref="JournalUnavailableException">Our journal cannot write the checkpoint or be read.</exception>
    public async Task<SyncResult> SyncOnceAsync(CancellationToken cancellationToken = default)
    {
        await _oneAtATime.WaitAsync(cancellationToken).ConfigureAwait(false);
        string outcome = "error";
        try
        {
            var result = await SyncCoreAsync(cancellationToken).ConfigureAwait(false);
            outcome = "success";
            LastSuccess = (_time.GetUtcNow(), result.AppliedSeq);
            return result;
        }
        catch (JournalSyncException ex) when (ex.IsFork)
        {
            outcome = "fork";
            throw;
        }
        finally
        {
            OfflinePki.Telemetry.FactoryMetrics.SyncRuns.Add(1, new KeyValuePair<string, object?>("outcome", outcome));
            _oneAtATime.Release();
        }
    }

    /// <summary>
    /// Time of the last successful <see cref="SyncOnceAsync"/> and the seq the mirror had applied then, or null before the
    /// first success in this process (for the sync-lag metrics).
    /// </summary>
    public (DateTimeOffset At, ulong AppliedSeq)? LastSuccess { get; private set; }

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
        var mirror = await _client.GetHeadAsync(new GetHeadRequest { JournalId = genesis.JournalId, FactoryId = genesis.FactoryId },
            deadline: Deadline(_options.Timeout), cancellationToken: cancellationToken).ConfigureAwait(false);

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
            var response = await PushAsync(Stream(genesis, from + 1, target, pushed, cancellationToken), cancellationToken).ConfigureAwait(false);

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

    /// <summary>
    /// One PushEntries call: writes the requests as they are read (one flush per message, never buffered whole), then
    /// half-closes. When the mirror ends the call early (a rejection), the write fails and the mirror's status is thrown.
    /// </summary>
    private async Task<PushResponse> PushAsync(IAsyncEnumerable<PushRequest> requests, CancellationToken cancellationToken)
    {
        using var call = _client.PushEntries(deadline: Deadline(_options.PushTimeout), cancellationToken: cancellationToken);
        try
        {
            await foreach (var request in requests.WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                await call.RequestStream.WriteAsync(request, cancellationToken).ConfigureAwait(false);
            }

            await call.RequestStream.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RpcException || (ex is InvalidOperationException && call.ResponseAsync.IsCompleted))
        {
            // The call ended while we were writing: the mirror refused the push, or the deadline, cancellation or the link
            // ended it. The call's status, not the failed write, is the error.
            return await call.ResponseAsync.ConfigureAwait(false);
        }

        return await call.ResponseAsync.ConfigureAwait(false);
    }

    private DateTime Deadline(TimeSpan timeout) => (_time.GetUtcNow() + timeout).UtcDateTime;

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

/// <summary>
/// The factory's gRPC channel to the mirror: HTTP/2 over TLS 1.2/1.3 (ALPN h2) with our client certificate, and a server
/// certificate check that requires the host name to match and the chain to end at one private trust anchor.
/// </summary>
public static class JournalSyncChannel
{
    /// <summary>Largest message sent or accepted, in bytes (4 MiB, as grpc-core's default receive limit).</summary>
    public const int DefaultMaxMessageBytes = SyncLimits.DefaultMaxMessageBytes;

    private static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1");

    /// <summary>Creates a channel that dials <paramref name="mirrorUrl"/> over mutual TLS. Dispose it to close the connection.</summary>
    /// <param name="mirrorUrl">"https://host:port/" of the mirror; the host is checked against the server certificate's SAN.</param>
    /// <param name="clientCertificate">Our TLS client certificate, with its private key (clientAuth EKU).</param>
    /// <param name="serverTrustAnchor">The only root trusted for the server certificate (the TLS CA); the system store is not used.</param>
    /// <param name="timeProvider">Clock for certificate validity; <see cref="TimeProvider.System"/> when null.</param>
    /// <returns>The channel; it owns its handler.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="mirrorUrl"/> is not https, or the client certificate has no private key.</exception>
    public static GrpcChannel Create(Uri mirrorUrl, X509Certificate2 clientCertificate, X509Certificate2 serverTrustAnchor, TimeProvider? timeProvider = null) =>
        Create(mirrorUrl, CreateTlsHandler(mirrorUrl, clientCertificate, serverTrustAnchor, timeProvider ?? TimeProvider.System));

    /// <summary>Creates a channel over a handler from <see cref="CreateTlsHandler"/> (e.g. after choosing the client key per connection).</summary>
    /// <param name="mirrorUrl">"https://host:port/" of the mirror.</param>
    /// <param name="handler">The HTTP/2 handler; the channel disposes it.</param>
    /// <param name="maxMessageBytes">Largest message sent or accepted, in bytes; larger fails with RESOURCE_EXHAUSTED.</param>
    /// <returns>The channel.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxMessageBytes"/> is not positive.</exception>
    public static GrpcChannel Create(Uri mirrorUrl, HttpMessageHandler handler, int maxMessageBytes = DefaultMaxMessageBytes)
    {
        ArgumentNullException.ThrowIfNull(mirrorUrl);
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxMessageBytes);
        return GrpcChannel.ForAddress(mirrorUrl, new GrpcChannelOptions
        {
            HttpHandler = new TlsFailureHandler(handler, mirrorUrl),
            DisposeHttpClient = true,
            MaxSendMessageSize = maxMessageBytes,
            MaxReceiveMessageSize = maxMessageBytes,
        });
    }

    /// <summary>
    /// Reports a failed TLS handshake (an untrusted or misnamed server certificate) as a connection failure, so the call ends
    /// UNAVAILABLE (grpc-dotnet maps I/O failures there; an authentication failure alone would be INTERNAL), with what to check.
    /// </summary>
    private sealed class TlsFailureHandler(HttpMessageHandler inner, Uri mirrorUrl) : DelegatingHandler(inner)
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            try
            {
                return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException ex) when (ex.InnerException is System.Security.Authentication.AuthenticationException auth)
            {
                throw new HttpRequestException(HttpRequestError.SecureConnectionError,
                    $"TLS handshake with {mirrorUrl.Authority} failed ({auth.Message}): its certificate must chain to the configured trust anchor and name that host",
                    new IOException(auth.Message, auth));
            }
        }
    }

    /// <summary>
    /// The TLS handler of the channel: HTTP/2 over TLS 1.2/1.3, our client certificate, no proxy, no decompression, and
    /// <see cref="ValidateServerCertificate"/> against <paramref name="serverTrustAnchor"/>.
    /// </summary>
    /// <param name="mirrorUrl">"https://host:port/" of the mirror.</param>
    /// <param name="clientCertificate">Our TLS client certificate, with its private key.</param>
    /// <param name="serverTrustAnchor">The only root trusted for the server certificate.</param>
    /// <param name="timeProvider">Clock for certificate validity.</param>
    /// <returns>The handler.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">Not https, or the client certificate has no private key.</exception>
    public static SocketsHttpHandler CreateTlsHandler(Uri mirrorUrl, X509Certificate2 clientCertificate, X509Certificate2 serverTrustAnchor, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(mirrorUrl);
        ArgumentNullException.ThrowIfNull(clientCertificate);
        ArgumentNullException.ThrowIfNull(serverTrustAnchor);
        ArgumentNullException.ThrowIfNull(timeProvider);
        if (mirrorUrl.Scheme != Uri.UriSchemeHttps)
        {
            throw new ArgumentException($"The mirror URL must be https (got {mirrorUrl.Scheme}).", nameof(mirrorUrl));
        }

        if (!clientCertificate.HasPrivateKey)
        {
            throw new ArgumentException($"The client certificate {clientCertificate.Subject} has no private key.", nameof(clientCertificate));
        }

        return new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(10),
            EnableMultipleHttp2Connections = false,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2),
            AutomaticDecompression = DecompressionMethods.None,
            UseProxy = false,
            SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificates = [clientCertificate],
                EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                RemoteCertificateValidationCallback = (_, cert, presented, errors) =>
                    ValidateServerCertificate(cert, presented, errors, serverTrustAnchor, timeProvider),
            },
        };
    }

    /// <summary>
    /// Validates a server certificate against one trust anchor: the host name must match (no
    /// RemoteCertificateNameMismatch/NotAvailable), and the chain must build to <paramref name="anchor"/> with
    /// CustomRootTrust, the serverAuth EKU, at the current time of <paramref name="timeProvider"/>, without fetching
    /// anything (no AIA downloads, no revocation check).
    /// </summary>
    /// <param name="certificate">The presented leaf, or null.</param>
    /// <param name="presented">The chain the server sent, used only as extra intermediates.</param>
    /// <param name="errors">What the TLS layer found.</param>
    /// <param name="anchor">The only trusted root.</param>
    /// <param name="timeProvider">Clock for validity.</param>
    /// <returns>True when the server is trusted.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="anchor"/> or <paramref name="timeProvider"/> is null.</exception>
    public static bool ValidateServerCertificate(X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors,
        X509Certificate2 anchor, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(anchor);
        ArgumentNullException.ThrowIfNull(timeProvider);
        if (certificate is null
            || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
        {
            return false;
        }

        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        using var chain = PinnedChain.Create(anchor, ServerAuth, timeProvider.GetUtcNow());
        if (presented is not null)
        {
            foreach (var element in presented.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        return chain.Build(leaf);
    }
}
