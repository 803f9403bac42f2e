using System.Security.Cryptography;
using Google.Protobuf;
using NUnit.Framework;
using OfflinePki.Asn1;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Sync;
using OfflinePki.Sync.V1;
using OfflinePki.Tests.Journal;

namespace OfflinePki.Tests.Sync;

public class SyncApplierTests
{
    private static readonly CallerIdentity F1 = new("factory-F1-sync", "F1");

    private static SyncApplier NewApplier(FakeJournalSink sink) => new(sink, JournalTestData.M.Root);

    private static async IAsyncEnumerable<PushRequest> Stream(JournalTestData.Builder b, ulong firstSeq, IEnumerable<JournalEntry> entries, int batch = 3)
    {
        yield return new PushRequest { Metadata = new PushMetadata { JournalId = ByteString.CopyFrom(b.JournalId), FactoryId = b.M.FactoryId, FirstSeq = firstSeq } };
        foreach (var chunk in entries.Chunk(batch))
        {
            await Task.Yield();
            var eb = new EntryBatch();
            eb.Entries.AddRange(chunk);
            yield return new PushRequest { Entries = eb };
        }
    }

    private static Task<PushResponse> Push(SyncApplier applier, JournalTestData.Builder b, ulong firstSeq, CallerIdentity? caller = null, IEnumerable<JournalEntry>? entries = null)
        => applier.ApplyAsync(caller ?? F1, Stream(b, firstSeq, entries ?? b.Entries.Where(e => e.Seq >= firstSeq)));

    private static JournalTestData.Builder Journal(int certificates, bool checkpoint = true)
    {
        var b = new JournalTestData.Builder();
        for (int i = 0; i < certificates; i++)
        {
            b.AddCertificate($"DEV-{i:D4}");
        }

        if (checkpoint)
        {
            b.AddCheckpoint();
        }

        return b;
    }

    private static async Task<SyncRejectedException> Rejected(FakeJournalSink sink, Func<Task> push, SyncFault fault, string contains)
    {
        var before = sink.Snapshot();
        var ex = (await Assert.ThrowsAsync<SyncRejectedException>(() => push()))!;
        Assert.That(ex.Fault, Is.EqualTo(fault), ex.Message);
        Assert.That(ex.Message, Does.Contain(contains));
        Assert.That(sink.Snapshot(), Is.EqualTo(before), "a rejected push must apply nothing");
        return ex;
    }

    [Test]
    public async Task Full_push_applies_up_to_the_last_checkpoint_and_returns_the_head()
    {
        var sink = new FakeJournalSink();
        var applier = NewApplier(sink);
        var b = Journal(5);
        var checkpoint = b.Head;
        b.AddBatchEvent("after the checkpoint");

        var response = await Push(applier, b, 1);

        Assert.That(response.AppliedSeq, Is.EqualTo(checkpoint.Seq));
        Assert.That(response.HeadHash.ToByteArray(), Is.EqualTo(checkpoint.Hash));
        Assert.That(response.EntriesApplied, Is.EqualTo(7));
        Assert.That(sink.EntryCount, Is.EqualTo(7), "the batch event after the checkpoint is not applied");
        Assert.That(sink.Commits, Is.EqualTo(1));

        var certs = sink.Certificates;
        Assert.That(certs, Has.Count.EqualTo(5));
        var issuerKeyHash = SHA1.HashData(JournalTestData.M.IssuingCa.PublicKey.EncodedKeyValue.RawData);
        var first = certs.Single(c => c.DeviceId == "DEV-0000");
        var payload = CertificateIssued.Parser.ParseFrom(b.Entries[1].Payload);
        using var x509 = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(payload.Certificate.Span);
        Assert.That(first.IssuerKeyHash, Is.EqualTo(issuerKeyHash));
        Assert.That(first.Serial, Is.EqualTo(SerialNumber.Normalize(x509.SerialNumberBytes.Span)));
        Assert.That(first.StationId, Is.EqualTo("station-01"));
        Assert.That(first.Seq, Is.EqualTo(2));
        Assert.That(first.JournalId, Is.EqualTo(b.JournalId));
        Assert.That(first.NotAfter, Is.EqualTo(new DateTimeOffset(x509.NotAfter.ToUniversalTime())));

        var head = applier.GetHead(new GetHeadRequest { JournalId = ByteString.CopyFrom(b.JournalId), FactoryId = "F1" }, F1);
        Assert.That((head.Known, head.Seq, head.Hash.ToByteArray()), Is.EqualTo((true, checkpoint.Seq, checkpoint.Hash)));
        var unknown = applier.GetHead(new GetHeadRequest { JournalId = ByteString.CopyFrom(new byte[16]), FactoryId = "F1" }, F1);
        Assert.That(unknown.Known, Is.False);
    }

    [Test]
    public async Task Replay_is_a_no_op_and_a_resumed_push_applies_only_new_entries()
    {
        var sink = new FakeJournalSink();
        var applier = NewApplier(sink);
        var b = Journal(3);
        await Push(applier, b, 1);
        var snapshot = sink.Snapshot();

        var replay = await Push(applier, b, 1);
        Assert.That(replay.EntriesApplied, Is.Zero);
        Assert.That(replay.AppliedSeq, Is.EqualTo(b.Head.Seq));
        Assert.That(sink.Snapshot(), Is.EqualTo(snapshot));

        var mirrorHead = b.Head.Seq;
        b.AddCertificate("DEV-NEW1");
        b.AddCertificate("DEV-NEW2");
        b.AddCheckpoint();
        var overlapping = await Push(applier, b, 2);
        Assert.That(overlapping.EntriesApplied, Is.EqualTo(3));
        Assert.That(overlapping.AppliedSeq, Is.EqualTo(b.Head.Seq));

        b.AddBatchEvent();
        b.AddCheckpoint();
        var resumed = await Push(applier, b, mirrorHead + 4);
        Assert.That((resumed.EntriesApplied, resumed.AppliedSeq), Is.EqualTo((2UL, b.Head.Seq)));
        Assert.That(sink.EntryCount, Is.EqualTo((int)b.Head.Seq));
    }

    [Test]
    public async Task Gap_fork_bad_hash_and_tampered_certificate_apply_nothing()
    {
        var sink = new FakeJournalSink();
        var applier = NewApplier(sink);
        var b = Journal(2);
        await Push(applier, b, 1);
        var held = b.Head.Seq;
        b.AddCertificate("DEV-A");
        b.AddCertificate("DEV-B");
        b.AddCheckpoint();
        var fresh = b.Entries.Where(e => e.Seq > held).ToList();

        // Gap: the first new entry is missing.
        await Rejected(sink, () => Push(applier, b, held + 1, entries: fresh.Skip(1)), SyncFault.Conflict, "Gap");
        // Metadata that starts past the mirror head.
        await Rejected(sink, () => Push(applier, b, held + 2, entries: fresh.Skip(1)), SyncFault.Conflict, "resume from seq " + (held + 1));

        // Fork on a held entry: same seq, different (self-consistent) content.
        var forked = b.Entries[1].Clone();
        forked.TimeUnixMicros++;
        forked = JournalTestData.Rehash(forked);
        await Rejected(sink, () => Push(applier, b, 2, entries: new[] { forked }.Concat(b.Entries.Skip(2))), SyncFault.Conflict,
            "journal rejected at seq 2: Fork");

        // Bad hash on a new entry.
        var badHash = fresh[0].Clone();
        badHash.Hash = JournalTestData.Flip(badHash.Hash, 5);
        await Rejected(sink, () => Push(applier, b, held + 1, entries: new[] { badHash }.Concat(fresh.Skip(1))), SyncFault.InvalidEntry,
            $"journal rejected at seq {held + 1}: BadHash");

        // A flipped byte in a certificate's signature, re-hashed by the forger: the chain holds, the CA signature does not.
        var payload = CertificateIssued.Parser.ParseFrom(fresh[1].Payload);
        payload.Certificate = JournalTestData.Flip(payload.Certificate, payload.Certificate.Length - 3);
        var tampered = fresh[1].Clone();
        tampered.Payload = payload.ToByteString();
        tampered = JournalTestData.Rehash(tampered);
        var resealed = new List<JournalEntry> { fresh[0], tampered };
        await Rejected(sink, () => Push(applier, b, held + 1, entries: resealed), SyncFault.InvalidEntry, $"journal rejected at seq {held + 2}: ForeignCertificate");

        // A checkpoint signed by another key.
        var rogue = new JournalTestData.Builder();
        rogue.AddCertificate("DEV-R");
        var (_, rogueKey) = JournalTestData.M.RootSignedLeaf(withJournalEku: true);
        rogue.AddCheckpoint(rogueKey);
        await Rejected(sink, () => Push(applier, rogue, 1), SyncFault.InvalidEntry, "journal rejected at seq 3: BadSignature");

        // Good entries before the bad one in the same push, even after a verified checkpoint, are not applied either.
        var mixed = Journal(1);
        mixed.AddCertificate("DEV-M");
        var bad = JournalTestData.Flip(mixed.Entries[^1].Hash, 0);
        var mixedEntries = mixed.Entries.Take(mixed.Entries.Count - 1).Append(new JournalEntry(mixed.Entries[^1]) { Hash = bad });
        await Rejected(sink, () => Push(applier, mixed, 1, entries: mixedEntries), SyncFault.InvalidEntry, "BadHash");

        // Then the honest push still applies.
        var ok = await Push(applier, b, held + 1);
        Assert.That(ok.EntriesApplied, Is.EqualTo(3));
    }

    [Test]
    public async Task Callers_of_another_factory_and_malformed_streams_are_refused()
    {
        var sink = new FakeJournalSink();
        var applier = NewApplier(sink);
        var b = Journal(1);
        var f2 = new CallerIdentity("factory-F2-sync", "F2");

        await Rejected(sink, () => Push(applier, b, 1, caller: f2), SyncFault.PermissionDenied, "client factory-F2-sync may not push journal of factory F1");

        // The metadata claims F1 but the genesis is F2's: the genesis is what counts.
        var foreign = new JournalTestData.Builder(factoryId: "F2");
        foreign.AddCheckpoint();
        await Rejected(sink, () => Push(applier, foreign, 1), SyncFault.PermissionDenied, "client factory-F1-sync may not push journal of factory F2");

        await Rejected(sink, () => applier.ApplyAsync(F1, OnlyEntries(b)), SyncFault.InvalidRequest, "first PushRequest must carry metadata");
        await Rejected(sink, () => Push(applier, b, 2), SyncFault.Conflict, "push it from seq 1");

        await Push(applier, b, 1);
        var ex = Assert.Throws<SyncRejectedException>(() => applier.GetHead(new GetHeadRequest { JournalId = ByteString.CopyFrom(b.JournalId), FactoryId = "F1" }, f2))!;
        Assert.That(ex.Fault, Is.EqualTo(SyncFault.PermissionDenied));
        var bad = Assert.Throws<SyncRejectedException>(() => applier.GetHead(new GetHeadRequest { JournalId = ByteString.CopyFrom(new byte[3]), FactoryId = "F1" }, F1))!;
        Assert.That(bad.Fault, Is.EqualTo(SyncFault.InvalidRequest));

        static async IAsyncEnumerable<PushRequest> OnlyEntries(JournalTestData.Builder b)
        {
            await Task.Yield();
            var eb = new EntryBatch();
            eb.Entries.AddRange(b.Entries);
            yield return new PushRequest { Entries = eb };
        }
    }
}
