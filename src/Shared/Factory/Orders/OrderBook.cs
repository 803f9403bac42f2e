using System.Collections.Concurrent;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;

namespace OfflinePki.Orders;

/// <summary>The result of handing an order to the factory.</summary>
/// <param name="OrderId">The order id.</param>
/// <param name="Accepted">True when the order was new and is now journaled (OrderAccepted); false when it was already accepted (a no-op).</param>
/// <param name="Quantity">Its quantity.</param>
/// <param name="Issued">Units consumed so far.</param>
/// <param name="JournalSeq">Seq of the OrderAccepted entry written now, or 0 for a re-delivery.</param>
public sealed record OrderAcceptResult(string OrderId, bool Accepted, long Quantity, long Issued, ulong JournalSeq);

/// <summary>One order's state in the book.</summary>
/// <param name="Order">The order.</param>
/// <param name="Issued">Durable certificates (initial and refurb) that consumed a unit.</param>
/// <param name="InFlight">Units reserved by enrollments not yet journaled.</param>
public sealed record OrderStatus(ProductionOrder Order, long Issued, long InFlight)
{
    /// <summary>Units left: quantity − issued − in flight (never negative).</summary>
    public long Remaining => Math.Max(0, Order.Quantity - Issued - InFlight);
}

/// <summary>Where production orders delivered by the mirror's sync responses go (the factory's <see cref="OrderBook"/>).</summary>
public interface IOrderInbox
{
    /// <summary>Verifies and accepts each order; an order already accepted is a no-op; a bad one is logged and skipped.</summary>
    /// <param name="signedOrders">Signed order files (DER CMS).</param>
    /// <param name="source">Where they came from: "sync" or "file"; journaled.</param>
    /// <param name="cancellationToken">Cancels waiting for the journal.</param>
    /// <returns>How many were newly accepted.</returns>
    /// <exception cref="JournalUnavailableException">The journal cannot record an acceptance.</exception>
    Task<int> DeliverAsync(IEnumerable<byte[]> signedOrders, string source, CancellationToken cancellationToken);
}

/// <summary>
/// The factory's production orders and their consumed quantity. The journal is the truth: the book is rebuilt from
/// OrderAccepted and CertificateIssued entries at startup (<see cref="LoadFrom"/>), so a crash never loses a consumed
/// unit. Reservations (<see cref="TryReserve"/>) make the quota atomic across concurrent stations: a unit is taken when
/// issued + in flight &lt; quantity, made permanent after the certificate is durable, and released otherwise.
/// Thread-safe.
/// </summary>
public sealed class OrderBook : IOrderInbox, Policy.IOrderReworkWindows
{
    private readonly ProductionOrderVerifier _verifier;
    private readonly IJournalAppender _journal;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Slot> _orders = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _earlyIssued = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _accepting = new(1, 1);

    /// <summary>Creates an empty book; call <see cref="LoadFrom"/> before serving.</summary>
    /// <param name="verifier">Verifies orders handed in by file or sync (root, this factory's id, clock).</param>
    /// <param name="journal">Where OrderAccepted entries are written (durably, before an order is usable).</param>
    /// <param name="logger">Logger; orders are logged by id and SHA-256 only.</param>
    /// <exception cref="ArgumentNullException"><paramref name="verifier"/> or <paramref name="journal"/> is null.</exception>
    public OrderBook(ProductionOrderVerifier verifier, IJournalAppender journal, ILogger<OrderBook>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(verifier);
        ArgumentNullException.ThrowIfNull(journal);
        _verifier = verifier;
        _journal = journal;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>True when a certificate of <paramref name="kind"/> consumes a unit of its order; see <see cref="ProductionOrder.Consumes"/>.</summary>
    /// <param name="kind">The issuance kind.</param>
    public static bool Consumes(IssuanceKind kind) => ProductionOrder.Consumes(kind);

    /// <summary>
    /// Rebuilds the book from the journal: every OrderAccepted entry (trusted as journaled; the signature is not
    /// re-checked, so an order survives its signer's expiry) and the consuming CertificateIssued entries per batch_id.
    /// Reads the journal once from seq 1.
    /// </summary>
    /// <param name="reader">The journal.</param>
    /// <returns>The number of orders known.</returns>
    /// <exception cref="JournalUnavailableException">The journal cannot be read.</exception>
    /// <exception cref="InvalidOperationException">A journaled order no longer parses (a defect; the journal's hash chain protects it).</exception>
    public int LoadFrom(IJournalReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var issued = new Dictionary<string, long>(StringComparer.Ordinal);
        var orders = new Dictionary<string, ProductionOrder>(StringComparer.Ordinal);
        foreach (var entry in reader.ReadFrom(1))
        {
            switch (entry.Type)
            {
                case EntryType.OrderAccepted:
                    var accepted = OrderAccepted.Parser.ParseFrom(entry.Payload);
                    try
                    {
                        var order = ProductionOrder.ParseSigned(accepted.SignedOrder.ToByteArray());
                        orders[order.OrderId] = order;
                    }
                    catch (OrderRejectedException ex)
                    {
                        throw new InvalidOperationException($"journal seq {entry.Seq}: accepted order {accepted.OrderId} does not parse: {ex.Message}", ex);
                    }

                    break;
                case EntryType.CertificateIssued:
                    var c = CertificateIssued.Parser.ParseFrom(entry.Payload);
                    if (c.BatchId.Length > 0 && Consumes(c.Kind))
                    {
                        issued[c.BatchId] = issued.GetValueOrDefault(c.BatchId) + 1;
                    }

                    break;
            }
        }

        _orders.Clear();
        _earlyIssued.Clear();
        foreach (var (id, order) in orders)
        {
            _orders[id] = new Slot(order) { Issued = issued.GetValueOrDefault(id) };
        }

        foreach (var (id, n) in issued.Where(kv => !orders.ContainsKey(kv.Key)))
        {
            _earlyIssued[id] = n;
        }

        _logger.LogInformation("order book rebuilt from the journal: {Orders} orders, {Issued} certificates counted against them", orders.Count,
            issued.Where(kv => orders.ContainsKey(kv.Key)).Sum(kv => kv.Value));
        return orders.Count;
    }

    /// <summary>The accepted order <paramref name="orderId"/>, or null.</summary>
    /// <param name="orderId">The order id.</param>
    public ProductionOrder? Find(string orderId) => _orders.TryGetValue(orderId, out var s) ? s.Order : null;

    /// <summary>The order's reworkWindowHours as a window, for the device policy's rework rule.</summary>
    /// <param name="orderId">The order id.</param>
    /// <param name="window">The order's window when it sets one.</param>
    /// <returns>False when the order is unknown or sets no window (FactoryCa:Rework:Window applies).</returns>
    public bool TryGetReworkWindow(string orderId, out TimeSpan window)
    {
        window = default;
        if (Find(orderId)?.ReworkWindow is not { } w)
        {
            return false;
        }

        window = w;
        return true;
    }

    /// <summary>Every accepted order with its counts, ordered by id.</summary>
    public IReadOnlyList<OrderStatus> Snapshot() =>
        _orders.Values.Select(s => s.Status()).OrderBy(s => s.Order.OrderId, StringComparer.Ordinal).ToList();

    /// <summary>The state of one order, or null when unknown.</summary>
    /// <param name="orderId">The order id.</param>
    public OrderStatus? StatusOf(string orderId) => _orders.TryGetValue(orderId, out var s) ? s.Status() : null;

    /// <summary>
    /// Verifies a signed order and, when new, journals an OrderAccepted entry (durably) before the order becomes usable.
    /// Re-delivering an order already accepted (same bytes) changes nothing.
    /// </summary>
    /// <param name="signedOrder">The signed order file (DER CMS SignedData).</param>
    /// <param name="source">"file" or "sync"; journaled.</param>
    /// <param name="cancellationToken">Cancels waiting for the journal.</param>
    /// <returns>What happened.</returns>
    /// <exception cref="OrderRejectedException">The order fails verification (see <see cref="ProductionOrderVerifier.Verify"/>), or an order with the same id but other content was already accepted (<see cref="OrderFault.Conflict"/>). Nothing is journaled.</exception>
    /// <exception cref="JournalUnavailableException">The journal cannot record the acceptance; the order is not usable.</exception>
    public async Task<OrderAcceptResult> AcceptAsync(byte[] signedOrder, string source, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(signedOrder);
        ArgumentException.ThrowIfNullOrEmpty(source);
        var order = _verifier.Verify(signedOrder);
        await _accepting.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_orders.TryGetValue(order.OrderId, out var existing))
            {
                if (existing.Order.Sha256.AsSpan().SequenceEqual(order.Sha256))
                {
                    var st = existing.Status();
                    return new OrderAcceptResult(order.OrderId, false, order.Quantity, st.Issued, 0);
                }

                throw new OrderRejectedException(OrderFault.Conflict,
                    $"order {order.OrderId} was already accepted with other content (sha256 {Convert.ToHexStringLower(existing.Order.Sha256)}); an order id is used once — issue a new order id");
            }

            var entry = await _journal.AppendAsync(EntryType.OrderAccepted, new OrderAccepted
            {
                OrderId = order.OrderId,
                SignedOrder = ByteString.CopyFrom(signedOrder),
                OrderSha256 = ByteString.CopyFrom(order.Sha256),
                Source = source,
            }, cancellationToken).ConfigureAwait(false);
            long early = _earlyIssued.TryRemove(order.OrderId, out var n) ? n : 0;
            _orders[order.OrderId] = new Slot(order) { Issued = early };
            _logger.LogInformation("production order accepted: order={OrderId} sku={Sku} profile={Profile} quantity={Quantity} source={Source} sha256={Sha} journal_seq={Seq}",
                order.OrderId, order.Sku, order.Profile, order.Quantity, source, Convert.ToHexStringLower(order.Sha256), entry.Seq);
            return new OrderAcceptResult(order.OrderId, true, order.Quantity, early, entry.Seq);
        }
        finally
        {
            _accepting.Release();
        }
    }

    /// <inheritdoc />
    public async Task<int> DeliverAsync(IEnumerable<byte[]> signedOrders, string source, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(signedOrders);
        int accepted = 0;
        foreach (var bytes in signedOrders)
        {
            try
            {
                if ((await AcceptAsync(bytes, source, cancellationToken).ConfigureAwait(false)).Accepted)
                {
                    accepted++;
                }
            }
            catch (OrderRejectedException ex)
            {
                _logger.LogWarning("production order from {Source} refused ({Fault}): {Reason}", source, ex.Fault, ex.Message);
            }
        }

        return accepted;
    }

    /// <summary>
    /// Takes one unit of <paramref name="orderId"/> if issued + in flight &lt; quantity. The returned reservation must be
    /// committed (<see cref="Reservation.Commit"/>) once the certificate is durable, or disposed to release the unit.
    /// </summary>
    /// <param name="orderId">An accepted order.</param>
    /// <returns>The reservation, or null when the order is used up.</returns>
    /// <exception cref="KeyNotFoundException">The order is unknown.</exception>
    public Reservation? TryReserve(string orderId)
    {
        if (!_orders.TryGetValue(orderId, out var slot))
        {
            throw new KeyNotFoundException($"order {orderId} is not accepted");
        }

        lock (slot)
        {
            if (slot.Issued + slot.InFlight >= slot.Order.Quantity)
            {
                return null;
            }

            slot.InFlight++;
        }

        return new Reservation(slot);
    }

    /// <summary>One unit of an order held for an enrollment in progress.</summary>
    public sealed class Reservation : IDisposable
    {
        private readonly Slot _slot;
        private int _state; // 0 held, 1 committed, 2 released

        internal Reservation(Slot slot) => _slot = slot;

        /// <summary>The certificate is durable: the unit is consumed. Idempotent.</summary>
        public void Commit()
        {
            if (Interlocked.CompareExchange(ref _state, 1, 0) == 0)
            {
                lock (_slot)
                {
                    _slot.InFlight--;
                    _slot.Issued++;
                }
            }
        }

        /// <summary>Releases the unit unless it was committed. Idempotent.</summary>
        public void Dispose()
        {
            if (Interlocked.CompareExchange(ref _state, 2, 0) == 0)
            {
                lock (_slot)
                {
                    _slot.InFlight--;
                }
            }
        }
    }

    /// <summary>Mutable counts of one order, guarded by locking the slot.</summary>
    internal sealed class Slot(ProductionOrder order)
    {
        public ProductionOrder Order { get; } = order;

        public long Issued { get; set; }

        public long InFlight { get; set; }

        public OrderStatus Status()
        {
            lock (this)
            {
                return new OrderStatus(Order, Issued, InFlight);
            }
        }
    }
}
