using System.Net;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;
using OfflinePki.FactoryCa;
using OfflinePki.MirrorCa;
using OfflinePki.Sync;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Sync;

/// <summary>Air gap with the factory daemon stopped: export reads the journal file, import-receipt writes the receipt file directly.</summary>
[NonParallelizable]
public class AirGapStoppedFactoryTests
{
    [Test]
    public async Task Export_and_import_receipt_work_with_the_daemon_stopped()
    {
        var pki = TestPki.Create("F1");
        string config = pki.PathOf("factoryca.json");
        ulong head;
        await using (var factory = FactoryCaApp.Build(config, services => services.PostConfigure<SyncOptions>(o => o.Enabled = false), o => o.Est.Listen = "https://127.0.0.1:0"))
        {
            await factory.StartAsync();
            using var station = pki.MtlsClient("station-01");
            Assert.That((await SyncTestBed.EnrollAsync(station, factory, "STOPPED-1")).StatusCode, Is.EqualTo(HttpStatusCode.OK));
            await factory.StopAsync();
        }

        // The writer's shutdown checkpoint is the head: a stopped factory exports up to it.
        var reader = OfflinePki.Journal.JournalFileReader.Open(Path.Combine(pki.Directory, "data", "factory-F1", "journal", "journal.log"));
        head = reader.Head.Seq;
        Assert.That(await ExportCommand.RunAsync(config, 1, 0, pki.PathOf("s.bundle"), CancellationToken.None), Is.EqualTo(0));
        Assert.That(await ExportCommand.RunAsync(config, 5, 2, pki.PathOf("x.bundle"), CancellationToken.None), Is.EqualTo(1), "an empty range is refused");
        Assert.That(File.Exists(pki.PathOf("x.bundle")), Is.False);

        var output = new StringWriter();
        int exit = MirrorCaCli.Create().Parse(["import", "--config", pki.PathOf("mirrorca.json"), "--in", pki.PathOf("s.bundle"), "--receipt-out", pki.PathOf("s.receipt")])
            .Invoke(new global::System.CommandLine.InvocationConfiguration { Output = output, Error = output });
        Assert.That(exit, Is.EqualTo(0), output.ToString());
        Assert.That(output.ToString(), Does.Contain($"mirror head seq {head}"));

        Assert.That(await ImportReceiptCommand.RunAsync(config, pki.PathOf("s.receipt"), CancellationToken.None), Is.EqualTo(0));
        var store = new MirrorReceiptStore(Path.Combine(pki.Directory, "data", "factory-F1", MirrorReceiptStore.FileName));
        Assert.That(store.ConfirmedSeq, Is.EqualTo(head));
    }
}
