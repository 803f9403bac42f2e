using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;
using OfflinePki.Journal;
using OfflinePki.Journal.Index;
using OfflinePki.Journal.V1;
using static OfflinePki.Tests.Journal.JournalTestData;

namespace OfflinePki.Tests.Journal;

public class FactoryIndexTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "offlinepki-tests", "index-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>A hand-written fake of the narrow reader interface over an in-memory list.</summary>
    private sealed class ListReader(List<JournalEntry> entries) : IJournalReader
    {
        public JournalHead Head => entries.Count == 0 ? JournalHead.Empty : JournalCodec.HeadOf(entries[^1]);
        public IEnumerable<JournalEntry> ReadFrom(ulong firstSeq) => entries.Where(e => e.Seq >= firstSeq).ToList();
    }

    /// <summary>A reader whose journal cannot be read (the disk failed).</summary>
    private sealed class BrokenReader : IJournalReader
    {
        public JournalHead Head => throw new JournalUnavailableException("journal unreadable (test)");
        public IEnumerable<JournalEntry> ReadFrom(ulong firstSeq) => throw new JournalUnavailableException("journal unreadable (test)");
    }

    [Test]
    public void The_serial_check_forgets_in_memory_serials_once_the_index_holds_them_and_keeps_them_when_catch_up_fails()
    {
        // Regression: the serials issued since start were kept in memory for the daemon's whole life.
        var b = new Builder();
        var reader = new ListReader(b.Entries);
        using var index = FactoryIndex.Open(Path.Combine(_dir, "index.db"));
        var serials = new OfflinePki.FactoryCa.IndexedIssuedSerials(index);
        byte[] Issue(string device)
        {
            var e = b.AddCertificate(device);
            var serial = DerCertificateParts.Parse(CertificateIssued.Parser.ParseFrom(e.Payload).Certificate.Memory).SerialNumber.ToArray();
            serials.Record(serial); // as the enrollment service does once the entry is durable
            return serial;
        }

        var first = Issue("dev-1");
        var second = Issue("dev-2");
        Assert.That((serials.InMemory, serials.Contains(first), serials.Contains(second)), Is.EqualTo((2, true, true)));

        Assert.That(serials.CatchUp(reader), Is.EqualTo(3));
        Assert.That(serials.InMemory, Is.Zero, "indexed serials leave memory");
        Assert.That((serials.Contains(first), serials.Contains(second)), Is.EqualTo((true, true)), "the index answers for them");
        Assert.That(serials.Contains([0x7F, 0x02]), Is.False);

        var third = Issue("dev-3");
        Assert.Throws<JournalUnavailableException>(() => serials.CatchUp(new BrokenReader()));
        Assert.That((serials.InMemory, serials.Contains(third)), Is.EqualTo((1, true)), "a failed catch-up forgets nothing");
        Assert.That(serials.CatchUp(reader), Is.EqualTo(1));
        Assert.That((serials.InMemory, serials.Contains(third)), Is.EqualTo((0, true)));
    }

    [Test]
    public void Catch_up_is_idempotent_and_incremental_and_lookups_work()
    {
        var b = new Builder();
        var certs = new List<byte[]>();
        for (int i = 0; i < 5; i++)
        {
            var e = b.AddCertificate("dev-" + (i % 3));
            certs.Add(CertificateIssued.Parser.ParseFrom(e.Payload).Certificate.ToByteArray());
        }

        b.AddCheckpoint();
        var reader = new ListReader(b.Entries);
        using var index = FactoryIndex.Open(Path.Combine(_dir, "index.db"));
        Assert.That(index.CatchUp(reader, batchSize: 2), Is.EqualTo(7));
        Assert.That(index.CatchUp(reader), Is.Zero);
        Assert.That(index.AppliedSeq, Is.EqualTo(7UL));
        Assert.That(index.CountIssued(), Is.EqualTo(5));
        var serial = DerCertificateParts.Parse(certs[3]).SerialNumber.ToArray();
        Assert.That(index.ContainsSerial(serial), Is.True);
        Assert.That(index.ContainsSerial([0x7F, 0x01]), Is.False);
        var dev0 = index.FindByDevice("dev-0");
        Assert.That(dev0.Select(r => r.Seq), Is.EqualTo(new ulong[] { 2, 5 }));
        Assert.That(dev0[0].StationId, Is.EqualTo("station-01"));
        Assert.That(dev0[0].Sha256Hex, Is.EqualTo(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(certs[0]))));
        Assert.That(dev0[0].NotAfter, Is.GreaterThan(DateTimeOffset.UtcNow.AddDays(29)));

        b.AddCertificate("dev-9");
        Assert.That(index.CatchUp(reader), Is.EqualTo(1));
        Assert.That(index.FindByDevice("dev-9"), Has.Count.EqualTo(1));

        var other = new ListReader(new Builder().Entries);
        Assert.Throws<InvalidOperationException>(() => index.CatchUp(other));
    }

    [Test]
    public async Task Deleted_index_rebuilds_from_the_journal_to_identical_content()
    {
        var options = new JournalWriterOptions { Directory = Path.Combine(_dir, "journal"), CheckpointEveryEntries = 4 };
        await using var w = await JournalWriter.OpenOrCreateAsync(options, M.SignerKey, M.SignerCert,
            new GenesisParameters(M.FactoryId, [M.IssuingCa.RawData], new byte[32]), TimeProvider.System, NullLogger.Instance);
        var appends = Enumerable.Range(0, 20).Select(i => w.AppendAsync(EntryType.CertificateIssued, new CertificateIssued
        {
            Certificate = ByteString.CopyFrom(M.DeviceCertificate("dev-" + i)),
            DeviceId = "dev-" + i,
            StationId = "station-0" + (i % 2),
            Profile = "idevid",
            BatchId = "B" + (i % 3),
        })).ToList();
        appends.Add(w.AppendAsync(EntryType.BatchEvent, new BatchEvent { BatchId = "B1", Event = "closed" }));
        await Task.WhenAll(appends);

        var path = Path.Combine(_dir, "index", "factory-index.db");
        IReadOnlyList<IndexedCertificate> before;
        ulong appliedBefore;
        using (var index = FactoryIndex.Open(path))
        {
            index.CatchUp(w);
            before = index.All();
            appliedBefore = index.AppliedSeq;
        }

        Assert.That(before, Has.Count.EqualTo(20));
        File.Delete(path);
        using (var rebuilt = FactoryIndex.Rebuild(path, w))
        {
            Assert.That(rebuilt.AppliedSeq, Is.EqualTo(appliedBefore));
            Assert.That(rebuilt.All(), Is.EqualTo(before));
        }

        // Rebuilding over an existing (even damaged) file gives the same content too.
        File.WriteAllText(path, "garbage");
        using (var again = FactoryIndex.Rebuild(path, w))
        {
            Assert.That(again.All(), Is.EqualTo(before));
        }
    }
}
