using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;
using OfflinePki.Hosting.Sync;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Registry;
using OfflinePki.Sync;
using OfflinePki.Sync.Grpc;
using OfflinePki.Sync.V1;
using OfflinePki.Tests.Journal;
using OfflinePki.Tests.Sync;

namespace OfflinePki.Tests.Resilience;

/// <summary>
/// Cut links: the factory's real sync client talks to the mirror's real gRPC endpoint (mTLS, SyncApplier over a SQLite
/// registry) through a loopback proxy that drops the TCP connection after a random number of bytes. Every interrupted
/// sync leaves the mirror at a verified prefix; the next one resumes from the mirror's head; the final registry equals
/// that of one uninterrupted sync; replaying an applied range is a no-op.
/// </summary>
/// <remarks>
/// The applier commits once per push (all or nothing), so a cut before the push completes applies nothing and the next
/// sync redoes that push from the mirror's head; a cut after the mirror committed but before the response arrived is
/// seen by the next sync's GetHead and not pushed again.
/// </remarks>
[NonParallelizable]
public class CutLinkTests
{
    private const int MinimumCuts = 20;

    [Test]
    public async Task Sync_cut_at_random_points_resumes_and_ends_identical_to_an_uninterrupted_sync()
    {
        var m = JournalTestData.M;
        var pki = m.Pki;
        var dir = pki.PathOf("cutlink-" + Guid.NewGuid().ToString("N")[..8]);
        await using var writer = await JournalWriter.OpenOrCreateAsync(new JournalWriterOptions { Directory = Path.Combine(dir, "journal"), CheckpointEveryEntries = 3 },
            m.SignerKey, m.SignerCert, new GenesisParameters("F1", [m.IssuingCa.RawData], new byte[32]), TimeProvider.System, NullLogger.Instance);

        using var cutRegistry = new MirrorRegistry(Path.Combine(dir, "cut", "registry.sqlite"), TimeProvider.System);
        await using var host = await GrpcTestHost.StartSyncAsync(pki, new SyncApplier(cutRegistry, m.Root));
        await using var proxy = new CuttingProxy(host.Port);
        using var grpc = new GrpcClient(new Uri($"https://127.0.0.1:{proxy.Port}/"), pki.CertWithKey("factory-F1-sync-client"), pki.Cert("tls-ca"));
        var client = new JournalSyncClient(grpc, writer, writer, new SyncOptions { BatchMaxEntries = 2, Timeout = TimeSpan.FromSeconds(10), PushTimeout = TimeSpan.FromSeconds(20) });

        var random = new Random(20261122);
        int iterations = 0, failures = 0;
        var journalId = Genesis.Parser.ParseFrom(writer.ReadFrom(1).First().Payload).JournalId.ToByteArray();
        ulong lastMirrorSeq = 0;
        while (proxy.Cuts < MinimumCuts && iterations < 100)
        {
            iterations++;
            int more = random.Next(1, 4);
            for (int i = 0; i < more; i++)
            {
                await writer.AppendAsync(EntryType.CertificateIssued, Certificate(m, $"CUT-{iterations:D3}-{i}"));
            }

            // Cut anywhere from the TLS handshake to past the end of the push (about 5 KB of TLS and gRPC plus under
            // 1 KB per entry), so that some syncs complete and the mirror advances between cuts.
            long estimate = 5000 + 1000 * (long)(writer.Head.Seq - lastMirrorSeq);
            proxy.Arm(random.NextInt64(1, estimate * 3 / 2));
            try
            {
                await client.SyncOnceAsync();
            }
#pragma warning disable CA1031 // any transport failure is what the cut produces
            catch (Exception)
#pragma warning restore CA1031
            {
                failures++;
            }

            // The mirror's view is a verified prefix of the factory's journal and never moves back.
            var state = cutRegistry.GetJournal(journalId);
            ulong mirrorSeq = state?.HeadSeq ?? 0;
            Assert.That(mirrorSeq, Is.GreaterThanOrEqualTo(lastMirrorSeq));
            Assert.That(mirrorSeq, Is.LessThanOrEqualTo(writer.Head.Seq));
            if (state is not null)
            {
                var factoryEntry = writer.ReadFrom(mirrorSeq).First();
                Assert.That(state.HeadHash, Is.EqualTo(factoryEntry.Hash.ToByteArray()), $"mirror head seq {mirrorSeq} is the factory's entry");
            }

            lastMirrorSeq = mirrorSeq;
        }

        TestContext.Out.WriteLine($"{iterations} syncs, {proxy.Cuts} cut connections, {failures} failed syncs, mirror at seq {lastMirrorSeq} of {writer.Head.Seq}");
        Assert.That(proxy.Cuts, Is.GreaterThanOrEqualTo(MinimumCuts));
        Assert.That(failures, Is.GreaterThan(0));
        Assert.That(lastMirrorSeq, Is.GreaterThan(0UL), "some syncs completed between cuts, so later ones resumed from a mirror head");

        proxy.Arm(null);
        var final = await client.SyncOnceAsync();
        Assert.That(final.AppliedSeq, Is.EqualTo(writer.Head.Seq));

        // The reference: one uninterrupted sync of the same journal into an empty registry.
        using var refRegistry = new MirrorRegistry(Path.Combine(dir, "ref", "registry.sqlite"), TimeProvider.System);
        await using (var refHost = await GrpcTestHost.StartSyncAsync(pki, new SyncApplier(refRegistry, m.Root)))
        {
            using var refGrpc = JournalSyncChannel.Create(refHost.BaseAddress, pki.CertWithKey("factory-F1-sync-client"), pki.Cert("tls-ca"));
            var refResult = await new JournalSyncClient(refGrpc, writer, writer, new SyncOptions()).SyncOnceAsync();
            Assert.That(refResult.AppliedSeq, Is.EqualTo(writer.Head.Seq));
        }

        Assert.That(RegistryDigest.Of(cutRegistry.DatabasePath, "counters"), Is.EqualTo(RegistryDigest.Of(refRegistry.DatabasePath, "counters")),
            "the registry after interrupted syncs equals the registry after one uninterrupted sync (change counters aside)");

        // Replaying an applied range is a no-op, down to the change counters.
        var before = RegistryDigest.Of(cutRegistry.DatabasePath);
        var replay = await grpc.ClientStreamingAsync<PushRequest, PushResponse>(JournalSyncClient.PushEntriesPath,
            Replay(journalId, writer.ReadFrom(2).Take(10).ToList()), TimeSpan.FromSeconds(20));
        Assert.That((replay.EntriesApplied, replay.AppliedSeq), Is.EqualTo((0UL, writer.Head.Seq)));
        Assert.That(RegistryDigest.Of(cutRegistry.DatabasePath), Is.EqualTo(before));
    }

    internal static CertificateIssued Certificate(JournalTestData.Material m, string deviceId) => new()
    {
        Certificate = ByteString.CopyFrom(m.DeviceCertificate(deviceId)),
        DeviceId = deviceId,
        StationId = "station-cut",
        BatchId = "B-CUT",
        CsrSha256 = ByteString.CopyFrom(new byte[32]),
        Profile = "idevid",
    };

    private static async IAsyncEnumerable<PushRequest> Replay(byte[] journalId, List<JournalEntry> entries)
    {
        yield return new PushRequest { Metadata = new PushMetadata { JournalId = ByteString.CopyFrom(journalId), FactoryId = "F1", FirstSeq = entries[0].Seq } };
        await Task.Yield();
        var eb = new EntryBatch();
        eb.Entries.AddRange(entries);
        yield return new PushRequest { Entries = eb };
    }
}
