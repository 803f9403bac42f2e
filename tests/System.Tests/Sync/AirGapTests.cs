using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;
using OfflinePki.FactoryCa;
using OfflinePki.Journal;
using OfflinePki.MirrorCa;
using OfflinePki.Sync;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Sync;

/// <summary>
/// Air gap: FactoryCa export (daemon running) → MirrorCa import (CLI) → receipt file → FactoryCa import-receipt. Bundles out
/// of order are held and applied once the gap is filled; re-import is a no-op; a tampered bundle is refused; the registry
/// equals that of a network sync of the same journal.
/// </summary>
[NonParallelizable]
public class AirGapTests
{
    private TestPki _pki = null!;
    private WebApplication _factory = null!;
    private HttpClient _station = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _pki = TestPki.Create("F1");
        _factory = FactoryCaApp.Build(_pki.PathOf("factoryca.json"),
            services => services.PostConfigure<SyncOptions>(o => o.Enabled = false),
            o => o.Est.Listen = "https://127.0.0.1:0");
        await _factory.StartAsync();
        _station = _pki.MtlsClient("station-01");
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _station.Dispose();
        await _factory.StopAsync();
        await _factory.DisposeAsync();
    }

    private async Task Enroll(string prefix, int n)
    {
        for (int i = 0; i < n; i++)
        {
            Assert.That((await SyncTestBed.EnrollAsync(_station, _factory, $"{prefix}-{i}")).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        }
    }

    private static (int Exit, string Output) Mirror(params string[] args)
    {
        var output = new StringWriter();
        int exit = MirrorCaCli.Create().Parse(args).Invoke(new global::System.CommandLine.InvocationConfiguration { Output = output, Error = output });
        return (exit, output.ToString());
    }

    private async Task<ulong> Export(ulong from, string path)
    {
        Assert.That(await ExportCommand.RunAsync(_pki.PathOf("factoryca.json"), from, 0, path, CancellationToken.None), Is.EqualTo(0));
        return _factory.Services.GetRequiredService<JournalWriter>().Head.Seq;
    }

    [Test]
    public async Task Export_import_out_of_order_with_receipts_carried_back_equals_a_network_sync()
    {
        string mirrorConfig = _pki.PathOf("mirrorca.json");
        string registry = Path.Combine(_pki.Directory, "data", "mirror", "registry.sqlite");
        await Enroll("AG-A", 3);
        ulong aLast = await Export(1, _pki.PathOf("a.bundle"));
        await Enroll("AG-B", 2);
        ulong bLast = await Export(aLast + 1, _pki.PathOf("b.bundle"));
        await Enroll("AG-C", 2);
        ulong cLast = await Export(bLast + 1, _pki.PathOf("c.bundle"));

        // C first: held, reported by status, nothing applied.
        var c = Mirror("import", "--config", mirrorConfig, "--in", _pki.PathOf("c.bundle"));
        Assert.That(c.Exit, Is.EqualTo(0), c.Output);
        Assert.That(c.Output, Does.StartWith("HeldPending"));
        Assert.That(c.Output, Does.Contain($"held until seqs 1..{bLast}"));
        var status = Mirror("status", "--config", mirrorConfig);
        Assert.That(status.Output, Does.Contain($"seqs {bLast + 1}..{cLast} held; mirror head 0, missing seqs 1..{bLast}"));

        // A: applied, with a receipt; again: a no-op.
        var a = Mirror("import", "--config", mirrorConfig, "--in", _pki.PathOf("a.bundle"));
        Assert.That(a.Output, Does.StartWith("Applied").And.Contain($"mirror head seq {aLast}"), a.Output);
        Assert.That(File.Exists(_pki.PathOf("a.bundle.receipt")), Is.True);
        string afterA = SyncTestBed.RegistryDigest(registry);
        var again = Mirror("import", "--config", mirrorConfig, "--in", _pki.PathOf("a.bundle"));
        Assert.That(again.Output, Does.StartWith("AlreadyApplied"), again.Output);
        Assert.That(SyncTestBed.RegistryDigest(registry), Is.EqualTo(afterA), "importing the same bundle twice is a no-op");

        // A tampered copy of B is refused, nothing changes.
        var tampered = File.ReadAllBytes(_pki.PathOf("b.bundle"));
        tampered[tampered.Length / 2] ^= 0x10;
        File.WriteAllBytes(_pki.PathOf("bad.bundle"), tampered);
        var bad = Mirror("import", "--config", mirrorConfig, "--in", _pki.PathOf("bad.bundle"));
        Assert.That(bad.Exit, Is.EqualTo(1));
        Assert.That(bad.Output, Does.Contain("bad.bundle"));
        Assert.That(SyncTestBed.RegistryDigest(registry), Is.EqualTo(afterA));

        // B fills the gap: B and the held C are applied; the receipt confirms C's end.
        var b = Mirror("import", "--config", mirrorConfig, "--in", _pki.PathOf("b.bundle"));
        Assert.That(b.Output, Does.StartWith("Applied").And.Contain($"mirror head seq {cLast}"), b.Output);
        Assert.That(Mirror("status", "--config", mirrorConfig).Output, Does.Not.Contain("pending bundle"));

        // The receipts go back: through the running daemon's control socket.
        Assert.That(await ImportReceiptCommand.RunAsync(_pki.PathOf("factoryca.json"), _pki.PathOf("a.bundle.receipt"), CancellationToken.None), Is.EqualTo(0));
        var store = _factory.Services.GetRequiredService<MirrorReceiptStore>();
        Assert.That(store.ConfirmedSeq, Is.EqualTo(aLast));
        Assert.That(await ImportReceiptCommand.RunAsync(_pki.PathOf("factoryca.json"), _pki.PathOf("b.bundle.receipt"), CancellationToken.None), Is.EqualTo(0));
        Assert.That(store.ConfirmedSeq, Is.EqualTo(cLast));
        var forged = File.ReadAllBytes(_pki.PathOf("b.bundle.receipt"));
        forged[^5] ^= 1;
        File.WriteAllBytes(_pki.PathOf("forged.receipt"), forged);
        Assert.That(await ImportReceiptCommand.RunAsync(_pki.PathOf("factoryca.json"), _pki.PathOf("forged.receipt"), CancellationToken.None), Is.EqualTo(1));
        Assert.That(store.ConfirmedSeq, Is.EqualTo(cLast));

        // The same journal over the network into a second, empty mirror gives the same registry.
        string otherData = Path.Combine(_pki.Directory, "data", "mirror-net");
        await using var mirror = MirrorCaApp.Build(mirrorConfig, new Dictionary<string, string?>
        {
            ["MirrorCa:DataDirectory"] = otherData,
            ["MirrorCa:Http:Listen"] = "http://127.0.0.1:0",
            ["MirrorCa:Sync:Listen"] = "https://127.0.0.1:0",
        });
        await mirror.StartAsync();
        string url = mirror.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal)).Replace("127.0.0.1", "localhost", StringComparison.Ordinal);
        var journal = _factory.Services.GetRequiredService<JournalWriter>();
        using var grpc = JournalSyncChannel.Create(new Uri(url), _pki.CertWithKey("factory-F1-sync-client"), _pki.Cert("tls-ca"));
        var net = await new JournalSyncClient(grpc, journal, journal, new SyncOptions()).SyncOnceAsync();
        Assert.That(net.AppliedSeq, Is.EqualTo(cLast), "nothing was journaled after the last export");
        await mirror.StopAsync();
        Assert.That(SyncTestBed.RegistryDigest(Path.Combine(otherData, "registry.sqlite")), Is.EqualTo(SyncTestBed.RegistryDigest(registry)));
    }
}
