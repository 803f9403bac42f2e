using System.Collections.Concurrent;
using OfflinePki.Asn1;
using OfflinePki.Registry;
using OfflinePki.Revocation;

namespace OfflinePki.Ocsp;

/// <summary>
/// Pre-signing policy (RFC 5019 §2.2.3, §6: responses for every known certificate are produced ahead of requests).
/// </summary>
/// <param name="MaxCachedResponses">
/// At most this many pre-signed responses are held (each ≈ its DER, 600–900 octets with the responder certificate,
/// plus ≈ 200 octets of index). Certificates beyond the bound keep a status-only index entry (≈ 150 octets) and are
/// signed on demand into the LRU of <see cref="OcspResponderSettings.MaxCacheEntries"/>. Positive.
/// </param>
/// <param name="RefreshBefore">A pre-signed response is re-signed this long before its nextUpdate; in (0, validity).</param>
/// <param name="PollInterval">How often the index re-reads the registry version counters even when the WAL stamp did not move; positive.</param>
public sealed record OcspPresignSettings(int MaxCachedResponses, TimeSpan RefreshBefore, TimeSpan PollInterval);

/// <summary>Counters of the pre-signed index, for logs and benchmarks.</summary>
/// <param name="Certificates">Certificates in the status index.</param>
/// <param name="Presigned">Of those, how many hold a current pre-signed response.</param>
/// <param name="Complete">True when the index holds every certificate of the registry (a miss then means never issued, no SQL needed).</param>
public sealed record OcspIndexStatistics(long Certificates, long Presigned, bool Complete);

public sealed partial class OcspResponder
{
    private PresignedIndex? _index;

    /// <summary>
    /// Turns on the pre-signed index: every certificate of <paramref name="feed"/> gets a status entry and (up to
    /// <see cref="OcspPresignSettings.MaxCachedResponses"/>) a signed RFC 5019 single response, so that a nonce-less
    /// single-CertID request in the RFC 5019 shape is a dictionary lookup. Call once, before serving; then call
    /// <see cref="MaintainPresigned"/> periodically (a background service does).
    /// </summary>
    /// <param name="feed">The registry's certificate feed.</param>
    /// <param name="settings">Bounds and timings.</param>
    /// <exception cref="ArgumentException">A setting is out of range (the message names it).</exception>
    /// <exception cref="InvalidOperationException">Pre-signing is already enabled.</exception>
    public void EnablePresigning(ICertificateFeed feed, OcspPresignSettings settings)
    {
        ArgumentNullException.ThrowIfNull(feed);
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.MaxCachedResponses < 1)
        {
            throw new ArgumentException("MaxCachedResponses must be at least 1", nameof(settings));
        }

        if (settings.RefreshBefore <= TimeSpan.Zero || settings.RefreshBefore >= _settings.Validity)
        {
            throw new ArgumentException($"RefreshBefore {settings.RefreshBefore} must be in (0, validity {_settings.Validity})", nameof(settings));
        }

        if (settings.PollInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException("PollInterval must be positive", nameof(settings));
        }

        if (_index is not null)
        {
            throw new InvalidOperationException("pre-signing is already enabled");
        }

        _index = new PresignedIndex(this, feed, settings);
    }

    /// <summary>
    /// One maintenance pass of the pre-signed index: load new certificates from the feed, apply revocations (and
    /// hold releases), then sign every response that is missing, signed by a replaced responder, or within
    /// <see cref="OcspPresignSettings.RefreshBefore"/> of its nextUpdate. Returns how many responses were signed.
    /// Does nothing when pre-signing is off.
    /// </summary>
    /// <param name="cancellationToken">Stops the pass between signatures.</param>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public int MaintainPresigned(CancellationToken cancellationToken = default) => _index?.Maintain(cancellationToken) ?? 0;

    /// <summary>Waits until a revocation or a responder change asks for re-signing, or <paramref name="timeout"/> passes.</summary>
    /// <param name="timeout">Longest wait.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    public Task WaitForPresignWorkAsync(TimeSpan timeout, CancellationToken cancellationToken) =>
        _index?.WaitForWorkAsync(timeout, cancellationToken) ?? Task.Delay(timeout, _time, cancellationToken);

    /// <summary>Counters of the pre-signed index, or null when pre-signing is off.</summary>
    public OcspIndexStatistics? PresignStatistics => _index?.Statistics();

    /// <summary>The current issuer entries (after any responder renewal).</summary>
    public IReadOnlyList<OcspIssuer> Issuers => _issuers;

    /// <summary>
    /// Switches the responder of one issuer atomically (RFC 6960 §4.2.2.2 delegated responder renewal): requests after
    /// this call are signed with <paramref name="replacement"/>; pre-signed responses of that issuer are re-signed by the
    /// next maintenance pass (until then the previous responses, whose responder certificate is still valid, are served).
    /// </summary>
    /// <param name="replacement">The new entry; its issuing CA must be one already configured.</param>
    /// <exception cref="ArgumentException">No configured issuer has the same issuerKeyHash.</exception>
    public void ReplaceIssuer(OcspIssuer replacement)
    {
        ArgumentNullException.ThrowIfNull(replacement);
        var current = _issuers;
        int i = Array.FindIndex(current, x => x.RegistryKeyHashHex == replacement.RegistryKeyHashHex);
        if (i < 0)
        {
            throw new ArgumentException($"no configured issuer has issuerKeyHash {replacement.RegistryKeyHashHex}", nameof(replacement));
        }

        var next = (OcspIssuer[])current.Clone();
        next[i] = replacement;
        _issuers = next;
        _index?.ResponderChanged(replacement);
        _cache.Clear();
    }

    private OcspIssuer? FindIssuer(OcspCertId certId)
    {
        foreach (var issuer in _issuers)
        {
            if (issuer.Matches(certId))
            {
                return issuer;
            }
        }

        return null;
    }

    private OcspAnswer SignOne(OcspIssuer issuer, OcspCertId certId, CertificateStatus status, DateTimeOffset now)
    {
        var single = Draft(certId, status, now);
        var draft = new OcspResponseDraft(issuer.ResponderKeyHash, now, [single], null, false,
            single.NeverIssued && single.Status == OcspCertStatus.Revoked, issuer.ResponderNotBefore, issuer.ResponderNotAfter);
        OcspLints.Enforce(_lints, draft);
        return new OcspAnswer(Sign(issuer, draft), OcspResponseStatus.Successful, now, single.NextUpdate, false);
    }

    private sealed class IssuerState(string keyHashHex, byte[] keyHash)
    {
        public string KeyHashHex { get; } = keyHashHex;

        public byte[] KeyHash { get; } = keyHash;

        public PresignedTable Table { get; } = new();

        public long RevocationVersion { get; set; } = -1;

        public volatile bool Ready;

        public volatile int Epoch;
    }

    /// <summary>
    /// The pre-signed index. Hot path: one pread of the WAL-index header (did any process commit?), one dictionary
    /// lookup, no SQL and no signature. A changed header makes the request that sees it re-read the version counters and
    /// apply what changed (new certificates, revocations) under a lock before answering; if the lock is busy (a large
    /// load), the request takes the slow SQL path instead, so an answer is never staler than the last commit.
    /// </summary>
    private sealed class PresignedIndex
    {
        private const int Chunk = 10_000;
        private const int HotPathRows = 1_000;
        private readonly OcspResponder _owner;
        private readonly ICertificateFeed _feed;
        private readonly OcspPresignSettings _settings;
        private readonly Dictionary<string, IssuerState> _states = new(StringComparer.Ordinal);
        private readonly Lock _sync = new();
        private readonly LruCache<string, (long Generation, long RefreshAtUnix, OcspAnswer Answer)> _onDemand;
        private readonly SemaphoreSlim _wake = new(0, 1);
        private byte[]? _stamp;
        private long _lastCheck;
        private long _lastRowId;
        private long _registryVersion = -1;
        private volatile bool _complete;
        private long _generation;
        private long _presigned;

        public PresignedIndex(OcspResponder owner, ICertificateFeed feed, OcspPresignSettings settings)
        {
            _owner = owner;
            _feed = feed;
            _settings = settings;
            _onDemand = new LruCache<string, (long, long, OcspAnswer)>(owner._settings.MaxCacheEntries);
            foreach (var issuer in owner._issuers)
            {
                _states[issuer.RegistryKeyHashHex] = new IssuerState(issuer.RegistryKeyHashHex, issuer.RegistryKeyHash);
            }
        }

        public OcspIndexStatistics Statistics() =>
            new(_states.Values.Sum(s => (long)s.Table.Count), Interlocked.Read(ref _presigned), _complete);

        public async Task WaitForWorkAsync(TimeSpan timeout, CancellationToken cancellationToken)
        {
            try
            {
                await _wake.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                // shutting down
            }
        }

        public void ResponderChanged(OcspIssuer issuer)
        {
            if (_states.TryGetValue(issuer.RegistryKeyHashHex, out var state))
            {
                state.Epoch++;
            }

            Interlocked.Increment(ref _generation);
            Wake();
        }

        public bool TryAnswer(OcspIssuer issuer, OcspCertId certId, out OcspAnswer answer)
        {
            answer = null!;
            if (!_states.TryGetValue(issuer.RegistryKeyHashHex, out var state) || !state.Ready || !EnsureCurrent())
            {
                return false;
            }

            var now = DerTime.Truncate(_owner._time.GetUtcNow());
            long nowUnix = now.ToUnixTimeSeconds();
            var serial = TryNormalize(certId.Serial);
            bool canonical = issuer.IsCanonical(certId);
            if (serial is not null && SerialKey.TryCreate(serial, out var key) && state.Table.TryFind(key, out int slot))
            {
                var view = state.Table.Read(slot, withAnswer: canonical);
                if (canonical && view.Answer is { } ready && nowUnix < view.RefreshAtUnix && view.Epoch == state.Epoch)
                {
                    t_cacheHit = true;
                    answer = ready;
                    return true;
                }

                if (canonical)
                {
                    answer = _owner.SignOne(issuer, certId, view.Status, now);
                    Store(state, slot, view, answer, state.Epoch);
                    return true;
                }

                answer = OnDemand(issuer, certId, view.Status, now);
                return true;
            }

            if (!_complete)
            {
                return false;
            }

            answer = OnDemand(issuer, certId, CertificateStatus.NeverIssued, now);
            return true;
        }

        private OcspAnswer OnDemand(OcspIssuer issuer, OcspCertId certId, CertificateStatus status, DateTimeOffset now)
        {
            var key = issuer.RegistryKeyHashHex + Convert.ToBase64String(certId.Encoded);
            long generation = Interlocked.Read(ref _generation);
            if (_onDemand.TryGet(key, out var hit) && hit.Generation == generation && now.ToUnixTimeSeconds() < hit.RefreshAtUnix)
            {
                t_cacheHit = true;
                return hit.Answer;
            }

            var answer = _owner.SignOne(issuer, certId, status, now);
            _onDemand.Set(key, (generation, RefreshAt(answer), answer));
            return answer;
        }

        private long RefreshAt(OcspAnswer answer) => (answer.NextUpdate!.Value - _settings.RefreshBefore).ToUnixTimeSeconds();

        // Stores a freshly signed answer if the slot did not change since `view` was read and the bound allows.
        private bool Store(IssuerState state, int slot, PresignedView view, OcspAnswer answer, int epoch)
        {
            bool had = view.HasAnswer;
            if (!had && Interlocked.Increment(ref _presigned) > _settings.MaxCachedResponses)
            {
                Interlocked.Decrement(ref _presigned);
                return false;
            }

            var (stored, _) = state.Table.TryStore(slot, view.Version, answer, RefreshAt(answer), epoch, mayTakeCell: true);
            if (!stored && !had)
            {
                Interlocked.Decrement(ref _presigned);
            }

            return stored;
        }

        private void Replace(IssuerState state, int slot, CertificateStatus status)
        {
            if (state.Table.Replace(slot, status))
            {
                Interlocked.Decrement(ref _presigned);
            }
        }

        private void Wake()
        {
            if (_wake.CurrentCount == 0)
            {
                try
                {
                    _wake.Release();
                }
                catch (SemaphoreFullException)
                {
                    // already signalled
                }
            }
        }

        // True when the index reflects every commit up to now.
        private bool EnsureCurrent()
        {
            var stamp = _feed.ChangeStamp();
            var elapsed = _owner._time.GetElapsedTime(Interlocked.Read(ref _lastCheck));
            if (stamp is { } s && _stamp is { } last && s.Span.SequenceEqual(last) && elapsed < _settings.PollInterval)
            {
                return true;
            }

            if (!_sync.TryEnter())
            {
                return false;
            }

            try
            {
                return Sync(HotPathRows);
            }
            finally
            {
                _sync.Exit();
            }
        }

        // Under _sync. Reads the counters, then at most maxRows new certificates, then revocations of issuers whose
        // revocation counter moved. Returns true when the index is current (all rows drained).
        private bool Sync(int maxRows)
        {
            var stamp = _feed.ChangeStamp()?.ToArray();
            long checkedAt = _owner._time.GetTimestamp();
            long registryVersion = _owner._source.RegistryVersion;
            var revocationVersions = _states.Values.ToDictionary(s => s, s => _owner._source.GetRevocationVersion(s.KeyHash));
            bool changed = false;
            bool drained = true;
            if (registryVersion != _registryVersion)
            {
                var added = new Dictionary<IssuerState, List<(SerialKey Key, byte[] Serial)>>();
                int read = 0;
                drained = false;
                while (read < maxRows)
                {
                    int want = Math.Min(Chunk, maxRows - read);
                    var rows = _feed.ReadAfter(_lastRowId, want);
                    foreach (var row in rows)
                    {
                        _lastRowId = row.RowId;
                        if (_states.TryGetValue(Convert.ToHexString(row.IssuerKeyHash), out var state) &&
                            SerialKey.TryCreate(row.Serial, out var key) && state.Table.TryAdd(key, CertificateStatus.Good))
                        {
                            if (!added.TryGetValue(state, out var list))
                            {
                                added[state] = list = [];
                            }

                            list.Add((key, row.Serial));
                        }
                    }

                    read += rows.Count;
                    if (rows.Count < want)
                    {
                        drained = true;
                        break;
                    }
                }

                foreach (var (state, serials) in added)
                {
                    changed = true;
                    if (state.Ready && serials.Count <= HotPathRows && revocationVersions[state] == state.RevocationVersion)
                    {
                        // Few new certificates of an issuer whose revocations are applied: check just these.
                        foreach (var (key, serial) in serials)
                        {
                            var status = _owner._source.GetStatus(state.KeyHash, serial);
                            if (status.State == RegistryCertificateState.Revoked && state.Table.TryFind(key, out int slot))
                            {
                                Replace(state, slot, status);
                            }
                        }
                    }
                    else
                    {
                        state.RevocationVersion = -1;
                    }
                }

                if (drained)
                {
                    _registryVersion = registryVersion;
                }
            }

            foreach (var (state, version) in revocationVersions)
            {
                if (version != state.RevocationVersion && (drained || state.Ready))
                {
                    changed |= ApplyRevocations(state);
                    state.RevocationVersion = version;
                }

                if (drained)
                {
                    state.Ready = true;
                }
            }

            _complete = drained;
            _stamp = stamp;
            Interlocked.Exchange(ref _lastCheck, checkedAt);
            if (changed)
            {
                Interlocked.Increment(ref _generation);
                Wake();
            }

            return drained;
        }

        // Makes the index agree with the registry's revocations of one issuer (revoked, changed, or released holds).
        private bool ApplyRevocations(IssuerState state)
        {
            var revoked = new Dictionary<SerialKey, RevokedEntry>();
            foreach (var r in _owner._source.EnumerateRevoked(state.KeyHash))
            {
                if (SerialKey.TryCreate(r.Serial, out var key))
                {
                    revoked[key] = r;
                }
            }

            bool changed = false;
            var table = state.Table;
            foreach (var (key, r) in revoked)
            {
                if (table.TryFind(key, out int slot) && !SameRevocation(table.Read(slot, withAnswer: false).Status.Revocation, r))
                {
                    Replace(state, slot, new CertificateStatus(RegistryCertificateState.Revoked, r));
                    changed = true;
                }
            }

            for (int slot = 0, count = table.Count; slot < count; slot++)
            {
                if (table.Read(slot, withAnswer: false).Status.State == RegistryCertificateState.Revoked && !revoked.ContainsKey(table.KeyAt(slot)))
                {
                    Replace(state, slot, CertificateStatus.Good);
                    changed = true;
                }
            }

            return changed;
        }

        private static bool SameRevocation(RevokedEntry? a, RevokedEntry b) =>
            a is not null && a.RevocationTime == b.RevocationTime && a.Reason == b.Reason && a.InvalidityDate == b.InvalidityDate;

        public int Maintain(CancellationToken cancellationToken)
        {
            // Load: chunks under the lock, so hot-path requests interleave (they take the SQL path meanwhile).
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                bool drained;
                lock (_sync)
                {
                    drained = Sync(Chunk);
                }

                if (drained)
                {
                    break;
                }
            }

            int signed = 0;
            foreach (var state in _states.Values)
            {
                var issuer = Array.Find(_owner._issuers, i => i.RegistryKeyHashHex == state.KeyHashHex)!;
                var now = DerTime.Truncate(_owner._time.GetUtcNow());
                long nowUnix = now.ToUnixTimeSeconds();
                int epoch = state.Epoch;
                var table = state.Table;
                Parallel.For(0, table.Count, new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = Environment.ProcessorCount }, slot =>
                {
                    var view = table.Read(slot, withAnswer: false);
                    if (view.HasAnswer && view.RefreshAtUnix > nowUnix && view.Epoch == epoch)
                    {
                        return;
                    }

                    if (!view.HasAnswer && Interlocked.Read(ref _presigned) >= _settings.MaxCachedResponses)
                    {
                        return;
                    }

                    var serial = table.KeyAt(slot).ToArray();
                    var certIdDer = issuer.CanonicalCertId(serial);
                    var certId = new OcspCertId(certIdDer, Oids.Sha1, issuer.Sha1NameHash, issuer.RegistryKeyHash, serial);
                    var answer = _owner.SignOne(issuer, certId, view.Status, now);
                    if (Store(state, slot, view, answer, epoch))
                    {
                        Interlocked.Increment(ref signed);
                    }
                });
            }

            return signed;
        }
    }
}

/// <summary>A small thread-safe least-recently-used cache.</summary>
/// <typeparam name="TKey">Key.</typeparam>
/// <typeparam name="TValue">Value.</typeparam>
internal sealed class LruCache<TKey, TValue>
    where TKey : notnull
{
    private readonly int _capacity;
    private readonly Dictionary<TKey, LinkedListNode<(TKey Key, TValue Value)>> _map;
    private readonly LinkedList<(TKey Key, TValue Value)> _order = new();
    private readonly Lock _gate = new();

    /// <summary>Creates the cache with room for <paramref name="capacity"/> entries (at least 1).</summary>
    public LruCache(int capacity)
    {
        _capacity = Math.Max(1, capacity);
        _map = new Dictionary<TKey, LinkedListNode<(TKey, TValue)>>();
    }

    /// <summary>Entries held.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _map.Count;
            }
        }
    }

    /// <summary>Looks a key up and marks it recently used.</summary>
    public bool TryGet(TKey key, out TValue value)
    {
        lock (_gate)
        {
            if (_map.TryGetValue(key, out var node))
            {
                _order.Remove(node);
                _order.AddFirst(node);
                value = node.Value.Value;
                return true;
            }
        }

        value = default!;
        return false;
    }

    /// <summary>Adds or replaces a value, evicting the least recently used entry beyond the capacity.</summary>
    public void Set(TKey key, TValue value)
    {
        lock (_gate)
        {
            if (_map.Remove(key, out var existing))
            {
                _order.Remove(existing);
            }

            _map[key] = _order.AddFirst((key, value));
            while (_map.Count > _capacity)
            {
                var last = _order.Last!;
                _order.RemoveLast();
                _map.Remove(last.Value.Key);
            }
        }
    }
}
