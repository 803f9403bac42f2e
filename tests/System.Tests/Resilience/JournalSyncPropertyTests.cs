using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Sync;
using OfflinePki.Sync.V1;
using OfflinePki.Tests.Journal;
using OfflinePki.Tests.Sync;

namespace OfflinePki.Tests.Resilience;

/// <summary>
/// Property (FsCheck): over random interleavings of appends, checkpoints, crashes (a write torn after a random number of
/// bytes, then close and reopen), syncs (with or without a fresh checkpoint) and air-gap transfers (a signed export
/// bundle imported twice, sometimes starting past the mirror's head so that it is held until the gap is filled) the
/// mirror's view is always a verified prefix of the factory's journal, and a crash keeps exactly the acknowledged entries.
/// </summary>
public class JournalSyncPropertyTests
{
    private static readonly CallerIdentity F1 = new("factory-F1-sync", "F1");

    [FsCheck.NUnit.Property(MaxTest = 30, EndSize = 40)]
    public bool Mirror_view_is_always_a_verified_prefix_of_the_factory_journal(byte[] ops)
        => Run(ops ?? []).GetAwaiter().GetResult();

    [Test]
    public async Task An_air_gap_bundle_applies_once_and_a_gapped_one_waits_for_the_sync_that_fills_the_gap()
    {
        // appends, export (applied, then a no-op), appends, export from head + 2 (held), sync (fills the gap, then the held
        // bundle applies), appends, export (applied).
        var outcomes = new List<ImportOutcome>();
        Assert.That(await Run([0, 2, 7, 0, 1, 23, 6, 0, 7], outcomes), Is.True);
        Assert.That(outcomes, Is.EqualTo(new[]
        {
            ImportOutcome.Applied, ImportOutcome.AlreadyApplied, ImportOutcome.HeldPending, ImportOutcome.HeldPending,
            ImportOutcome.Applied, ImportOutcome.AlreadyApplied,
        }));
    }

    private static async Task<bool> Run(byte[] ops, List<ImportOutcome>? outcomes = null)
    {
        var m = JournalTestData.M;
        var dir = Path.Combine(Path.GetTempPath(), "offlinepki-tests", "prop-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, JournalFileFormat.FileName);
        var options = new JournalWriterOptions { Directory = dir, CheckpointEveryEntries = 1000, CheckpointInterval = TimeSpan.FromHours(1) };
        FaultyStorage storage = null!;
        async Task<JournalWriter> Open()
        {
            storage = new FaultyStorage(FileJournalStorage.Open(file));
            return await JournalWriter.OpenOrCreateAsync(options, m.SignerKey, m.SignerCert,
                new GenesisParameters("F1", [m.IssuingCa.RawData], new byte[32]), TimeProvider.System, NullLogger.Instance, storage);
        }

        var writer = await Open();
        var sink = new FakeJournalSink();
        var applier = new SyncApplier(sink, m.Root);
        var importer = new BundleImporter(applier, sink, Path.Combine(dir, "pending"), new HashSet<string>(StringComparer.Ordinal) { "F1" });
        var acked = writer.ReadFrom(1).Select(e => e.Hash.ToByteArray()).ToList(); // genesis (and any checkpoint the writer adds)
        var journalId = writer.Anchor.JournalId;
        try
        {
            int n = 0;
            foreach (byte op in ops.Take(40))
            {
                n++;
                switch (op % 8)
                {
                    case 0:
                    case 1:
                        Acked(acked, await writer.AppendAsync(EntryType.BatchEvent, new BatchEvent { BatchId = "P", Event = "opened", Detail = n.ToString(System.Globalization.CultureInfo.InvariantCulture) }));
                        break;
                    case 2:
                        Acked(acked, await writer.AppendAsync(EntryType.CertificateIssued, CutLinkTests.Certificate(m, $"PROP-{Guid.NewGuid():N}"[..20])));
                        break;
                    case 3:
                        Acked(acked, await writer.CheckpointAsync());
                        break;
                    case 4:
                        // Crash: the next append is torn after 1..60 bytes (never acknowledged); close; reopen.
                        storage.FailWriteAfterBytes = 1 + op % 60;
                        await Assert.ThrowsAsync<JournalUnavailableException>(() => writer.AppendAsync(EntryType.BatchEvent, new BatchEvent { BatchId = "P", Event = "torn" }));
                        await writer.DisposeAsync();
                        writer = await Open();
                        var recovered = writer.ReadFrom(1).ToList();
                        Assert.That(recovered.Take(acked.Count).Select(e => e.Hash.ToByteArray()), Is.EqualTo(acked), "recovery keeps the acknowledged prefix");
                        Assert.That(recovered.Skip(acked.Count).Select(e => e.Type), Is.All.EqualTo(EntryType.Checkpoint),
                            "recovery keeps exactly the acknowledged prefix: nothing torn or unacknowledged survives, only the writer's own checkpoints follow");
                        acked = recovered.Select(e => e.Hash.ToByteArray()).ToList();
                        break;
                    case 5:
                    case 6:
                        if (op % 8 == 5)
                        {
                            Acked(acked, await writer.CheckpointAsync());
                        }

                        ulong from = (applier.GetHead(new GetHeadRequest { JournalId = ByteString.CopyFrom(journalId), FactoryId = "F1" }, F1) is { Known: true } h ? h.Seq : 0) + 1;
                        await applier.ApplyAsync(F1, Push(journalId, from, writer.ReadFrom(from)));
                        await importer.ApplyPendingAsync(); // a held bundle may now follow the head
                        break;
                    default:
                    {
                        // Air gap: checkpoint, export a bundle from the mirror's head + 1 (or + 2, leaving a gap), import it twice.
                        Acked(acked, await writer.CheckpointAsync());
                        ulong head = applier.GetHead(new GetHeadRequest { JournalId = ByteString.CopyFrom(journalId), FactoryId = "F1" }, F1) is { Known: true } mh ? mh.Seq : 0;
                        ulong start = head + 1 + (op / 8 % 3 == 2 ? 1UL : 0UL);
                        if (start < (ulong)acked.Count)
                        {
                            string bundle = Path.Combine(dir, $"bundle-{n}.bin");
                            await using (var output = File.Create(bundle))
                            {
                                ExportBundleWriter.Write(writer, start, 0, m.SignerKey, m.SignerCert.RawData, output, TimeProvider.System);
                            }

                            outcomes?.Add((await importer.ImportAsync(bundle)).Outcome);
                            outcomes?.Add((await importer.ImportAsync(bundle)).Outcome); // importing the same bundle again is a no-op
                        }

                        break;
                    }
                }

                // The invariant: every acknowledged entry is in the factory journal, and the mirror holds a prefix of it
                // that ends at a verified checkpoint.
                var factory = writer.ReadFrom(1).ToList();
                Assert.That(factory.Count, Is.EqualTo(acked.Count));
                for (int i = 0; i < acked.Count; i++)
                {
                    Assert.That(factory[i].Hash.ToByteArray(), Is.EqualTo(acked[i]), $"entry {i + 1} is the acknowledged one");
                }

                var mirror = sink.GetJournal(journalId);
                if (mirror is not null)
                {
                    Assert.That(mirror.HeadSeq, Is.LessThanOrEqualTo((ulong)factory.Count));
                    Assert.That(factory[(int)mirror.HeadSeq - 1].Type, Is.EqualTo(EntryType.Checkpoint), "the mirror stops at a checkpoint");
                    for (ulong s = 1; s <= mirror.HeadSeq; s++)
                    {
                        Assert.That(sink.GetEntryHash(journalId, s), Is.EqualTo(acked[(int)s - 1]), $"mirror entry {s}");
                    }
                }
            }

            return true;
        }
        finally
        {
            await writer.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static void Acked(List<byte[]> acked, JournalEntry e)
    {
        if (e.Type == EntryType.Checkpoint && e.Seq == (ulong)acked.Count && e.Hash.Span.SequenceEqual(acked[^1]))
        {
            return; // a checkpoint over a head that already is one returns that checkpoint
        }

        Assert.That(e.Seq, Is.EqualTo((ulong)acked.Count + 1));
        acked.Add(e.Hash.ToByteArray());
    }

    private static async IAsyncEnumerable<PushRequest> Push(byte[] journalId, ulong firstSeq, IEnumerable<JournalEntry> entries)
    {
        yield return new PushRequest { Metadata = new PushMetadata { JournalId = ByteString.CopyFrom(journalId), FactoryId = "F1", FirstSeq = firstSeq } };
        foreach (var chunk in entries.Chunk(4))
        {
            await Task.Yield();
            var eb = new EntryBatch();
            eb.Entries.AddRange(chunk);
            yield return new PushRequest { Entries = eb };
        }
    }
}
