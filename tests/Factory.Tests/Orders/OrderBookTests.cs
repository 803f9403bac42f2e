using Google.Protobuf;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using OfflinePki.Enrollment;
using OfflinePki.Journal.V1;
using OfflinePki.Orders;
using OfflinePki.Policy;
using OfflinePki.Tests.Factory;
using OfflinePki.Tests.Journal;
using OfflinePki.Tests.Support;
using OfflinePki.Tests.Sync;
using OfflinePki.Factory;

namespace OfflinePki.Tests.Orders;

/// <summary>
/// <see cref="OrderBook"/> and <see cref="OrderPolicy"/> over a real hash-chained journal (the test builder): acceptance is
/// journaled once, reservations are atomic and released, rework does not consume, and a rebuild from the journal
/// restores every count.
/// </summary>
public class OrderBookTests
{
    private static TestPki Pki => TestPki.Default;
    // An hour from now: after the test PKI (and its order signer) was made, within the orders' 2026-2030 windows.
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds());

    private static (OrderBook Book, BuilderJournal Journal, JournalTestData.Builder Builder) NewBook()
    {
        var b = new JournalTestData.Builder();
        var journal = new BuilderJournal(b);
        var book = new OrderBook(new ProductionOrderVerifier(Pki.Root, "F1", new FakeTimeProvider(Now)), journal);
        book.LoadFrom(journal);
        return (book, journal, b);
    }

    private static EnrollmentContext Context(string? orderId, string deviceId = "ORD-00010", IssuanceKind kind = IssuanceKind.Initial,
        StationIdentity? station = null, string profile = "idevid", DateTimeOffset? at = null) =>
        new(new EnrollmentRequest(station ?? new StationIdentity("station-01", "station-01", "00"), ReadOnlyMemory<byte>.Empty) { OrderId = orderId, Kind = kind },
            deviceId, profile, [], new byte[32], at ?? Now);

    private static void Refused(OrderPolicy policy, EnrollmentContext context, EnrollmentError code, string message)
    {
        var ex = Assert.Throws<EnrollmentRejectedException>(() => policy.Admit(context))!;
        Assert.That(ex.Code, Is.EqualTo(code), ex.Message);
        Assert.That(ex.Message, Does.Contain(message));
    }

    [Test]
    public async Task Accepting_journals_OrderAccepted_once_and_redelivery_is_a_no_op()
    {
        var (book, _, b) = NewBook();
        var signed = OrderFiles.Sign(Pki, OrderFiles.Json("PO-A", 3));
        var first = await book.AcceptAsync(signed, "file", CancellationToken.None);
        Assert.That(first.Accepted, Is.True);
        Assert.That(first.JournalSeq, Is.EqualTo(b.Head.Seq));
        var entry = b.Entries[^1];
        Assert.That(entry.Type, Is.EqualTo(EntryType.OrderAccepted));
        var payload = OrderAccepted.Parser.ParseFrom(entry.Payload);
        Assert.That(payload.OrderId, Is.EqualTo("PO-A"));
        Assert.That(payload.SignedOrder.ToByteArray(), Is.EqualTo(signed));
        Assert.That(payload.Source, Is.EqualTo("file"));

        int entries = b.Entries.Count;
        var again = await book.AcceptAsync(signed, "sync", CancellationToken.None);
        Assert.That(again.Accepted, Is.False);
        Assert.That(b.Entries, Has.Count.EqualTo(entries), "re-delivery journals nothing");
        Assert.That(await book.DeliverAsync([signed], "sync", CancellationToken.None), Is.Zero);
        Assert.That(b.Entries, Has.Count.EqualTo(entries));
    }

    [Test]
    public async Task Bad_orders_and_conflicting_order_ids_are_refused_and_change_nothing()
    {
        var (book, _, b) = NewBook();
        await book.AcceptAsync(OrderFiles.Sign(Pki, OrderFiles.Json("PO-B", 3)), "file", CancellationToken.None);
        int entries = b.Entries.Count;

        var conflict = (await Assert.ThrowsAsync<OrderRejectedException>(() => book.AcceptAsync(OrderFiles.Sign(Pki, OrderFiles.Json("PO-B", 30)), "file", CancellationToken.None)))!;
        Assert.That(conflict.Fault, Is.EqualTo(OrderFault.Conflict));
        Assert.That(conflict.Message, Does.Contain("already accepted with other content"));

        var wrongEku = (await Assert.ThrowsAsync<OrderRejectedException>(() => book.AcceptAsync(OrderFiles.Sign(Pki, OrderFiles.Json("PO-C"), "journal-signer-F1"), "file", CancellationToken.None)))!;
        Assert.That(wrongEku.Fault, Is.EqualTo(OrderFault.WrongEku));
        var malformed = (await Assert.ThrowsAsync<OrderRejectedException>(() => book.AcceptAsync([0x30, 0x03, 0x02, 0x01, 0x01], "file", CancellationToken.None)))!;
        Assert.That(malformed.Fault, Is.EqualTo(OrderFault.Malformed));

        // Through the sync inbox a bad order is skipped, never thrown.
        Assert.That(await book.DeliverAsync([[1, 2, 3]], "sync", CancellationToken.None), Is.Zero);
        Assert.That(b.Entries, Has.Count.EqualTo(entries), "refusals journal nothing");
        Assert.That(book.Find("PO-C"), Is.Null);
        Assert.That(book.StatusOf("PO-B")!.Order.Quantity, Is.EqualTo(3));
    }

    [Test]
    public async Task The_policy_checks_order_window_profile_station_and_device_range()
    {
        var (book, _, _) = NewBook();
        var future = OrderFiles.Json("PO-FUTURE");
        future["notBefore"] = "2029-01-01T00:00:00Z";
        await book.AcceptAsync(OrderFiles.Sign(Pki, future), "file", CancellationToken.None);
        await book.AcceptAsync(OrderFiles.Sign(Pki, OrderFiles.Json("PO-OK", 5)), "file", CancellationToken.None);
        var policy = new OrderPolicy(book, new OrderPolicyOptions());

        Refused(policy, Context("PO-NONE"), EnrollmentError.OrderUnknown, "no accepted production order 'PO-NONE'");
        Refused(policy, Context("PO-FUTURE"), EnrollmentError.OrderNotValidNow, "is valid 2029-01-01T00:00:00Z");
        Refused(policy, Context("PO-OK", profile: "matter-dac"), EnrollmentError.OrderProfileMismatch, "is for profile 'idevid'");
        Refused(policy, Context("PO-OK", station: new StationIdentity("st-9", "st-9", "00") { Orders = ["PO-OTHER"] }),
            EnrollmentError.StationNotAuthorizedForOrder, "station CN=st-9 is not authorised for order PO-OK");
        Refused(policy, Context("PO-OK", deviceId: "ORD-01000"), EnrollmentError.DeviceIdOutsideOrder, "outside order PO-OK (range ORD-00001..ORD-00999)");
        Assert.That(book.StatusOf("PO-OK")!.InFlight, Is.Zero, "refusals reserve nothing");

        // No order named: allowed unless required.
        Assert.That(policy.Admit(Context(null)), Is.SameAs(NoReservation.Instance));
        Refused(new OrderPolicy(book, new OrderPolicyOptions { Required = true }), Context(null), EnrollmentError.OrderUnknown, "FactoryCa:Orders:Required");

        // A station whose list names the order may use it.
        using var ok = policy.Admit(Context("PO-OK", station: new StationIdentity("st-9", "st-9", "00") { Orders = ["PO-OK"] }));
        var payload = new CertificateIssued();
        ok.Annotate(payload);
        Assert.That(payload.BatchId, Is.EqualTo("PO-OK"));
    }

    [Test]
    public async Task Reservations_are_atomic_released_on_dispose_and_rework_consumes_nothing()
    {
        var (book, _, _) = NewBook();
        await book.AcceptAsync(OrderFiles.Sign(Pki, OrderFiles.Json("PO-Q", 50)), "file", CancellationToken.None);
        var policy = new OrderPolicy(book, new OrderPolicyOptions());

        // 400 concurrent admissions for 50 units: exactly 50 succeed.
        var admitted = new System.Collections.Concurrent.ConcurrentBag<IEnrollmentAdmission>();
        int exhausted = 0;
        Parallel.For(0, 400, new ParallelOptions { MaxDegreeOfParallelism = 8 }, _ =>
        {
            try
            {
                admitted.Add(policy.Admit(Context("PO-Q")));
            }
            catch (EnrollmentRejectedException ex) when (ex.Code == EnrollmentError.OrderExhausted)
            {
                Interlocked.Increment(ref exhausted);
            }
        });
        Assert.That(admitted, Has.Count.EqualTo(50));
        Assert.That(exhausted, Is.EqualTo(350));
        Assert.That(book.StatusOf("PO-Q")!.InFlight, Is.EqualTo(50));

        // Ten fail before the journal: their units come back. Forty commit.
        var list = admitted.ToList();
        foreach (var a in list.Take(10))
        {
            a.Dispose();
        }

        foreach (var a in list.Skip(10))
        {
            a.Commit(new CertificateIssued(), 1);
            a.Dispose(); // after commit: no release
        }

        var s = book.StatusOf("PO-Q")!;
        Assert.That((s.Issued, s.InFlight, s.Remaining), Is.EqualTo((40L, 0L, 10L)));

        // Rework re-issues do not consume, even when the order is used up.
        for (int i = 0; i < 10; i++)
        {
            policy.Admit(Context("PO-Q")).Commit(new CertificateIssued(), 1);
        }

        Refused(policy, Context("PO-Q"), EnrollmentError.OrderExhausted, "order PO-Q is used up: all 50 units");
        using var rework = policy.Admit(Context("PO-Q", kind: IssuanceKind.Rework));
        rework.Commit(new CertificateIssued(), 1);
        Assert.That(book.StatusOf("PO-Q")!.Issued, Is.EqualTo(50));
    }

    [Test]
    public async Task A_rebuild_from_the_journal_restores_orders_and_consumed_units()
    {
        var (book, journal, b) = NewBook();
        await book.AcceptAsync(OrderFiles.Sign(Pki, OrderFiles.Json("PO-R", 5)), "sync", CancellationToken.None);
        foreach (var (device, kind, batch) in new[]
        {
            ("ORD-00001", IssuanceKind.Initial, "PO-R"), ("ORD-00002", IssuanceKind.Initial, "PO-R"), ("ORD-00003", IssuanceKind.Refurb, "PO-R"),
            ("ORD-00001", IssuanceKind.Rework, "PO-R"), ("ORD-00009", IssuanceKind.Initial, ""),
        })
        {
            b.Add(EntryType.CertificateIssued, new CertificateIssued
            {
                Certificate = ByteString.CopyFrom(b.M.DeviceCertificate(device)), DeviceId = device, StationId = "station-01", BatchId = batch, Kind = kind,
            });
        }

        b.AddCheckpoint();
        var rebuilt = new OrderBook(new ProductionOrderVerifier(Pki.Root, "F1", new FakeTimeProvider(Now)), journal);
        Assert.That(rebuilt.LoadFrom(journal), Is.EqualTo(1));
        var s = rebuilt.StatusOf("PO-R")!;
        Assert.That((s.Issued, s.InFlight, s.Remaining), Is.EqualTo((3L, 0L, 2L)), "initial and refurb consume; rework does not");

        // Even once the order signer has expired, the journaled order stays usable (its trust was checked on acceptance).
        var late = new OrderBook(new ProductionOrderVerifier(Pki.Root, "F1", new FakeTimeProvider(Now.AddYears(30))), journal);
        Assert.That(late.LoadFrom(journal), Is.EqualTo(1));
    }

    [Test]
    public void A_station_order_list_with_a_malformed_order_id_fails_validation_naming_the_key()
    {
        var config = new ConfigurationBuilder().AddJsonFile(Pki.PathOf("factoryca.json")).Build();
        var o = config.GetSection("FactoryCa").Get<OfflinePki.FactoryCa.FactoryCaOptions>()!;
        o.ResolvePaths(Pki.Directory);
        Assert.That(o.Orders.Required, Is.False, "the sample config says orders are optional");
        o.Stations[0].Orders = ["PO-1", "bad id!"];
        var result = new OfflinePki.FactoryCa.FactoryCaOptionsValidator().Validate(null, o);
        Assert.That(result.Failures, Is.EqualTo(new[] { "FactoryCa:Stations:0:Orders: 'bad id!' is not an order id (1-64 of [A-Za-z0-9._-])" }));
    }
}
