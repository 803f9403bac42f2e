using System.Security.Cryptography;
using System.Text.Json;
using Google.Protobuf;
using NUnit.Framework;
using OfflinePki.Asn1;
using OfflinePki.Hosting.Sync;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Orders;
using OfflinePki.Registry;
using OfflinePki.Revocation;
using OfflinePki.Sync;
using OfflinePki.Tests.Journal;
using OfflinePki.Tests.Mirror;
using OfflinePki.Tests.Sync;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Orders;

/// <summary>
/// Orders on the mirror: stored with <c>MirrorCa order add</c>, delivered to the factory in the sync responses over real
/// gRPC/mTLS, accepted and journaled by the factory's book, and reported per order (authorized, issued, re-issued,
/// revoked, outside every order) and per certificate (batch report CSV/JSON, read back by Python's csv and json modules).
/// </summary>
[NonParallelizable]
public class OrderMirrorTests
{
    private static TestPki Pki => TestPki.Default;

    private static string Write(byte[] bytes)
    {
        string path = Factory.Peers.NewPath(".p7");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Test]
    public void Order_add_verifies_stores_once_and_refuses_bad_or_conflicting_orders()
    {
        using var bed = new MirrorTestBed();
        string good = Write(OrderFiles.Sign(Pki, OrderFiles.Json("PO-ADD", 10, "F1")));
        var r = MirrorCli.Run("order", "add", "--config", bed.ConfigPath, good);
        Assert.That(r.Exit, Is.Zero, r.Err);
        Assert.That(r.Out, Does.StartWith("OK stored: order PO-ADD sku GW-100 profile idevid quantity 10 for F1"));
        var again = MirrorCli.Run("order", "add", "--config", bed.ConfigPath, good);
        Assert.That(again.Out, Does.StartWith("OK already stored"));

        long version = bed.Registry.RegistryVersion;
        void Refused(string file, string message)
        {
            var x = MirrorCli.Run("order", "add", "--config", bed.ConfigPath, file);
            Assert.That(x.Exit, Is.EqualTo(1), x.Out);
            Assert.That(x.Err, Does.Contain(message));
            Assert.That(bed.Registry.RegistryVersion, Is.EqualTo(version), "a refused order changes nothing");
        }

        Refused(Write(OrderFiles.Sign(Pki, OrderFiles.Json("PO-ADD", 99, "F1"))), "Conflict");
        Refused(Write(OrderFiles.Sign(Pki, OrderFiles.Json("PO-EKU"), "journal-signer-F1")), "WrongEku");
        Refused(Write(OrderFiles.Sign(Pki, OrderFiles.Json("PO-ELSE", factoryId: "F9"))), "factory F9, which is not in MirrorCa:Factories");
        Refused(Write("{}"u8.ToArray()), "Malformed");
        Refused(Write(OrderFiles.SignText(Pki, "{\"orderId\":\"PO-X\"}")), "field 'sku': required");
        Assert.That(bed.Registry.OrdersFor("F1"), Has.Count.EqualTo(1));
    }

    [Test]
    public async Task Orders_travel_in_sync_responses_and_the_mirror_reports_them_per_order_and_per_certificate()
    {
        using var bed = new MirrorTestBed();
        var registry = bed.Registry;
        var mirrorVerifier = new ProductionOrderVerifier(Pki.Root, null, TimeProvider.System);
        Assert.That(MirrorCli.Run("order", "add", "--config", bed.ConfigPath, Write(OrderFiles.Sign(Pki, OrderFiles.Json("PO-M1", 10, "F1")))).Exit, Is.Zero);
        Assert.That(MirrorCli.Run("order", "add", "--config", bed.ConfigPath, Write(OrderFiles.Sign(Pki, OrderFiles.Json("PO-ANY", 2)))).Exit, Is.Zero);
        registry.AddOrder(mirrorVerifier.Verify(OrderFiles.Sign(Pki, OrderFiles.Json("PO-F2", 7, "F2"))), "test");

        var applier = new SyncApplier(registry, Pki.Root) { Orders = registry };
        await using var host = await GrpcTestHost.StartSyncAsync(Pki, applier);
        var b = new JournalTestData.Builder();
        var journal = new BuilderJournal(b);
        var book = new OrderBook(new ProductionOrderVerifier(Pki.Root, "F1", TimeProvider.System), journal);
        book.LoadFrom(journal);
        using var grpc = JournalSyncChannel.Create(host.BaseAddress, Pki.CertWithKey("factory-F1-sync-client"), Pki.Cert("tls-ca"));
        var client = new JournalSyncClient(grpc, journal, journal, new SyncOptions { Timeout = TimeSpan.FromSeconds(10), PushTimeout = TimeSpan.FromSeconds(20) })
        {
            Orders = book,
        };

        // First sync: the mirror sends F1's and everyone's orders (not F2's); the factory journals them.
        await client.SyncOnceAsync();
        Assert.That(book.Snapshot().Select(s => s.Order.OrderId), Is.EqualTo(new[] { "PO-ANY", "PO-M1" }));
        Assert.That(b.Entries.Where(e => e.Type == EntryType.OrderAccepted).Select(e => OrderAccepted.Parser.ParseFrom(e.Payload).Source), Is.All.EqualTo("sync"));

        var certs = new List<(string Device, byte[] Der)>();
        void Issue(string device, string batch, IssuanceKind kind, string mac = "", string op = "op-1")
        {
            var der = b.M.DeviceCertificate(device);
            certs.Add((device, der));
            b.Add(EntryType.CertificateIssued, new CertificateIssued
            {
                Certificate = ByteString.CopyFrom(der), DeviceId = device, StationId = "station-01", OperatorId = op, BatchId = batch, Kind = kind,
                MacAddress = mac, Profile = "idevid", CsrSha256 = ByteString.CopyFrom(new byte[32]),
            });
        }

        Issue("ORD-00001", "PO-M1", IssuanceKind.Initial, "00:1a:2b:3c:4d:01", "op,\"7\"");
        Issue("ORD-00002", "PO-M1", IssuanceKind.Initial, "00:1a:2b:3c:4d:02");
        Issue("ORD-00003", "PO-M1", IssuanceKind.Initial);
        Issue("ORD-00004", "PO-M1", IssuanceKind.Refurb);
        Issue("ORD-00001", "PO-M1", IssuanceKind.Rework);
        Issue("ORD-00005", "PO-ANY", IssuanceKind.Initial);
        Issue("LOOSE-0001", "", IssuanceKind.Initial);
        Issue("GHOST-0001", "PO-GHOST", IssuanceKind.Initial);

        // Second sync pushes the acceptances and the certificates; the mirror then stops offering F1 its orders.
        var second = await client.SyncOnceAsync();
        Assert.That(second.AppliedSeq, Is.EqualTo(b.Head.Seq));
        Assert.That(registry.OrdersFor("F1"), Is.Empty);
        Assert.That(registry.OrdersFor("F2"), Has.Count.EqualTo(2), "F2 still gets its own order and the one for any factory");
        int entries = b.Entries.Count;
        await client.SyncOnceAsync();
        Assert.That(b.Entries.Count(e => e.Type == EntryType.OrderAccepted), Is.EqualTo(2), "nothing is re-accepted");

        var revokedSerial = SerialNumber.Normalize(OfflinePki.Journal.DerCertificateParts.Parse(certs[1].Der).SerialNumber.Span);
        registry.Revoke("F1", revokedSerial, CrlReason.KeyCompromise, null, "test");

        var report = registry.ReportOrders();
        var m1 = report.Orders.Single(o => o.OrderId == "PO-M1");
        Assert.That((m1.Authorized, m1.Issued, m1.Reissued, m1.Revoked), Is.EqualTo(((long?)10, 4L, 1L, 1L)));
        Assert.That(m1.Factories, Is.EqualTo(new[] { "F1" }));
        var any = report.Orders.Single(o => o.OrderId == "PO-ANY");
        Assert.That((any.Authorized, any.Issued), Is.EqualTo(((long?)2, 1L)));
        var f2 = report.Orders.Single(o => o.OrderId == "PO-F2");
        Assert.That((f2.Issued, f2.Factories.Count), Is.EqualTo((0L, 0)));
        Assert.That((report.OutsideCertificates, report.UnknownBatchIds), Is.EqualTo((2L, (IReadOnlyList<string>)["PO-GHOST"])));

        var text = MirrorCli.Run("report", "orders", "--config", bed.ConfigPath);
        Assert.That(text.Exit, Is.Zero, text.Err);
        Assert.That(text.Out, Does.Contain("PO-M1\tGW-100\tidevid\tF1\t10\t4\t1\t1"));
        Assert.That(text.Out, Does.Contain("outside every order: 2 certificate(s), 0 revoked; unknown batch ids: PO-GHOST"));

        // Batch report as CSV, read back with Python's csv module (RFC 4180 quoting of the operator "op,"7"").
        string csv = Factory.Peers.NewPath(".csv");
        var w = MirrorCli.Run("report", "order", "PO-M1", "--format", "csv", "--out", csv, "--config", bed.ConfigPath);
        Assert.That(w.Exit, Is.Zero, w.Err);
        Assert.That(w.Out, Does.Contain("wrote 5 certificate(s) of order PO-M1"));
        var py = Tool.Run("/usr/bin/python3", ["-c", "import csv, json, sys; print(json.dumps(list(csv.DictReader(open(sys.argv[1], newline='', encoding='utf-8')))))", csv])
            .EnsureSuccess("python csv");
        var rows = JsonDocument.Parse(py.StdOut).RootElement.EnumerateArray().ToList();
        Assert.That(rows, Has.Count.EqualTo(5));
        var first = rows[0];
        Assert.That(first.GetProperty("device_id").GetString(), Is.EqualTo("ORD-00001"));
        Assert.That(first.GetProperty("operator").GetString(), Is.EqualTo("op,\"7\""));
        Assert.That(first.GetProperty("mac").GetString(), Is.EqualTo("00:1a:2b:3c:4d:01"));
        Assert.That(first.GetProperty("station").GetString(), Is.EqualTo("station-01"));
        Assert.That(first.GetProperty("kind").GetString(), Is.EqualTo("initial"));
        Assert.That(first.GetProperty("sha256").GetString(), Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(certs[0].Der))));
        Assert.That(first.GetProperty("serial").GetString(),
            Is.EqualTo(SerialNumber.ToHex(SerialNumber.Normalize(OfflinePki.Journal.DerCertificateParts.Parse(certs[0].Der).SerialNumber.Span))));
        Assert.That(DateTimeOffset.Parse(first.GetProperty("time").GetString()!, System.Globalization.CultureInfo.InvariantCulture),
            Is.EqualTo(JournalCodec.FromUnixMicros(b.Entries.First(e => e.Type == EntryType.CertificateIssued).TimeUnixMicros)).Within(TimeSpan.FromSeconds(1)));
        Assert.That(rows.Select(r => r.GetProperty("kind").GetString()), Is.EqualTo(new[] { "initial", "initial", "initial", "refurb", "rework" }));
        Assert.That(rows[2].GetProperty("mac").GetString(), Is.Empty);
        Assert.That(File.ReadAllText(csv), Does.StartWith(BatchReport.CsvHeader + "\r\n"));

        // And as JSON on standard output.
        var j = MirrorCli.Run("report", "order", "PO-M1", "--format", "json", "--config", bed.ConfigPath);
        Assert.That(j.Exit, Is.Zero, j.Err);
        var pyJson = Tool.Run("/usr/bin/python3", ["-c", "import json, sys; d = json.load(sys.stdin); print(d['orderId'], d['count'], d['certificates'][2]['mac'], d['certificates'][0]['operator'])"],
            stdin: System.Text.Encoding.UTF8.GetBytes(j.Out)).EnsureSuccess("python json");
        Assert.That(pyJson.StdOut.Trim(), Is.EqualTo("PO-M1 5 None op,\"7\""));

        var unknown = MirrorCli.Run("report", "order", "PO-NOPE", "--config", bed.ConfigPath);
        Assert.That((unknown.Exit, unknown.Err.Contains("order 'PO-NOPE' is unknown", StringComparison.Ordinal)), Is.EqualTo((1, true)));
        var badFormat = MirrorCli.Run("report", "order", "PO-M1", "--format", "xml", "--config", bed.ConfigPath);
        Assert.That(badFormat.Exit, Is.EqualTo(2));
        Assert.That(entries, Is.LessThanOrEqualTo(b.Entries.Count));
    }

    [Test]
    public async Task Orders_a_factory_journals_without_the_OEM_signature_or_with_altered_content_authorise_nothing()
    {
        using var bed = new MirrorTestBed();
        var registry = bed.Registry;
        registry.AddOrder(new ProductionOrderVerifier(Pki.Root, null, TimeProvider.System).Verify(OrderFiles.Sign(Pki, OrderFiles.Json("PO-REAL", 5, "F1"))), "test");
        var applier = new SyncApplier(registry, Pki.Root);
        await using var host = await GrpcTestHost.StartSyncAsync(Pki, applier);
        var b = new JournalTestData.Builder();
        var journal = new BuilderJournal(b);

        // A compromised factory journals an order signed by its own journal key, and a bigger copy of a real order id.
        void Journal(string id, byte[] signed) => b.Add(EntryType.OrderAccepted, new OrderAccepted
        {
            OrderId = id, SignedOrder = ByteString.CopyFrom(signed), OrderSha256 = ByteString.CopyFrom(SHA256.HashData(signed)), Source = "file",
        });
        Journal("PO-FORGED", OrderFiles.Sign(Pki, OrderFiles.Json("PO-FORGED", 100000), "journal-signer-F1"));
        Journal("PO-REAL", OrderFiles.Sign(Pki, OrderFiles.Json("PO-REAL", 500, "F1")));
        for (int i = 1; i <= 3; i++)
        {
            var device = $"ORD-{i:D5}";
            b.Add(EntryType.CertificateIssued, new CertificateIssued
            {
                Certificate = ByteString.CopyFrom(b.M.DeviceCertificate(device)), DeviceId = device, StationId = "station-01", BatchId = "PO-FORGED",
            });
        }

        using var grpc = JournalSyncChannel.Create(host.BaseAddress, Pki.CertWithKey("factory-F1-sync-client"), Pki.Cert("tls-ca"));
        await new JournalSyncClient(grpc, journal, journal, new SyncOptions { Timeout = TimeSpan.FromSeconds(10), PushTimeout = TimeSpan.FromSeconds(20) }).SyncOnceAsync();

        var report = registry.ReportOrders(new ProductionOrderVerifier(Pki.Root, null, TimeProvider.System));
        var forged = report.Orders.Single(o => o.OrderId == "PO-FORGED");
        Assert.That((forged.Authorized, forged.Issued), Is.EqualTo(((long?)null, 3L)));
        Assert.That(forged.Problem, Does.Contain("not a valid OEM order (WrongEku)"));
        var real = report.Orders.Single(o => o.OrderId == "PO-REAL");
        Assert.That(real.Authorized, Is.Null);
        Assert.That(real.Problem, Does.Contain("differs from the order stored at the mirror"));

        var text = MirrorCli.Run("report", "orders", "--config", bed.ConfigPath);
        Assert.That(text.Out, Does.Contain("ALERT order PO-FORGED: the order journaled by factory F1 is not a valid OEM order"));
        Assert.That(text.Out, Does.Contain("ALERT order PO-REAL: factory F1 journaled order PO-REAL with content"));
    }

    [Test]
    public void Certificates_recorded_without_issuance_details_still_report_with_their_fingerprint()
    {
        // As a registry filled before issuance_details existed (or by a sink that records no details).
        using var bed = new MirrorTestBed();
        var dev = bed.Issue(batch: "PO-OLD");
        var rows = bed.Registry.BatchReportRows("PO-OLD").ToList();
        Assert.That(rows, Has.Count.EqualTo(1));
        Assert.That(rows[0].DeviceId, Is.EqualTo(dev.DeviceId));
        Assert.That(rows[0].Kind, Is.EqualTo("initial"));
        Assert.That(rows[0].MacAddress, Is.Null);
        Assert.That(rows[0].Sha256Fingerprint, Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(dev.Der))));
        Assert.That(bed.Registry.ReportOrders().UnknownBatchIds, Does.Contain("PO-OLD"));
        var r = MirrorCli.Run("report", "order", "PO-OLD", "--format", "csv", "--config", bed.ConfigPath);
        Assert.That(r.Exit, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain(dev.DeviceId + "," + dev.SerialHex));
    }

    [Test]
    public void Batch_report_csv_quotes_per_RFC_4180()
    {
        Assert.That(BatchReport.Field("plain"), Is.EqualTo("plain"));
        Assert.That(BatchReport.Field("a,b"), Is.EqualTo("\"a,b\""));
        Assert.That(BatchReport.Field("say \"hi\""), Is.EqualTo("\"say \"\"hi\"\"\""));
        Assert.That(BatchReport.Field("two\r\nlines"), Is.EqualTo("\"two\r\nlines\""));
        using var ms = new MemoryStream();
        var n = BatchReport.WriteCsv(ms, [new BatchReportRow("D-1", "0A", "ff", null, "st", null, new DateTimeOffset(2026, 11, 22, 7, 5, 0, TimeSpan.Zero), "initial")]);
        Assert.That(n, Is.EqualTo(1));
        Assert.That(System.Text.Encoding.UTF8.GetString(ms.ToArray()), Is.EqualTo(BatchReport.CsvHeader + "\r\nD-1,0A,ff,,st,,2026-11-22T07:05:00Z,initial\r\n"));
    }
}
