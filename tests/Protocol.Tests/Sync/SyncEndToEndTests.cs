using Google.Protobuf;
using NUnit.Framework;
using OfflinePki.Hosting.Sync;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Sync;
using OfflinePki.Sync.V1;
using OfflinePki.Tests.Journal;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Sync;

/// <summary>JournalSyncClient → Grpc.Net.Client → Kestrel (mTLS) → grpc-dotnet JournalSyncService → SyncApplier → fake sink; and python3-grpcio GetHead.</summary>
[NonParallelizable]
public class SyncEndToEndTests
{
    private static TestPki Pki => TestPki.Default;

    /// <summary>A journal in memory: the builder is the journal, CheckpointAsync appends a signed checkpoint.</summary>
    private static SyncOptions Options => new() { BatchMaxEntries = 3, Timeout = TimeSpan.FromSeconds(10), PushTimeout = TimeSpan.FromSeconds(20) };

    [Test]
    public async Task Factory_syncs_to_mirror_over_mtls_and_python_reads_the_head()
    {
        var sink = new FakeJournalSink();
        var applier = new SyncApplier(sink, JournalTestData.M.Root);
        var callers = GrpcTestHost.SyncCallers(Pki);
        await using var host = await GrpcTestHost.StartSyncAsync(Pki, applier, callers);

        var b = new JournalTestData.Builder();
        for (int i = 0; i < 10; i++)
        {
            b.AddCertificate($"E2E-{i:D3}");
        }

        var journal = new BuilderJournal(b);
        using var grpc = JournalSyncChannel.Create(host.BaseAddress, Pki.CertWithKey("factory-F1-sync-client"), Pki.Cert("tls-ca"));
        var client = new JournalSyncClient(grpc, journal, journal, Options);

        var first = await client.SyncOnceAsync();
        Assert.That(first.AppliedSeq, Is.EqualTo(12), "genesis + 10 certificates + the sync checkpoint");
        Assert.That(first.EntriesPushed, Is.EqualTo(12));
        Assert.That(first.EntriesApplied, Is.EqualTo(12));
        Assert.That(first.HeadHash, Is.EqualTo(b.Head.Hash));
        Assert.That(sink.Certificates, Has.Count.EqualTo(10));

        b.AddCertificate("E2E-LATE");
        var second = await client.SyncOnceAsync();
        Assert.That((second.AppliedSeq, second.EntriesPushed, second.EntriesApplied), Is.EqualTo((14UL, 2UL, 2UL)));
        Assert.That(sink.EntryCount, Is.EqualTo(14));

        var idle = await client.SyncOnceAsync();
        Assert.That((idle.AppliedSeq, idle.EntriesPushed, b.Head.Seq), Is.EqualTo((14UL, 0UL, 14UL)), "an idle journal gets no new checkpoint and pushes nothing");

        // python3-grpcio asks the real endpoint for the head.
        var request = new GetHeadRequest { JournalId = ByteString.CopyFrom(b.JournalId), FactoryId = "F1" };
        var py = PythonGrpc.Call(Pki, host.Port, "factory-F1-sync-client", "unary", JournalSyncClient.GetHeadPath, TimeSpan.FromSeconds(10), request.ToByteArray());
        Assert.That(py.Code, Is.EqualTo("OK"), py.Details);
        var head = GetHeadResponse.Parser.ParseFrom(py.Response);
        Assert.That((head.Known, head.Seq, head.Hash.ToByteArray()), Is.EqualTo((true, 14UL, b.Head.Hash)));

        // python3-grpcio pushes a tampered range: the status and message come through, nothing is applied.
        var before = sink.Snapshot();
        b.AddCertificate("E2E-PY");
        b.AddCheckpoint();
        var tampered = b.Entries[^2].Clone();
        tampered.Hash = JournalTestData.Flip(tampered.Hash, 0);
        var meta = new PushRequest { Metadata = new PushMetadata { JournalId = ByteString.CopyFrom(b.JournalId), FactoryId = "F1", FirstSeq = 15 } };
        var batch = new EntryBatch();
        batch.Entries.Add(tampered);
        batch.Entries.Add(b.Entries[^1]);
        var push = PythonGrpc.Call(Pki, host.Port, "factory-F1-sync-client", "stream", JournalSyncClient.PushEntriesPath, TimeSpan.FromSeconds(10),
            meta.ToByteArray(), new PushRequest { Entries = batch }.ToByteArray());
        Assert.That(push.Code, Is.EqualTo("INVALID_ARGUMENT"));
        Assert.That(push.Details, Does.StartWith("journal rejected at seq 15: BadHash"));
        Assert.That(sink.Snapshot(), Is.EqualTo(before));

        // The station certificate is a valid TLS client of the same CA but not a sync client.
        var station = PythonGrpc.Call(Pki, host.Port, "station-01", "unary", JournalSyncClient.GetHeadPath, TimeSpan.FromSeconds(10), request.ToByteArray());
        Assert.That(station.Code, Is.EqualTo("PERMISSION_DENIED"));

        // The honest factory catches up.
        var third = await client.SyncOnceAsync();
        Assert.That(third.AppliedSeq, Is.EqualTo(b.Head.Seq));
    }

    [Test]
    public async Task Factory_detects_a_fork_against_the_mirror_head()
    {
        var sink = new FakeJournalSink();
        var applier = new SyncApplier(sink, JournalTestData.M.Root);
        await using var host = await GrpcTestHost.StartSyncAsync(Pki, applier);
        var b = new JournalTestData.Builder();
        b.AddCertificate("FORK-1");
        var journal = new BuilderJournal(b);
        using var grpc = JournalSyncChannel.Create(host.BaseAddress, Pki.CertWithKey("factory-F1-sync-client"), Pki.Cert("tls-ca"));
        var client = new JournalSyncClient(grpc, journal, journal, Options);
        var synced = await client.SyncOnceAsync();

        // Rewrite our own history at the mirror's head seq (what a restored-from-old-backup factory would hold).
        var index = (int)synced.AppliedSeq - 1;
        var rewritten = b.Entries[index].Clone();
        rewritten.TimeUnixMicros += 1;
        b.Entries[index] = JournalTestData.Rehash(rewritten);

        var ex = Assert.ThrowsAsync<JournalSyncException>(() => client.SyncOnceAsync());
        var fork = await ex;
        Assert.That(fork!.IsFork, Is.True);
        Assert.That(fork.Message, Does.Contain($"fork at seq {synced.AppliedSeq}"));
    }

    [Test]
    public async Task Worker_syncs_at_start_and_on_demand_and_large_backlogs_stream_in_batches()
    {
        var sink = new FakeJournalSink();
        var applier = new SyncApplier(sink, JournalTestData.M.Root);
        await using var host = await GrpcTestHost.StartSyncAsync(Pki, applier);
        var b = new JournalTestData.Builder();
        for (int i = 0; i < 5000; i++)
        {
            b.AddBatchEvent(new string('x', 100));
        }

        var journal = new BuilderJournal(b);
        using var grpc = JournalSyncChannel.Create(host.BaseAddress, Pki.CertWithKey("factory-F1-sync-client"), Pki.Cert("tls-ca"));
        var options = new SyncOptions { Interval = TimeSpan.FromHours(1), BatchMaxEntries = 512, BatchMaxBytes = 16 * 1024 };
        var client = new JournalSyncClient(grpc, journal, journal, options);
        using var worker = new JournalSyncWorker(client, Microsoft.Extensions.Options.Options.Create(options), TimeProvider.System,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<JournalSyncWorker>.Instance);
        await worker.StartAsync(CancellationToken.None);
        try
        {
            await WaitFor(() => worker.LastSuccess is not null, worker);
            Assert.That(worker.LastSuccess!.Value.Result.AppliedSeq, Is.EqualTo(5002));
            Assert.That(sink.EntryCount, Is.EqualTo(5002));

            b.AddBatchEvent("on demand");
            worker.RequestSync();
            await WaitFor(() => worker.LastSuccess!.Value.Result.AppliedSeq == 5004, worker);
        }
        finally
        {
            await worker.StopAsync(CancellationToken.None);
        }
    }

    [Test]
    public void Sync_options_are_validated_across_fields()
    {
        var v = new SyncOptionsValidator();
        var bad = v.Validate(null, new SyncOptions { MirrorUrl = "http://mirror", Interval = TimeSpan.Zero, BatchMaxBytes = 8 << 20, PushMaxEntries = 0 });
        Assert.That(bad.Failed, Is.True);
        Assert.That(bad.FailureMessage, Does.Contain("Sync:MirrorUrl").And.Contain("Sync:Interval").And.Contain("Sync:BatchMaxBytes").And.Contain("Sync:ClientCertificatePath")
            .And.Contain("Sync:PushMaxEntries"));
        var good = v.Validate(null, new SyncOptions
        {
            MirrorUrl = "https://127.0.0.1:8443/",
            ClientCertificatePath = Pki.PathOf("factory-F1-sync-client.crt"),
            ClientKeyPath = Pki.PathOf("factory-F1-sync-client.key"),
            ServerTrustAnchorPath = Pki.PathOf("tls-ca.crt"),
        });
        Assert.That(good.Succeeded, Is.True, good.FailureMessage);
    }

    private static async Task WaitFor(Func<bool> condition, JournalSyncWorker worker)
    {
        var until = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(until), "worker did not sync in time; last error: " + worker.LastError);
            await Task.Delay(50);
        }
    }
}

/// <summary>The real factory journal (JournalWriter on disk) synced to the mirror endpoint.</summary>
[NonParallelizable]
public class SyncWithJournalWriterTests
{
    [Test]
    public async Task Journal_writer_entries_sync_to_the_mirror()
    {
        await using var writer = await WriterWithCertificates("JW", 10, checkpointEvery: 4, batchId: "B7");
        var sink = new FakeJournalSink();
        await using var mirror = await MirrorFor(sink);
        var client = new JournalSyncClient(mirror.Grpc, writer, writer, new SyncOptions { BatchMaxEntries = 4 });

        var result = await client.SyncOnceAsync();
        Assert.That(result.AppliedSeq, Is.EqualTo(writer.Head.Seq));
        Assert.That(result.HeadHash, Is.EqualTo(writer.Head.Hash));
        Assert.That(sink.EntryCount, Is.EqualTo((int)writer.Head.Seq));
        Assert.That(sink.Certificates.Select(c => c.DeviceId), Is.EquivalentTo(Enumerable.Range(0, 10).Select(i => $"JW-{i:D3}")));
        Assert.That(sink.Certificates.All(c => c.BatchId == "B7" && c.StationId == "station-02"), Is.True);

        var again = await client.SyncOnceAsync();
        Assert.That((again.AppliedSeq, again.EntriesPushed), Is.EqualTo((writer.Head.Seq, 0UL)));
    }

    [Test]
    public async Task A_long_backlog_goes_as_several_pushes_each_ending_at_a_checkpoint_and_committed_on_its_own()
    {
        await using var writer = await WriterWithCertificates("PU", 40, checkpointEvery: 5, batchId: string.Empty);
        var sink = new FakeJournalSink();
        await using var mirror = await MirrorFor(sink);
        var client = new JournalSyncClient(mirror.Grpc, writer, writer, new SyncOptions { BatchMaxEntries = 4, PushMaxEntries = 12 });

        var result = await client.SyncOnceAsync();

        // seq 1 genesis, 2 checkpoint, then 40 certificates with a checkpoint after every 5 (seqs 8, 14, ..., 50, the head).
        // A push stops at the first checkpoint once it carries 12 entries: 1..14, 15..26, 27..38, 39..50.
        ulong head = writer.Head.Seq;
        Assert.That(head, Is.EqualTo(50UL));
        Assert.That((result.AppliedSeq, result.EntriesPushed, result.EntriesApplied), Is.EqualTo((head, head, head)));
        Assert.That(result.HeadHash, Is.EqualTo(writer.Head.Hash));
        Assert.That(sink.EntryCount, Is.EqualTo((int)head));
        Assert.That(sink.Commits, Is.EqualTo(4), "one commit per push");
        Assert.That(sink.Certificates.Select(c => c.DeviceId), Is.EquivalentTo(Enumerable.Range(0, 40).Select(i => $"PU-{i:D3}")));

        var again = await client.SyncOnceAsync();
        Assert.That((again.AppliedSeq, again.EntriesPushed), Is.EqualTo((head, 0UL)));
    }

    /// <summary>A journal on disk with <paramref name="count"/> certificates for devices PREFIX-000, PREFIX-001, ...</summary>
    private static async Task<JournalWriter> WriterWithCertificates(string prefix, int count, int checkpointEvery, string batchId)
    {
        var m = JournalTestData.M;
        var dir = Path.Combine(Path.GetTempPath(), "offlinepki-tests", "sync-writer-" + Guid.NewGuid().ToString("N")[..8]);
        var writer = await JournalWriter.OpenOrCreateAsync(new JournalWriterOptions { Directory = dir, CheckpointEveryEntries = checkpointEvery },
            m.SignerKey, m.SignerCert, new GenesisParameters("F1", [m.IssuingCa.RawData], new byte[32]), TimeProvider.System,
            Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        for (int i = 0; i < count; i++)
        {
            await writer.AppendAsync(EntryType.CertificateIssued, new CertificateIssued
            {
                Certificate = ByteString.CopyFrom(m.DeviceCertificate($"{prefix}-{i:D3}")),
                DeviceId = $"{prefix}-{i:D3}",
                StationId = "station-02",
                BatchId = batchId,
                CsrSha256 = ByteString.CopyFrom(new byte[32]),
                Profile = "idevid",
            });
        }

        return writer;
    }

    private static async Task<MirrorEndpoint> MirrorFor(FakeJournalSink sink)
    {
        var pki = TestPki.Default;
        var applier = new SyncApplier(sink, JournalTestData.M.Root);
        var host = await GrpcTestHost.StartSyncAsync(pki, applier);
        return new MirrorEndpoint(host, JournalSyncChannel.Create(host.BaseAddress, pki.CertWithKey("factory-F1-sync-client"), pki.Cert("tls-ca")));
    }

    private sealed record MirrorEndpoint(GrpcTestHost Host, Grpc.Net.Client.GrpcChannel Grpc) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            Grpc.Dispose();
            await Host.DisposeAsync();
        }
    }
}
