using Microsoft.Data.Sqlite;
using OfflinePki.Asn1;
using OfflinePki.Journal;
using OfflinePki.Orders;

namespace OfflinePki.Registry;

/// <summary>Whether <see cref="MirrorRegistry.AddOrder"/> stored a new order.</summary>
public enum OrderAddOutcome
{
    /// <summary>The order is new and stored; it goes out in the next sync responses.</summary>
    Added,
    /// <summary>The same order (same bytes) was already stored; nothing changed.</summary>
    AlreadyStored,
}

/// <summary>One order in the mirror's per-order report.</summary>
/// <param name="OrderId">The order id.</param>
/// <param name="Sku">SKU, or null when the order content is unknown.</param>
/// <param name="Profile">Profile, or null when unknown.</param>
/// <param name="Authorized">Authorised quantity, or null when unknown (certificates name an order the mirror never saw).</param>
/// <param name="Factories">Factories whose journals accepted the order (sorted, distinct).</param>
/// <param name="Issued">Certificates that consumed a unit (kinds initial and refurb).</param>
/// <param name="Reissued">Re-issues that consumed none (kinds rework and reenroll).</param>
/// <param name="Revoked">Certificates of the order that are revoked (any kind).</param>
/// <param name="HeldByMirror">True when the order was added at the mirror (MirrorCa order add).</param>
public sealed record OrderReportLine(string OrderId, string? Sku, string? Profile, long? Authorized, IReadOnlyList<string> Factories, long Issued,
    long Reissued, long Revoked, bool HeldByMirror)
{
    /// <summary>
    /// Why the order is suspect, or null: a factory journaled an order the OEM did not sign (it does not verify against the
    /// root), or content that differs from the OEM order stored at the mirror. A suspect order authorises nothing.
    /// </summary>
    public string? Problem { get; init; }
}

/// <summary>The per-order report (issue 6 §2): every known order, plus the certificates outside every order.</summary>
/// <param name="Orders">One line per order, by order id.</param>
/// <param name="OutsideCertificates">Certificates with an empty batch_id or one naming no known order.</param>
/// <param name="OutsideRevoked">How many of those are revoked.</param>
/// <param name="UnknownBatchIds">Non-empty batch ids that name no known order (sorted).</param>
public sealed record OrderReport(IReadOnlyList<OrderReportLine> Orders, long OutsideCertificates, long OutsideRevoked, IReadOnlyList<string> UnknownBatchIds);

/// <summary>The mirror's store of OEM production orders, from which sync responses deliver them to factories.</summary>
public interface IOrderOutbox
{
    /// <summary>
    /// Signed orders (DER CMS) addressed to <paramref name="factoryId"/> or to any factory, not yet ended, and not yet
    /// accepted by any journal of that factory. At most 64, oldest first.
    /// </summary>
    /// <param name="factoryId">The calling factory.</param>
    IReadOnlyList<byte[]> OrdersFor(string factoryId);
}

public sealed partial class MirrorRegistry : IOrderOutbox
{
    /// <summary>
    /// Stores a verified OEM order (<c>MirrorCa order add</c>); it is sent to its factory (or every factory) in sync responses
    /// until that factory's journal accepts it. Durable before it returns.
    /// </summary>
    /// <param name="order">An order that passed <see cref="ProductionOrderVerifier.Verify"/>.</param>
    /// <param name="actor">Who added it (1-200 characters).</param>
    /// <returns><see cref="OrderAddOutcome.Added"/>, or <see cref="OrderAddOutcome.AlreadyStored"/> for the same bytes again.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="order"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="actor"/> is empty or too long.</exception>
    /// <exception cref="OrderRejectedException"><see cref="OrderFault.Conflict"/>: another order with this id is stored. Nothing changed.</exception>
    public OrderAddOutcome AddOrder(ProductionOrder order, string actor)
    {
        ArgumentNullException.ThrowIfNull(order);
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        if (actor.Length > 200)
        {
            throw new ArgumentException("actor is at most 200 characters", nameof(actor));
        }

        using var c = Open();
        using var tx = c.BeginTransaction();
        using (var q = Cmd(c, "SELECT sha256 FROM oem_orders WHERE order_id = $o", ("$o", order.OrderId)))
        {
            q.Transaction = tx;
            if (q.ExecuteScalar() is byte[] existing)
            {
                if (existing.AsSpan().SequenceEqual(order.Sha256))
                {
                    return OrderAddOutcome.AlreadyStored;
                }

                throw new OrderRejectedException(OrderFault.Conflict,
                    $"order {order.OrderId} is already stored with other content (sha256 {Convert.ToHexStringLower(existing)}); an order id is used once — issue a new order id");
            }
        }

        using (var ins = Cmd(c, """
            INSERT INTO oem_orders(order_id, factory_id, sku, profile, quantity, not_before, not_after, signed, sha256, added_at, added_by)
            VALUES ($o, $f, $sku, $p, $q, $nb, $na, $s, $h, $at, $by)
            """,
            ("$o", order.OrderId), ("$f", order.FactoryId ?? string.Empty), ("$sku", order.Sku), ("$p", order.Profile), ("$q", order.Quantity),
            ("$nb", order.NotBefore.ToUnixTimeSeconds()), ("$na", order.NotAfter.ToUnixTimeSeconds()), ("$s", order.SignedBytes), ("$h", order.Sha256),
            ("$at", _time.GetUtcNow().ToUnixTimeSeconds()), ("$by", actor)))
        {
            ins.Transaction = tx;
            ins.ExecuteNonQuery();
        }

        using (var bump = Cmd(c, "UPDATE counters SET value = value + 1 WHERE name = 'registry'"))
        {
            bump.Transaction = tx;
            bump.ExecuteNonQuery();
        }

        tx.Commit();
        return OrderAddOutcome.Added;
    }

    /// <inheritdoc />
    public IReadOnlyList<byte[]> OrdersFor(string factoryId)
    {
        ArgumentException.ThrowIfNullOrEmpty(factoryId);
        using var c = Open();
        using var cmd = Cmd(c, """
            SELECT o.signed FROM oem_orders o
            WHERE (o.factory_id = '' OR o.factory_id = $f) AND o.not_after >= $now
              AND NOT EXISTS (SELECT 1 FROM factory_orders fo JOIN journals j ON j.journal_id = fo.journal_id
                              WHERE fo.order_id = o.order_id AND j.factory_id = $f)
            ORDER BY o.added_at, o.order_id LIMIT 64
            """, ("$f", factoryId), ("$now", _time.GetUtcNow().ToUnixTimeSeconds()));
        var list = new List<byte[]>();
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            list.Add((byte[])r[0]);
        }

        return list;
    }

    /// <summary>
    /// The per-order report: for every order known to the mirror (added here, or accepted by a factory journal), the
    /// authorised quantity, the certificates issued (initial, refurb), re-issued (rework, reenroll) and revoked; and the
    /// certificates outside every order. One pass over the certificates.
    /// </summary>
    /// <param name="verifier">
    /// Checks that orders journaled by factories were signed by the OEM (<see cref="ProductionOrderVerifier.VerifyOrigin"/>);
    /// null trusts the factories' journals. An order that fails, or differs from the one stored at the mirror, is reported
    /// with a <see cref="OrderReportLine.Problem"/> and authorises nothing.
    /// </param>
    /// <returns>The report.</returns>
    public OrderReport ReportOrders(ProductionOrderVerifier? verifier = null)
    {
        using var c = Open();
        var orders = new SortedDictionary<string, OrderAcc>(StringComparer.Ordinal);
        using (var cmd = Cmd(c, "SELECT order_id, sku, profile, quantity, sha256 FROM oem_orders"))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read())
            {
                orders[r.GetString(0)] = new OrderAcc { Sku = r.GetString(1), Profile = r.GetString(2), Quantity = r.GetInt64(3), AtMirror = true, Sha256 = (byte[])r[4] };
            }
        }

        using (var cmd = Cmd(c, "SELECT fo.order_id, j.factory_id, fo.signed, fo.sha256 FROM factory_orders fo JOIN journals j ON j.journal_id = fo.journal_id ORDER BY fo.journal_id, fo.seq"))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read())
            {
                string id = r.GetString(0), factory = r.GetString(1);
                var signed = (byte[])r[2];
                if (!orders.TryGetValue(id, out var o))
                {
                    o = new OrderAcc { Sha256 = (byte[])r[3] };
                    orders[id] = o;
                    try
                    {
                        var parsed = verifier is null ? ProductionOrder.ParseSigned(signed) : verifier.VerifyOrigin(signed);
                        (o.Sku, o.Profile, o.Quantity) = (parsed.Sku, parsed.Profile, parsed.Quantity);
                    }
                    catch (OrderRejectedException ex)
                    {
                        o.Problem = $"the order journaled by factory {factory} is not a valid OEM order ({ex.Fault}): {ex.Message}";
                    }
                }
                else if (!o.Sha256.AsSpan().SequenceEqual((byte[])r[3]))
                {
                    o.Problem ??= $"factory {factory} journaled order {id} with content (sha256 {Convert.ToHexStringLower((byte[])r[3])}) that differs from the order {(o.AtMirror ? "stored at the mirror" : "another journal accepted")}";
                }

                o.Factories.Add(factory);
            }
        }

        var counts = new Dictionary<string, (long Issued, long Reissued, long Revoked)>(StringComparer.Ordinal);
        using (var cmd = Cmd(c, """
            SELECT c.batch_id, COALESCE(d.kind, 0) AS k, COUNT(*), SUM(CASE WHEN r.serial IS NULL THEN 0 ELSE 1 END)
            FROM certificates c
            LEFT JOIN issuance_details d ON d.issuer_key_hash = c.issuer_key_hash AND d.serial = c.serial
            LEFT JOIN revocations r ON r.issuer_key_hash = c.issuer_key_hash AND r.serial = c.serial
            GROUP BY c.batch_id, k
            """))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read())
            {
                string batch = r.GetString(0);
                bool consumes = ProductionOrder.Consumes((Journal.V1.IssuanceKind)r.GetInt64(1));
                long n = r.GetInt64(2), revoked = r.GetInt64(3);
                var t = counts.GetValueOrDefault(batch);
                counts[batch] = consumes ? (t.Issued + n, t.Reissued, t.Revoked + revoked) : (t.Issued, t.Reissued + n, t.Revoked + revoked);
            }
        }

        var lines = orders.Select(kv =>
        {
            var t = counts.GetValueOrDefault(kv.Key);
            var o = kv.Value;
            return new OrderReportLine(kv.Key, o.Sku, o.Profile, o.Problem is null ? o.Quantity : null, o.Factories.ToList(), t.Issued, t.Reissued, t.Revoked, o.AtMirror)
            {
                Problem = o.Problem,
            };
        }).ToList();
        long outside = 0, outsideRevoked = 0;
        var unknown = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (batch, t) in counts.Where(kv => !orders.ContainsKey(kv.Key)))
        {
            outside += t.Issued + t.Reissued;
            outsideRevoked += t.Revoked;
            if (batch.Length > 0)
            {
                unknown.Add(batch);
            }
        }

        return new OrderReport(lines, outside, outsideRevoked, unknown.ToList());
    }

    /// <summary>
    /// The batch report rows of one order (every certificate whose batch_id is <paramref name="orderId"/>), in journal order.
    /// Certificates synced before issuance details were recorded report their notBefore as the time and kind "initial".
    /// Streams from the registry; enumerate once.
    /// </summary>
    /// <param name="orderId">The order id; the empty string selects certificates issued under no order.</param>
    /// <returns>The rows.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="orderId"/> is null.</exception>
    public IEnumerable<BatchReportRow> BatchReportRows(string orderId)
    {
        ArgumentNullException.ThrowIfNull(orderId);
        using var c = Open();
        using var cmd = Cmd(c, """
            SELECT c.device_id, c.serial, c.station_id, c.not_before, c.der,
                   d.sha256, d.mac_address, d.operator_id, d.issued_at, d.kind
            FROM certificates c
            LEFT JOIN issuance_details d ON d.issuer_key_hash = c.issuer_key_hash AND d.serial = c.serial
            WHERE c.batch_id = $b ORDER BY c.journal_id, c.seq
            """, ("$b", orderId));
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            bool details = !r.IsDBNull(5);
            string sha = details ? r.GetString(5) : Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData((byte[])r[4]));
            var at = details ? JournalCodec.FromUnixMicros(r.GetInt64(8)) : DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(3));
            var kind = details ? KindName((int)r.GetInt64(9)) : "initial";
            yield return new BatchReportRow(r.GetString(0), SerialNumber.ToHex((byte[])r[1]), sha, details ? NullIfEmpty(r.GetString(6)) : null, r.GetString(2),
                details ? NullIfEmpty(r.GetString(7)) : null, at, kind);
        }
    }

    /// <summary>The report name of a journal IssuanceKind value: initial, rework, refurb, reenroll (or the number).</summary>
    /// <param name="kind">journal.proto IssuanceKind value.</param>
    public static string KindName(int kind) => kind switch
    {
        0 => "initial",
        1 => "rework",
        2 => "refurb",
        3 => "reenroll",
        _ => kind.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static string? NullIfEmpty(string s) => s.Length == 0 ? null : s;

    private sealed class OrderAcc
    {
        public string? Sku { get; set; }

        public string? Profile { get; set; }

        public long? Quantity { get; set; }

        public SortedSet<string> Factories { get; } = new(StringComparer.Ordinal);

        public bool AtMirror { get; init; }

        public byte[] Sha256 { get; init; } = [];

        public string? Problem { get; set; }
    }

    private sealed partial class ApplyTransaction
    {
        public void AddOrderAccepted(FactoryOrderRecord record)
        {
            ArgumentNullException.ThrowIfNull(record);
            EnsureOpen();
            Run("""
                INSERT INTO factory_orders(journal_id, seq, order_id, signed, sha256, source, accepted_at)
                VALUES ($j, $s, $o, $sig, $h, $src, $at)
                """,
                ("$j", record.JournalId), ("$s", checked((long)record.Seq)), ("$o", record.OrderId), ("$sig", record.SignedOrder), ("$h", record.OrderSha256),
                ("$src", record.Source), ("$at", JournalCodec.ToUnixMicros(record.AcceptedAt)));
        }

        private void AddDetails(byte[] issuerKeyHash, byte[] serial, IssuanceDetails d) => Run("""
            INSERT INTO issuance_details(issuer_key_hash, serial, operator_id, mac_address, kind, label, profile, issued_at, sha256, supersedes_serial, server_generated_key)
            VALUES ($i, $s, $op, $mac, $k, $l, $p, $at, $h, $sup, $sg)
            """,
            ("$i", issuerKeyHash), ("$s", serial), ("$op", d.OperatorId), ("$mac", d.MacAddress), ("$k", (long)d.Kind), ("$l", d.Label), ("$p", d.Profile),
            ("$at", JournalCodec.ToUnixMicros(d.IssuedAt)), ("$h", d.Sha256Fingerprint), ("$sup", d.SupersedesSerial), ("$sg", d.ServerGeneratedKey ? 1L : 0L));
    }
}
