using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using NUnit.Framework;
using OfflinePki.FactoryCa;
using OfflinePki.Journal;
using OfflinePki.MirrorCa;
using OfflinePki.Registry;
using OfflinePki.Sync;
using OfflinePki.Sync.Grpc;
using OfflinePki.Sync.V1;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Sync;

/// <summary>
/// Whole system with two factories (F1, F2; ops/dev-pki.sh run twice into one directory) syncing into one mirror over
/// gRPC/mTLS: receipts come back to each, a factory's client may not push the other's journal, and F2's line stops
/// (EST 503) once too much is unconfirmed, and restarts after a sync.
/// </summary>
[NonParallelizable]
public class ManyFactoriesTests
{
    private TestPki _pki = null!;
    private WebApplication _mirror = null!;
    private WebApplication _f1 = null!;
    private WebApplication _f2 = null!;
    private string _mirrorSync = null!;
    private HttpClient _station = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _pki = TestPki.Create("F1");
        Tool.Run("bash", [Path.Combine(TestPki.RepoRoot, "ops", "dev-pki.sh"), _pki.Directory, "--factory", "F2"]).EnsureSuccess("ops/dev-pki.sh --factory F2");
        _mirror = MirrorCaApp.Build(_pki.PathOf("mirrorca.json"), new Dictionary<string, string?>
        {
            ["MirrorCa:Http:Listen"] = "http://127.0.0.1:0",
            ["MirrorCa:Sync:Listen"] = "https://127.0.0.1:0",
        });
        await _mirror.StartAsync();
        _mirrorSync = _mirror.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal)).Replace("127.0.0.1", "localhost", StringComparison.Ordinal);
        _f1 = await StartFactory("factoryca.json", null);
        _f2 = await StartFactory("factoryca-F2.json", o =>
        {
            o.Divergence.Mode = DivergenceMode.StopTheLine;
            o.Divergence.MaxUnconfirmedEntries = 4;
        });

        _station = _pki.MtlsClient("station-01");
    }

    private async Task<WebApplication> StartFactory(string config, Action<FactoryCaOptions>? configure)
    {
        var app = FactoryCaApp.Build(_pki.PathOf(config),
            services => services.PostConfigure<SyncOptions>(o =>
            {
                o.MirrorUrl = _mirrorSync;
                o.Enabled = false;
            }),
            o =>
            {
                o.Est.Listen = "https://127.0.0.1:0";
                configure?.Invoke(o);
            });
        await app.StartAsync();
        return app;
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _station.Dispose();
        foreach (var app in new[] { _f1, _f2, _mirror })
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [Test]
    public async Task Two_factories_sync_into_one_mirror_each_only_its_own_journal_and_F2s_line_stops_until_confirmed()
    {
        for (int i = 0; i < 3; i++)
        {
            Assert.That((await Enroll(_f1, $"F1-DEV-{i}")).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        }

        // F2 stops the line once more than 4 entries lack a receipt: EST 503 with the reason; nothing issued.
        HttpResponseMessage? stopped = null;
        int issuedOnF2 = 0;
        for (int i = 0; i < 8 && stopped is null; i++)
        {
            var r = await Enroll(_f2, $"F2-DEV-{i}");
            if (r.StatusCode == HttpStatusCode.OK)
            {
                issuedOnF2++;
            }
            else
            {
                stopped = r;
            }
        }

        Assert.That(stopped, Is.Not.Null, "F2 must stop the line");
        Assert.That(stopped!.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        string reason = await stopped.Content.ReadAsStringAsync();
        Assert.That(reason, Does.Contain("line stopped: 5 journal entries (certificates) not yet confirmed by the mirror"));
        var f2Journal = _f2.Services.GetRequiredService<JournalWriter>();
        var headWhenStopped = f2Journal.Head.Seq;
        Assert.That((await Enroll(_f2, "F2-REFUSED")).StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        Assert.That(f2Journal.Head.Seq, Is.EqualTo(headWhenStopped), "a stopped line journals nothing");
        var status = await Status(_f2, "factoryca-F2.json");
        Assert.That(status.GetProperty("divergence").GetProperty("lineStopped").GetBoolean(), Is.True);
        Assert.That(status.GetProperty("divergence").GetProperty("unconfirmedEntries").GetUInt64(), Is.EqualTo(5UL));

        // Both sync; each gets its receipt; the mirror holds two journals.
        var r1 = await _f1.Services.GetRequiredService<JournalSyncClient>().SyncOnceAsync();
        var r2 = await _f2.Services.GetRequiredService<JournalSyncClient>().SyncOnceAsync();
        Assert.That(_f1.Services.GetRequiredService<MirrorReceiptStore>().ConfirmedSeq, Is.EqualTo(r1.AppliedSeq));
        Assert.That(_f2.Services.GetRequiredService<MirrorReceiptStore>().ConfirmedSeq, Is.EqualTo(r2.AppliedSeq));
        var registry = _mirror.Services.GetRequiredService<MirrorRegistry>();
        var summary = registry.GetSummary();
        Assert.That(summary.Factories.Select(f => (f.FactoryId, f.Certificates)), Is.EqualTo(new[] { ("F1", 3L), ("F2", (long)issuedOnF2) }));
        Assert.That(summary.Factories.Select(f => f.IssuerKeyHashHex).Distinct().Count(), Is.EqualTo(2), "each factory has its own issuing CA");
        status = await Status(_f2, "factoryca-F2.json");
        Assert.That(status.GetProperty("divergence").GetProperty("lineStopped").GetBoolean(), Is.False);
        Assert.That((await Enroll(_f2, "F2-AFTER-SYNC")).StatusCode, Is.EqualTo(HttpStatusCode.OK), "the line restarts once confirmed");

        // F2's sync client pushes F1's journal: refused, whether it names F1 or claims it as F2's.
        var f1Journal = _f1.Services.GetRequiredService<JournalWriter>();
        using var f2Grpc = new GrpcClient(new Uri(_mirrorSync), _pki.CertWithKey("factory-F2-sync-client"), _pki.Cert("tls-ca"));
        var stolen = new JournalSyncClient(f2Grpc, f1Journal, f1Journal, new SyncOptions());
        var denied = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => stolen.SyncOnceAsync());
        Assert.That(denied!.StatusCode, Is.EqualTo(GrpcStatusCode.PermissionDenied));
        Assert.That(denied.Status.Detail, Does.Contain("may not push journal of factory F1"));

        var before = registry.GetSummary();
        var batch = new EntryBatch();
        batch.Entries.AddRange(f1Journal.ReadFrom(1).Take(10));
        var disguised = await Assert.ThrowsAsync<GrpcException>(() => f2Grpc.ClientStreamingAsync<PushRequest, PushResponse>(JournalSyncClient.PushEntriesPath,
            Messages(new PushRequest { Metadata = new PushMetadata { JournalId = ByteString.CopyFrom(f1Journal.Anchor.JournalId), FactoryId = "F2", FirstSeq = 1 } },
                new PushRequest { Entries = batch }),
            TimeSpan.FromSeconds(10), CancellationToken.None));
        Assert.That(disguised!.StatusCode, Is.EqualTo(GrpcStatusCode.PermissionDenied));
        Assert.That(registry.GetSummary(), Is.EqualTo(before).Using<RegistrySummary>((a, b) => a.Factories.SequenceEqual(b.Factories)), "nothing applied");
    }

    private static async IAsyncEnumerable<PushRequest> Messages(params PushRequest[] messages)
    {
        foreach (var m in messages)
        {
            yield return m;
            await Task.Yield();
        }
    }

    private async Task<JsonElement> Status(WebApplication factory, string config)
    {
        var dataDir = factory.Services.GetRequiredService<IOptions<FactoryCaOptions>>().Value.DataDirectory;
        using var client = ControlEndpoints.CreateClient(dataDir);
        var json = await client.GetStringAsync("control/status");
        Assert.That(config, Is.Not.Empty);
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    private Task<HttpResponseMessage> Enroll(WebApplication factory, string deviceId) => SyncTestBed.EnrollAsync(_station, factory, deviceId);
}
