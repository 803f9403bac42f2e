using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using NUnit.Framework;
using OfflinePki.MirrorCa;
using OfflinePki.Tests.Mirror;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Resilience;

/// <summary>
/// Issue 16 finding 7: the factory's and the mirror's data are private to their user whatever the umask: directories
/// 0700, files (journal, index, registry and their -wal/-shm, receipts, bundles, CRLs, exports) and the control
/// socket 0600.
/// </summary>
[NonParallelizable]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class DataPermissionTests
{
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode PrivateDirectory = Private | UnixFileMode.UserExecute;

    /// <summary>Every directory under (and including) <paramref name="root"/> is 0700, every file and socket 0600.</summary>
    internal static void AssertPrivate(string root)
    {
        var wrong = new List<string>();
        var dirs = new[] { root }.Concat(Directory.EnumerateDirectories(root, "*", SearchOption.AllDirectories));
        foreach (var d in dirs)
        {
            var mode = File.GetUnixFileMode(d);
            if (mode != PrivateDirectory)
            {
                wrong.Add($"{Path.GetRelativePath(root, d)}/ {Convert.ToString((int)mode, 8)}");
            }
        }

        foreach (var f in Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories).Where(p => !Directory.Exists(p)))
        {
            var mode = File.GetUnixFileMode(f);
            if (mode != Private)
            {
                wrong.Add($"{Path.GetRelativePath(root, f)} {Convert.ToString((int)mode, 8)}");
            }
        }

        Assert.That(wrong, Is.Empty, "not private (dirs 0700, files 0600): " + string.Join(", ", wrong));
    }

    [Test]
    public async Task FactoryCa_under_umask_002_keeps_its_data_directory_and_control_socket_private()
    {
        var pki = TestPki.Default;
        string id = Guid.NewGuid().ToString("N")[..8];
        int port = Ports.FreeLoopback();
        var config = JsonNode.Parse(File.ReadAllText(pki.PathOf("factoryca.json")))!;
        var f = config["FactoryCa"]!;
        f["DataDirectory"] = "data/perm-" + id;
        f["Est"]!["Listen"] = $"https://127.0.0.1:{port}";
        f["Sync"]!["Enabled"] = false;
        string configPath = pki.PathOf($"factoryca-perm-{id}.json");
        File.WriteAllText(configPath, config.ToJsonString());
        string data = Path.Combine(Path.GetDirectoryName(configPath)!, "data", "perm-" + id);
        string estBase = $"https://127.0.0.1:{port}/.well-known/est";

        using var client = pki.MtlsClient("station-01");
        using var process = FactoryProcess.Start(configPath, umask: "002");
        try
        {
            await FactoryProcess.WaitReadyAsync(client, estBase, process);
            using var body = new ByteArrayContent(OfflinePki.Tests.Factory.Peers.Base64Body(OfflinePki.Tests.Factory.Peers.P256Csr("PERM-" + id)));
            body.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/pkcs10");
            using var enrolled = await client.PostAsync(estBase + "/simpleenroll", body);
            Assert.That(enrolled.StatusCode, Is.EqualTo(HttpStatusCode.OK), await enrolled.Content.ReadAsStringAsync());
            Assert.That(File.Exists(Path.Combine(data, "control.sock")), Is.True);
            AssertPrivate(data);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    [Test]
    public async Task MirrorCa_keeps_its_registry_and_published_CRLs_private()
    {
        using var bed = new MirrorTestBed();
        string publish = Path.Combine(bed.DataDirectory, "publish");
        await using var app = MirrorCaApp.Build(bed.ConfigPath, new Dictionary<string, string?>
        {
            ["MirrorCa:Http:Listen"] = "http://127.0.0.1:0",
            ["MirrorCa:Sync:Listen"] = "",
            ["MirrorCa:Crl:PublishDirectory"] = publish,
            ["MirrorCa:Crl:PollInterval"] = "00:00:00.200",
        });
        await app.StartAsync();
        bed.Issue();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!File.Exists(Path.Combine(publish, "F1.crl")) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        Assert.That(File.Exists(Path.Combine(publish, "F1.crl")), Is.True);
        var db = bed.Registry.DatabasePath;
        Assert.That(File.Exists(db), Is.True);
        foreach (var path in new[] { db, db + "-wal", db + "-shm" }.Where(File.Exists))
        {
            Assert.That(File.GetUnixFileMode(path), Is.EqualTo(Private), path);
        }

        AssertPrivate(publish);
        await app.StopAsync();
    }
}
