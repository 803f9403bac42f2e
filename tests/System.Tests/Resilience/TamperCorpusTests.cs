using System.CommandLine;
using Google.Protobuf;
using NUnit.Framework;
using OfflinePki.Hosting.Sync;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.MirrorCa;
using OfflinePki.Registry;
using OfflinePki.Sync;
using OfflinePki.Sync.Grpc;
using OfflinePki.Sync.V1;
using OfflinePki.Tests.Journal;
using OfflinePki.Tests.Sync;

namespace OfflinePki.Tests.Resilience;

/// <summary>
/// Every case of testdata/journal/cases.tsv is pushed through the real gRPC sync endpoint (mTLS, SyncApplier over a
/// SQLite MirrorRegistry): the mirror rejects it naming the seq and the fault, applies nothing (registry digest), and
/// records an alert that <c>MirrorCa status</c> shows.
/// </summary>
[NonParallelizable]
public class TamperCorpusTests
{
    private string _dir = "";
    private string _corpus = "";
    private GrpcTestHost? _host;
    private SwitchingSink _sink = null!;
    private SwitchingAlerts _alerts = null!;
    private GrpcClient? _grpc;

    public static IEnumerable<string> CaseNames() => TamperCorpus.Manifest().Select(c => c.Name);

    [OneTimeSetUp]
    public async Task Start()
    {
        var pki = JournalTestData.M.Pki;
        _dir = pki.PathOf("tamper-" + Guid.NewGuid().ToString("N")[..8]);
        _corpus = Path.Combine(_dir, "corpus");
        TamperCorpus.WriteTo(_corpus);
        _sink = new SwitchingSink();
        _alerts = new SwitchingAlerts();
        var applier = new SyncApplier(_sink, JournalTestData.M.Root, new SyncApplierOptions { Alerts = _alerts });
        _host = await GrpcTestHost.StartSyncAsync(pki, applier);
        _grpc = new GrpcClient(_host.BaseAddress, pki.CertWithKey("factory-F1-sync-client"), pki.Cert("tls-ca"));
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _grpc?.Dispose();
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }
    }

    [Test]
    public void Manifest_lists_exactly_the_generated_cases()
    {
        Assert.That(TamperCorpus.Manifest().Select(c => c.Name), Is.EqualTo(TamperCorpus.Generate().Select(c => c.Name)));
    }

    [TestCaseSource(nameof(CaseNames))]
    public async Task Mirror_rejects_the_case_applies_nothing_and_raises_an_alert(string name)
    {
        var expected = TamperCorpus.Manifest().Single(c => c.Name == name);
        var c = TamperCorpus.Read(_corpus, name);
        var caseDir = Path.Combine(_dir, "data-" + name);
        var config = JournalTestData.M.Pki.PathOf($"mirrorca-tamper-{Path.GetFileName(_dir)}-{name}.json");
        File.WriteAllText(config, File.ReadAllText(JournalTestData.M.Pki.PathOf("mirrorca.json"))
            .Replace("data/mirror", caseDir, StringComparison.Ordinal));
        using var registry = new MirrorRegistry(Path.Combine(caseDir, "registry.sqlite"), TimeProvider.System);
        _sink.Target = registry;
        _alerts.Target = new MirrorAlertStore(registry.DatabasePath);

        if (c.Prefix.Count > 0)
        {
            var ok = await Push(1, c.Prefix);
            Assert.That(ok.AppliedSeq, Is.EqualTo(c.Prefix[^1].Seq), "the honest prefix applies");
        }

        if (c.OtherJournal.Count > 0)
        {
            // Another factory's journal the mirror already holds (as its own sync would have applied it).
            var g = Genesis.Parser.ParseFrom(c.OtherJournal[0].Payload);
            using var tx = registry.BeginApply();
            foreach (var e in c.OtherJournal)
            {
                tx.AddEntry(g.JournalId.Span, e.Seq, e.Hash.Span, (int)e.Type, e.ToByteArray());
            }

            tx.SetJournal(new JournalState(g.JournalId.ToByteArray(), g.FactoryId, g.IssuingCaChain[0].ToByteArray(), g.JournalSignerCertificate.ToByteArray(),
                c.OtherJournal[^1].Seq, c.OtherJournal[^1].Hash.ToByteArray()));
            tx.Commit();
        }

        var before = RegistryDigest.Of(registry.DatabasePath);
        var ex = await GrpcAssert.ThrowsAsync(() => Push(c.FirstSeq, c.Stream));
        var fault = Enum.Parse<JournalFault>(expected.Fault);
        Assert.That(ex.Message, Does.Contain($"journal rejected at seq {expected.Seq}: {expected.Fault}"), ex.Message);
        Assert.That(ex.StatusCode, Is.EqualTo(SyncStatusMapping.CodeFor(SyncRejectedException.FaultFor(fault))), ex.Message);
        Assert.That(RegistryDigest.Of(registry.DatabasePath), Is.EqualTo(before), "a rejected push must apply nothing");
        if (expected.Detail is { } detail)
        {
            foreach (var part in detail.Split('|'))
            {
                Assert.That(ex.Message, Does.Contain(part));
            }
        }

        var summary = $"sync blocked: {expected.Reason ?? SyncApplier.FaultWords(fault)} at seq {expected.Seq} from factory F1";
        var alerts = new MirrorAlertStore(registry.DatabasePath).Recent();
        Assert.That(alerts.Select(a => a.Summary), Is.EqualTo(new[] { summary }));

        using var output = new StringWriter();
        using var error = new StringWriter();
        int exit = MirrorCaCli.Create().Parse(["status", "--config", config]).Invoke(new InvocationConfiguration { Output = output, Error = error });
        Assert.That(exit, Is.Zero, error.ToString());
        Assert.That(output.ToString(), Does.Contain("ALERT ").And.Contain(summary));
    }

    private Task<PushResponse> Push(ulong firstSeq, IReadOnlyList<JournalEntry> entries)
        => _grpc!.ClientStreamingAsync<PushRequest, PushResponse>(JournalSyncClient.PushEntriesPath, Stream(firstSeq, entries), TimeSpan.FromSeconds(30));

    private static async IAsyncEnumerable<PushRequest> Stream(ulong firstSeq, IReadOnlyList<JournalEntry> entries)
    {
        var g = Genesis.Parser.ParseFrom(entries[0].Payload);
        yield return new PushRequest { Metadata = new PushMetadata { JournalId = g.JournalId, FactoryId = "F1", FirstSeq = firstSeq } };
        foreach (var chunk in entries.Chunk(3))
        {
            await Task.Yield();
            var eb = new EntryBatch();
            eb.Entries.AddRange(chunk);
            yield return new PushRequest { Entries = eb };
        }
    }

    private sealed class SwitchingSink : IJournalSink, IKnownJournals
    {
        public MirrorRegistry Target { get; set; } = null!;
        public IReadOnlyList<JournalState> ListJournals() => Target.ListJournals();
        public JournalState? GetJournal(ReadOnlySpan<byte> journalId) => Target.GetJournal(journalId);
        public byte[]? GetEntryHash(ReadOnlySpan<byte> journalId, ulong seq) => Target.GetEntryHash(journalId, seq);
        public IJournalApplyTransaction BeginApply() => Target.BeginApply();
    }

    private sealed class SwitchingAlerts : ISyncAlertSink
    {
        public ISyncAlertSink Target { get; set; } = null!;
        public void Record(SyncAlert alert) => Target.Record(alert);
    }
}
