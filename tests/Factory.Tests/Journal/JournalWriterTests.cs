using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Keys;
using static OfflinePki.Tests.Journal.JournalTestData;

namespace OfflinePki.Tests.Journal;

public class JournalWriterTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "offlinepki-tests", "journal-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private string JournalFile => Path.Combine(_dir, JournalFileFormat.FileName);

    private JournalWriterOptions Options(int every = 1000, string? dir = null) => new()
    {
        Directory = dir ?? _dir,
        CheckpointEveryEntries = every,
        CheckpointInterval = TimeSpan.FromMinutes(5),
        MaxEntryBytes = 64 * 1024,
    };

    private static GenesisParameters Genesis(string? factory = null) => new(factory ?? M.FactoryId, [M.IssuingCa.RawData], new byte[32]);

    private Task<JournalWriter> Open(JournalWriterOptions? o = null, IJournalStorage? storage = null, TimeProvider? time = null,
        ILogger? logger = null, ISigningKey? key = null, string? factory = null) =>
        JournalWriter.OpenOrCreateAsync(o ?? Options(), key ?? M.SignerKey, M.SignerCert, Genesis(factory), time ?? TimeProvider.System,
            logger ?? NullLogger.Instance, storage);

    private static BatchEvent Event(int i, int pad = 0) => new() { BatchId = "B1", Event = "unit", Detail = i + new string('.', pad) };

    private static CertificateIssued Issued(string device) => new()
    {
        Certificate = ByteString.CopyFrom(M.DeviceCertificate(device)),
        DeviceId = device,
        StationId = "station-01",
        Profile = "idevid",
        CsrSha256 = ByteString.CopyFrom(new byte[32]),
    };

    [Test]
    public async Task New_journal_round_trips_and_verifies_against_the_root()
    {
        List<JournalEntry> written = [];
        await using (var w = await Open())
        {
            Assert.That(w.Head.Seq, Is.EqualTo(2UL), "genesis + initial checkpoint");
            for (int i = 0; i < 3; i++)
            {
                written.Add(await w.AppendAsync(EntryType.CertificateIssued, Issued("dev-" + i)));
                written.Add(await w.AppendAsync(EntryType.BatchEvent, Event(i)));
            }

            Assert.That(written.Select(e => e.Seq), Is.EqualTo(Enumerable.Range(3, 6).Select(i => (ulong)i)));
            Assert.That(w.Appends, Is.EqualTo(6));
            Assert.That(w.ReadFrom(3).Select(e => e.Hash), Is.EqualTo(written.Select(e => e.Hash)));
        }

        await using (var w = await Open())
        {
            Assert.That(w.Head.Seq, Is.EqualTo(9UL), "dispose wrote a checkpoint at seq 9");
            var all = w.ReadFrom(1).ToList();
            Assert.That(all.Select(e => e.Seq), Is.EqualTo(Enumerable.Range(1, 9).Select(i => (ulong)i)));
            Assert.That(all[^1].Type, Is.EqualTo(EntryType.Checkpoint));
            Assert.That(all.Skip(2).Take(6).Select(e => e.Hash), Is.EqualTo(written.Select(e => e.Hash)));
            var next = await w.AppendAsync(EntryType.BatchEvent, Event(99));
            Assert.That(next.Seq, Is.EqualTo(10UL));
        }

        var report = JournalFileVerifier.Verify(_dir, M.Root);
        Assert.That(report.HeadSeq, Is.EqualTo(11UL));
        var fileReader = JournalFileReader.Open(_dir);
        Assert.That(fileReader.Head.Seq, Is.EqualTo(11UL));
        Assert.That(fileReader.Head.Hash, Is.EqualTo(report.HeadHash));
        Assert.That(fileReader.ReadFrom(3).Take(6).Select(e => e.Hash), Is.EqualTo(written.Select(e => e.Hash)));
        using (var v = new JournalChainVerifier(M.Root))
        {
            Assert.That(fileReader.ReadFrom(1).Select(v.Accept).Count(), Is.EqualTo(11));
        }

        Assert.That(report.CertificatesIssued, Is.EqualTo(3UL));
        Assert.That(report.Checkpoints, Is.EqualTo(3UL));
        Assert.That(report.LastCheckpointSeq, Is.EqualTo(11UL));
        Assert.That(report.UnverifiedTailEntries, Is.Zero);
        Assert.That(report.FactoryId, Is.EqualTo(M.FactoryId));
    }

    [Test]
    public async Task File_verifier_reports_an_unverified_tail_and_catches_tampering()
    {
        await using (var w = await Open())
        {
            await w.AppendAsync(EntryType.CertificateIssued, Issued("dev-a"));
            await w.AppendAsync(EntryType.BatchEvent, Event(1));
            var copy = Path.Combine(_dir, "copy.log");
            File.Copy(JournalFile, copy);
            var report = JournalFileVerifier.Verify(copy, M.Root);
            Assert.That(report.HeadSeq, Is.EqualTo(4UL));
            Assert.That(report.LastCheckpointSeq, Is.EqualTo(2UL));
            Assert.That(report.UnverifiedTailEntries, Is.EqualTo(2UL));

            // The live file runs on past the records (preallocated zeros); the verifier stops at the last record.
            Assert.That(new FileInfo(copy).Length, Is.GreaterThan(w.DurableLength));
            var bytes = File.ReadAllBytes(copy);
            bytes[(int)w.DurableLength - 10] ^= 0x20;
            File.WriteAllBytes(copy, bytes);
            var ex = Assert.Throws<JournalVerificationException>(() => JournalFileVerifier.Verify(copy, M.Root));
            Assert.That(ex!.Seq, Is.EqualTo(4UL));

            // A torn last record is reported, not hidden and not fatal.
            File.WriteAllBytes(copy, File.ReadAllBytes(JournalFile).AsSpan(0, (int)w.DurableLength - 7).ToArray());
            report = JournalFileVerifier.Verify(copy, M.Root);
            Assert.That(report.HeadSeq, Is.EqualTo(3UL));
            Assert.That(report.TornTailBytes, Is.GreaterThan(0));

            // Against another root nothing verifies.
            using var otherRoot = M.ImpostorCa(sameName: false);
            Assert.That(Assert.Throws<JournalVerificationException>(() => JournalFileVerifier.Verify(JournalFile, otherRoot))!.Fault, Is.EqualTo(JournalFault.UnknownSigner));
        }
    }

    [Test]
    public async Task ReadFrom_seeks_with_the_sparse_index_and_stops_at_the_durable_head()
    {
        await using var w = await Open(Options(every: 1_000_000));
        var tasks = Enumerable.Range(0, 3000).Select(i => w.AppendAsync(EntryType.BatchEvent, Event(i))).ToArray();
        await Task.WhenAll(tasks);
        Assert.That(w.Head.Seq, Is.EqualTo(3002UL));
        var from = w.ReadFrom(2050).ToList();
        Assert.That(from[0].Seq, Is.EqualTo(2050UL));
        Assert.That(from[^1].Seq, Is.EqualTo(3002UL));
        Assert.That(from, Has.Count.EqualTo(953));
        Assert.That(w.ReadFrom(1025).First().Seq, Is.EqualTo(1025UL));
        Assert.That(w.ReadFrom(1024).First().Seq, Is.EqualTo(1024UL));
        Assert.That(w.ReadFrom(3003), Is.Empty);
        Assert.That(w.ReadFrom(0).First().Type, Is.EqualTo(EntryType.Genesis));

        var snapshot = w.ReadFrom(3000);
        await w.AppendAsync(EntryType.BatchEvent, Event(-1));
        Assert.That(snapshot.Last().Seq, Is.EqualTo(3002UL), "a reader sees the durable head at the time of the call");
    }

    [Test]
    public async Task Readers_run_while_appends_continue()
    {
        await using var w = await Open(Options(every: 50));
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            for (int i = 0; i < 400; i++)
            {
                await w.AppendAsync(EntryType.BatchEvent, Event(i));
            }
        });
        while (!writer.IsCompleted)
        {
            var head = w.Head;
            var read = w.ReadFrom(1).ToList();
            Assert.That(read[^1].Seq, Is.GreaterThanOrEqualTo(head.Seq));
            Assert.That(read.Select(e => e.Seq), Is.EqualTo(Enumerable.Range(1, read.Count).Select(i => (ulong)i)));
            using var v = new JournalChainVerifier(M.Root);
            read.ForEach(e => v.Accept(e));
        }

        await writer;
    }

    [Test]
    public async Task Group_commit_shares_fsyncs_between_concurrent_appends()
    {
        List<ulong> seqs;
        long appends, fsyncs;
        await using (var w = await Open())
        {
            var start = new TaskCompletionSource();
            var tasks = Enumerable.Range(0, 64).Select(async i =>
            {
                await start.Task;
                return await w.AppendAsync(EntryType.BatchEvent, Event(i));
            }).ToArray();
            start.SetResult();
            var entries = await Task.WhenAll(tasks);
            seqs = entries.Select(e => e.Seq).Order().ToList();
            appends = w.Appends;
            fsyncs = w.Fsyncs;
            TestContext.Out.WriteLine($"64 concurrent appends: {appends} appends, {fsyncs} fsyncs");
            Assert.That(appends, Is.EqualTo(64));
            Assert.That(fsyncs, Is.LessThan(appends));
            Assert.That(seqs, Is.EqualTo(Enumerable.Range(3, 64).Select(i => (ulong)i)));
        }

        await using (var w = await Open())
        {
            var durable = w.ReadFrom(3).Where(e => e.Type == EntryType.BatchEvent).Select(e => e.Seq).ToList();
            Assert.That(durable, Is.EqualTo(seqs));
        }
    }

    [Test]
    public void The_storage_writes_zeros_ahead_reads_back_what_was_appended_and_cuts_the_zeros_on_close()
    {
        string path = Path.Combine(_dir, "prealloc.log");
        var chunk = new byte[3 << 20];
        new Random(7).NextBytes(chunk);
        using (var storage = FileJournalStorage.Open(path))
        {
            long[] physical = [7 << 20, 7 << 20, 13 << 20]; // 3 MiB appends against 4 MiB of zeros: extended by the 1st and 3rd
            for (int i = 0; i < 3; i++)
            {
                storage.Append(chunk);
                storage.Flush();
                Assert.That(storage.Length, Is.EqualTo((i + 1L) * chunk.Length));
                Assert.That(new FileInfo(path).Length, Is.EqualTo(physical[i]), $"append {i}");
            }

            storage.Append([1, 2, 3]); // inside the zeros: a data-only flush
            storage.Flush();
            Assert.That(new FileInfo(path).Length, Is.EqualTo(physical[2]));
        }

        var bytes = File.ReadAllBytes(path);
        Assert.That(bytes, Has.Length.EqualTo((3 * chunk.Length) + 3), "closed at the last byte written");
        for (int i = 0; i < 3; i++)
        {
            Assert.That(bytes.AsSpan(i * chunk.Length, chunk.Length).SequenceEqual(chunk), Is.True, $"chunk {i}");
        }
    }

    [Test]
    public async Task A_copy_taken_while_the_writer_runs_opens_at_its_last_record_without_a_torn_tail_warning()
    {
        // What a crash leaves: the records, then the preallocated zeros.
        string crashed = Path.Combine(_dir, "crashed");
        Directory.CreateDirectory(crashed);
        JournalHead head;
        long durable;
        await using (var w = await Open())
        {
            for (int i = 0; i < 50; i++)
            {
                await w.AppendAsync(EntryType.BatchEvent, Event(i));
            }

            head = w.Head;
            durable = w.DurableLength;
            File.Copy(JournalFile, Path.Combine(crashed, JournalFileFormat.FileName));
        }

        Assert.That(new FileInfo(Path.Combine(crashed, JournalFileFormat.FileName)).Length, Is.GreaterThan(durable));
        var reader = JournalFileReader.Open(crashed);
        Assert.That(reader.Head.Seq, Is.EqualTo(head.Seq), "the CLI reader stops at the zeros");
        Assert.That(JournalFileVerifier.Verify(Path.Combine(crashed, JournalFileFormat.FileName), M.Root).TornTailBytes, Is.Zero);

        var logger = new ListLogger();
        await using (var w = await Open(Options(dir: crashed), logger: logger))
        {
            Assert.That(w.Head.Seq, Is.EqualTo(head.Seq));
            Assert.That(w.Head.Hash, Is.EqualTo(head.Hash));
            Assert.That(w.DurableLength, Is.EqualTo(durable));
            Assert.That(new FileInfo(Path.Combine(crashed, JournalFileFormat.FileName)).Length, Is.EqualTo(durable), "the zeros are cut off at open");
            Assert.That((await w.AppendAsync(EntryType.BatchEvent, Event(99))).Seq, Is.EqualTo(head.Seq + 1));
        }

        Assert.That(logger.Lines.Where(l => l.Level >= LogLevel.Warning), Is.Empty);
    }

    [Test]
    public async Task Torn_tail_at_every_byte_offset_of_the_last_record_keeps_exactly_the_acknowledged_prefix()
    {
        long goodLength;
        byte[] full;
        ulong goodSeq;
        await using (var w = await Open())
        {
            await w.AppendAsync(EntryType.BatchEvent, Event(1));
            goodSeq = (await w.AppendAsync(EntryType.CertificateIssued, Issued("dev-t"))).Seq;
            goodLength = w.DurableLength;
            await w.AppendAsync(EntryType.BatchEvent, Event(2, pad: 40));
            full = File.ReadAllBytes(JournalFile).AsSpan(0, (int)w.DurableLength).ToArray();
        }

        Assert.That(full.Length - goodLength, Is.GreaterThan(40));
        var logger = new ListLogger();
        for (long cut = goodLength + 1; cut < full.Length; cut++)
        {
            // As a crash leaves it: the file ends mid-record, or (in the writer's preallocated space) runs on in zeros.
            foreach (int zeros in new[] { 0, 5000 })
            {
                var dir = Path.Combine(_dir, $"cut{cut}-{zeros}");
                Directory.CreateDirectory(dir);
                File.WriteAllBytes(Path.Combine(dir, JournalFileFormat.FileName), [.. full.AsSpan(0, (int)cut), .. new byte[zeros]]);
                await using (var w = await Open(Options(dir: dir), logger: zeros == 0 ? logger : new ListLogger()))
                {
                    Assert.That(w.Head.Seq, Is.EqualTo(goodSeq), $"cut at {cut}, {zeros} zeros");
                    Assert.That(w.DurableLength, Is.EqualTo(goodLength), $"cut at {cut}, {zeros} zeros");
                    Assert.That(new FileInfo(Path.Combine(dir, JournalFileFormat.FileName)).Length, Is.EqualTo(goodLength), $"cut at {cut}, {zeros} zeros: cut back to the last record");
                }

                Directory.Delete(dir, true);
            }
        }

        Assert.That(logger.Lines.Count(l => l.Level == LogLevel.Warning && l.Message.Contains($"seq {goodSeq + 1}") && l.Message.Contains($"offset {goodLength}")),
            Is.EqualTo(full.Length - goodLength - 1));
    }

    [Test]
    public async Task Garbage_in_the_last_record_is_a_torn_tail_but_garbage_in_the_middle_refuses_to_open()
    {
        long lastStart;
        await using (var w = await Open())
        {
            await w.AppendAsync(EntryType.BatchEvent, Event(1));
            await w.AppendAsync(EntryType.BatchEvent, Event(2));
            lastStart = w.DurableLength;
            await w.AppendAsync(EntryType.BatchEvent, Event(3, pad: 30));
        }

        // The file now ends ... seq 5 (event 3), seq 6 (checkpoint from dispose). Drop the checkpoint, scramble seq 5's body.
        var bytes = File.ReadAllBytes(JournalFile);
        var cut = ReadRecordEnd(bytes, lastStart);
        var tail = bytes.AsSpan(0, (int)cut).ToArray();
        tail[^5] ^= 0xFF;
        File.WriteAllBytes(JournalFile, tail);
        await using (var w = await Open())
        {
            Assert.That(w.Head.Seq, Is.EqualTo(4UL));
        }

        // Middle corruption: flip a byte inside seq 3 while later records are intact.
        bytes = File.ReadAllBytes(JournalFile);
        var middle = bytes.ToArray();
        middle[(int)lastStart - 20] ^= 0x01;
        File.WriteAllBytes(JournalFile, middle);
        var ex = await Assert.ThrowsAsync<JournalUnavailableException>(async () => await Open());
        Assert.That(ex!.Message, Does.Contain("refusing to open"));

        // A middle length prefix turned huge (it would look like a short body) must refuse too.
        var prefix = bytes.ToArray();
        int seq3 = FindRecordStart(bytes, 3);
        prefix[seq3] = 0x00; prefix[seq3 + 1] = 0x10;
        File.WriteAllBytes(JournalFile, prefix);
        ex = await Assert.ThrowsAsync<JournalUnavailableException>(async () => await Open());
        Assert.That(ex!.Message, Does.Contain("not just a torn tail"));

        // Bad magic.
        var magic = bytes.ToArray();
        magic[0] = (byte)'X';
        File.WriteAllBytes(JournalFile, magic);
        ex = await Assert.ThrowsAsync<JournalUnavailableException>(async () => await Open());
        Assert.That(ex!.Message, Does.Contain("magic"));
    }

    private static long ReadRecordEnd(byte[] file, long start) =>
        start + 4 + System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan((int)start));

    private static int FindRecordStart(byte[] file, ulong seq)
    {
        long o = 8;
        for (ulong s = 1; s < seq; s++)
        {
            o = ReadRecordEnd(file, o);
        }

        return (int)o;
    }

    [Test]
    public async Task Unchained_last_record_is_truncated_but_an_unchained_middle_record_refuses()
    {
        JournalHead head;
        await using (var w = await Open())
        {
            await w.AppendAsync(EntryType.BatchEvent, Event(1));
            head = w.Head;
        }

        head = new JournalHead(head.Seq + 1, (await ReadLast()).Hash.ToByteArray()); // the dispose checkpoint
        var original = File.ReadAllBytes(JournalFile);
        var forked = JournalCodec.CreateEntry(head.Seq + 1, 1, EntryType.BatchEvent, new BatchEvent { BatchId = "x" }, new byte[32]);
        var gapped = JournalCodec.CreateEntry(head.Seq + 2, 1, EntryType.BatchEvent, new BatchEvent { BatchId = "y" }, head.Hash);
        foreach (var bad in new[] { forked, gapped })
        {
            foreach (int zeros in new[] { 0, 3000 }) // as written, or followed by the writer's preallocated zeros
            {
                File.WriteAllBytes(JournalFile, [.. original, .. Record(bad), .. new byte[zeros]]);
                var logger = new ListLogger();
                await using (var w = await Open(logger: logger))
                {
                    Assert.That(w.Head.Seq, Is.EqualTo(head.Seq));
                }

                Assert.That(logger.Lines.Any(l => l.Message.Contains("Unchained")), Is.True, $"{zeros} zeros");
                original = File.ReadAllBytes(JournalFile);
            }
        }

        // The same unchained record followed by more data refuses to open.
        File.WriteAllBytes(JournalFile, original.Concat(Record(forked)).Concat(Record(forked)).ToArray());
        await Assert.ThrowsAsync<JournalUnavailableException>(async () => await Open());

        async Task<JournalEntry> ReadLast()
        {
            await Task.Yield();
            return JournalFileReader.Open(JournalFile).ReadFrom(1).Last();
        }
    }

    private static byte[] Record(JournalEntry e)
    {
        var w = new System.Buffers.ArrayBufferWriter<byte>();
        JournalFileFormat.WriteRecord(w, e);
        return w.WrittenSpan.ToArray();
    }

    [Test]
    public async Task Interrupted_creation_starts_a_new_journal()
    {
        File.WriteAllBytes(JournalFile, "OPKI"u8.ToArray());
        byte[] firstId;
        await using (var w = await Open())
        {
            Assert.That(w.Head.Seq, Is.EqualTo(2UL));
            firstId = w.Anchor.JournalId;
        }

        var full = File.ReadAllBytes(JournalFile);
        File.WriteAllBytes(JournalFile, full.AsSpan(0, 30).ToArray());
        await using (var w = await Open())
        {
            Assert.That(w.Head.Seq, Is.EqualTo(2UL));
            Assert.That(w.Anchor.JournalId, Is.Not.EqualTo(firstId), "a new journal, since no entry was complete");
        }
    }

    [Test]
    public async Task Failed_fsync_fails_closed_and_nothing_unacknowledged_is_lost_or_invented()
    {
        var storage = new FaultyStorage(FileJournalStorage.Open(JournalFile));
        var w = await Open(storage: storage);
        var acked = await w.AppendAsync(EntryType.BatchEvent, Event(1));
        storage.FailFlush = true;
        var ex = await Assert.ThrowsAsync<JournalUnavailableException>(() => w.AppendAsync(EntryType.BatchEvent, Event(2)));
        Assert.That(ex!.Message, Does.StartWith("journal failed: fsync of " + JournalFile + " failed:"));
        Assert.That(w.Health.IsHealthy, Is.False);
        Assert.That(w.Health.Failure, Does.Contain("fsync"));
        storage.FailFlush = false; // even if the disk comes back, the writer stays failed
        Assert.Throws<JournalUnavailableException>(() => w.AppendAsync(EntryType.BatchEvent, Event(3)));
        Assert.Throws<JournalUnavailableException>(() => w.CheckpointAsync());
        Assert.That(w.Head.Seq, Is.EqualTo(acked.Seq));
        await w.DisposeAsync();

        // The failed batch was written but never acknowledged; recovery may keep it (complete and valid), nothing else.
        await using var reopened = await Open();
        Assert.That(reopened.Head.Seq, Is.InRange(acked.Seq, acked.Seq + 1));
        Assert.That(reopened.ReadFrom(acked.Seq).First().Hash, Is.EqualTo(acked.Hash));
    }

    [Test]
    public async Task A_batch_is_encoded_while_the_previous_fsync_runs_and_is_acknowledged_only_after_its_own()
    {
        using var gate = new SemaphoreSlim(0);
        long appendedBefore = -1;
        var (storage, w, head, first, second) = await SecondWrittenDuringFirstFsync(gate, s => appendedBefore = s.Appended);
        Assert.That((first.IsCompleted, second.IsCompleted), Is.EqualTo((false, false)), "encoded or written is not acknowledged");
        Assert.That(w.Head.Seq, Is.EqualTo(head));
        Assert.That(storage.Appended, Is.EqualTo(appendedBefore), "the second batch waits in memory for the flush stage's next write");

        gate.Release(); // the first fsync returns: only the first append completes
        var e1 = await first;
        await storage.FlushEntered.WaitAsync(); // the second batch's own fsync
        Assert.That(second.IsCompleted, Is.False);
        Assert.That((e1.Seq, w.Head.Seq), Is.EqualTo((head + 1, head + 1)), "the durable head moves with the fsync, not the write");

        storage.FlushGate = null;
        gate.Release();
        var e2 = await second;
        Assert.That((e2.Seq, w.Head.Seq), Is.EqualTo((head + 2, head + 2)));
        await w.DisposeAsync();
    }

    [Test]
    public async Task A_failed_fsync_also_fails_the_batch_written_behind_it()
    {
        using var gate = new SemaphoreSlim(0);
        var (storage, w, acked, first, second) = await SecondWrittenDuringFirstFsync(gate);

        storage.FailFlush = true; // the held fsync fails
        storage.FlushGate = null;
        gate.Release();
        foreach (var t in new[] { first, second })
        {
            var ex = await Assert.ThrowsAsync<JournalUnavailableException>(() => t);
            Assert.That(ex!.Message, Does.StartWith("journal failed: fsync of " + JournalFile + " failed:"));
        }

        Assert.That(w.Health.IsHealthy, Is.False);
        Assert.That(w.Head.Seq, Is.EqualTo(acked), "nothing unacknowledged became the durable head");
        storage.FailFlush = false;
        Assert.Throws<JournalUnavailableException>(() => w.AppendAsync(EntryType.BatchEvent, Event(3)));
        await w.DisposeAsync();

        // Neither batch was acknowledged (the first was written, the second only encoded): recovery may keep the first
        // (complete and valid), nothing else.
        await using var reopened = await Open();
        Assert.That(reopened.Head.Seq, Is.InRange(acked, acked + 2));
    }

    /// <summary>
    /// Opens a journal, appends one entry and holds its fsync at <paramref name="gate"/>, then appends a second, which the
    /// encode stage encodes meanwhile. Returns the head before both.
    /// </summary>
    private async Task<(FaultyStorage Storage, JournalWriter Writer, ulong Head, Task<JournalEntry> First, Task<JournalEntry> Second)> SecondWrittenDuringFirstFsync(
        SemaphoreSlim gate, Action<FaultyStorage>? whileFirstFsyncIsHeld = null)
    {
        var storage = new FaultyStorage(FileJournalStorage.Open(JournalFile));
        var w = await Open(storage: storage);
        ulong head = w.Head.Seq;
        storage.FlushGate = gate;
        var first = w.AppendAsync(EntryType.BatchEvent, Event(1));
        await storage.FlushEntered.WaitAsync(); // the first batch is written and its fsync is held
        whileFirstFsyncIsHeld?.Invoke(storage);
        var second = w.AppendAsync(EntryType.BatchEvent, Event(2));
        await WaitUntil(() => w.EncodedSeq == head + 2);
        return (storage, w, head, first, second);
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var until = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(until), "timed out");
            await Task.Delay(5);
        }
    }

    [Test]
    public async Task Failed_write_fails_closed_and_the_half_written_batch_is_truncated_on_reopen()
    {
        var storage = new FaultyStorage(FileJournalStorage.Open(JournalFile));
        var w = await Open(storage: storage);
        var acked = await w.AppendAsync(EntryType.CertificateIssued, Issued("dev-w"));
        storage.FailWriteAfterBytes = 17;
        var failing = Enumerable.Range(0, 8).Select(i => w.AppendAsync(EntryType.BatchEvent, Event(i))).ToList();
        foreach (var t in failing)
        {
            var ex = await Assert.ThrowsAsync<JournalUnavailableException>(() => t);
            Assert.That(ex!.Message, Does.StartWith("journal failed: write to "));
        }

        Assert.Throws<JournalUnavailableException>(() => w.AppendAsync(EntryType.BatchEvent, Event(9)));
        await w.DisposeAsync();

        var logger = new ListLogger();
        await using var reopened = await Open(logger: logger);
        Assert.That(reopened.Head.Seq, Is.EqualTo(acked.Seq));
        Assert.That(logger.Lines.Any(l => l.Level == LogLevel.Warning && l.Message.Contains("torn tail")), Is.True);
    }

    [Test]
    public async Task Failed_checkpoint_signature_fails_closed()
    {
        var key = new SwitchableKey(M.SignerKey);
        var w = await Open(Options(every: 2), key: key);
        await w.AppendAsync(EntryType.BatchEvent, Event(1));
        key.Broken = true;
        var ex = await Assert.ThrowsAsync<JournalUnavailableException>(() => w.AppendAsync(EntryType.BatchEvent, Event(2)));
        Assert.That(ex!.Message, Does.Contain("signing a checkpoint"));
        Assert.That(ex.Message, Does.Not.Contain("BEGIN"));
        Assert.Throws<JournalUnavailableException>(() => w.AppendAsync(EntryType.BatchEvent, Event(3)));
        await w.DisposeAsync();
        await using var reopened = await Open();
        Assert.That(reopened.Head.Seq, Is.EqualTo(3UL));
    }

    [Test]
    public async Task Checkpoints_every_n_entries_on_demand_and_on_the_interval_timer()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var w = await Open(Options(every: 5), time: clock);
        for (int i = 0; i < 12; i++)
        {
            await w.AppendAsync(EntryType.BatchEvent, Event(i));
        }

        var types = w.ReadFrom(1).Select(e => e.Type).ToList();
        // 1 genesis, 2 cp, 3-7 events, 8 cp, 9-13 events, 14 cp, 15-16 events
        Assert.That(types.Select((t, i) => (t, seq: i + 1)).Where(x => x.t == EntryType.Checkpoint).Select(x => x.seq), Is.EqualTo(new[] { 2, 8, 14 }));
        Assert.That(w.Head.Seq, Is.EqualTo(16UL));

        var cp = await w.CheckpointAsync();
        Assert.That(cp.Seq, Is.EqualTo(17UL));
        Assert.That(Checkpoint.Parser.ParseFrom(cp.Payload).Seq, Is.EqualTo(16UL));
        Assert.That((await w.CheckpointAsync()).Seq, Is.EqualTo(17UL), "no checkpoint of a checkpoint");

        await w.AppendAsync(EntryType.BatchEvent, Event(100));
        clock.Advance(TimeSpan.FromMinutes(5));
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (w.Head.Seq < 19 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        Assert.That(w.Head.Seq, Is.EqualTo(19UL));
        Assert.That(w.ReadFrom(19).Single().Type, Is.EqualTo(EntryType.Checkpoint));
        clock.Advance(TimeSpan.FromMinutes(5));
        await Task.Delay(50);
        Assert.That(w.Head.Seq, Is.EqualTo(19UL), "an idle timer writes no checkpoint");
    }

    [Test]
    public async Task Oversize_and_misplaced_entries_are_refused_without_writing()
    {
        await using var w = await Open();
        var head = w.Head;
        Assert.Throws<ArgumentException>(() => w.AppendAsync(EntryType.BatchEvent, Event(1, pad: 70_000)));
        Assert.Throws<ArgumentException>(() => w.AppendAsync(EntryType.Checkpoint, new Checkpoint()));
        Assert.Throws<ArgumentException>(() => w.AppendAsync(EntryType.Genesis, new Genesis()));
        Assert.Throws<ArgumentException>(() => w.AppendAsync(EntryType.CertificateIssued, Event(1)));
        Assert.That(w.Head, Is.EqualTo(head));
        Assert.That(w.Health.IsHealthy, Is.True);
        Assert.That((await w.AppendAsync(EntryType.BatchEvent, Event(2))).Seq, Is.EqualTo(head.Seq + 1));
    }

    [Test]
    public async Task Another_factory_or_signer_cannot_open_the_journal()
    {
        await using (var _ = await Open())
        {
        }

        var ex = await Assert.ThrowsAsync<JournalUnavailableException>(async () => await Open(factory: "F9"));
        Assert.That(ex!.Message, Does.Contain("belongs to factory " + M.FactoryId));
        var (cert, key) = M.RootSignedLeaf(withJournalEku: true);
        using (cert)
        using (key)
        {
            var ex2 = await Assert.ThrowsAsync<JournalUnavailableException>(async () =>
                await JournalWriter.OpenOrCreateAsync(Options(), key, cert, Genesis(), TimeProvider.System, NullLogger.Instance));
            Assert.That(ex2!.Message, Does.Contain("another journal signer"));
            await Assert.ThrowsAsync<ArgumentException>(async () =>
                await JournalWriter.OpenOrCreateAsync(Options(), M.SignerKey, cert, Genesis(), TimeProvider.System, NullLogger.Instance));
        }
    }

    [Test]
    public void Options_validation_names_the_config_key()
    {
        var o = new JournalWriterOptions { Directory = "/x", CheckpointEveryEntries = 0 };
        var ex = Assert.Throws<OptionsValidationException>(o.Validate);
        Assert.That(ex!.Message, Does.Contain("FactoryCa:Journal:CheckpointEveryEntries must be between 1 and 1000000"));
        o = new JournalWriterOptions { Directory = "", CheckpointInterval = TimeSpan.Zero, MaxEntryBytes = 1 };
        Assert.That(o.Errors().ToList(), Has.Count.EqualTo(3));
        Assert.That(new JournalWriterOptionsValidator().Validate(null, new JournalWriterOptions { Directory = "/x" }).Succeeded, Is.True);
    }

    private sealed class SwitchableKey(ISigningKey inner) : ISigningKey
    {
        public bool Broken { get; set; }
        public string KeyId => inner.KeyId;
        public System.Security.Cryptography.X509Certificates.PublicKey PublicKey => inner.PublicKey;
        public byte[] SignatureAlgorithmIdentifier => inner.SignatureAlgorithmIdentifier;

        public byte[] Sign(ReadOnlySpan<byte> data) =>
            Broken ? throw new SigningKeyUnavailableException($"signing key {KeyId} failed to sign: token removed (injected)") : inner.Sign(data);
    }
}
