using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using NUnit.Framework;
using OfflinePki.FactoryCa;
using OfflinePki.Tests.Factory;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Hsm;

/// <summary>
/// The PKCS#11 module file disappears under a running FactoryCa (a child process, since one process loads one
/// module): the daemon reports unready naming FactoryCa:IssuingCa:Key:Module, EST answers 503 with that reason, nothing
/// is issued, and when the file is back service resumes without a restart. The module is a copy of libsofthsm2.so in a
/// temporary directory, moved away and back as an operator's package upgrade or a wrong cleanup would.
/// </summary>
[NonParallelizable]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class ModuleGoneTests
{
    [Test]
    public async Task A_module_file_that_goes_away_is_unready_and_503_until_it_is_back()
    {
        var pki = TestPki.Default;
        string id = Guid.NewGuid().ToString("N")[..8];
        string moduleDir = Path.Combine(SoftHsm.Directory, "module-" + id);
        Directory.CreateDirectory(moduleDir);
        string module = Path.Combine(moduleDir, "libsofthsm2.so");
        File.Copy(SoftHsm.Module, module);
        string pinFile = SoftHsm.PinFile(SoftHsm.Pin);

        int port = FreePort();
        string dataDir = "data/module-gone-" + id;
        var config = JsonNode.Parse(File.ReadAllText(pki.PathOf("factoryca.json")))!;
        var f = config["FactoryCa"]!;
        f["DataDirectory"] = dataDir;
        f["Est"]!["Listen"] = $"https://127.0.0.1:{port}";
        f["Sync"]!["Enabled"] = false;
        f["IssuingCa"]!["Key"] = new JsonObject
        {
            ["Pkcs11Uri"] = $"pkcs11:token={SoftHsm.FactoryToken};object=issuing-ca;type=private",
            ["Module"] = module,
            ["PinFile"] = pinFile,
        };
        string configPath = pki.PathOf($"factoryca-module-{id}.json");
        File.WriteAllText(configPath, config.ToJsonString());
        string estBase = $"https://127.0.0.1:{port}/.well-known/est";

        using var handler = new HttpClientHandler
        {
            ClientCertificateOptions = ClientCertificateOption.Manual,
            ServerCertificateCustomValidationCallback = (_, _, _, _) => true,
        };
        handler.ClientCertificates.Add(pki.CertWithKey("station-02"));
        using var est = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(20) };
        using var control = ControlEndpoints.CreateClient(Path.Combine(Path.GetDirectoryName(configPath)!, dataDir));
        using var process = FactoryProcess.Start(configPath);
        try
        {
            await FactoryProcess.WaitReadyAsync(est, estBase, process);
            using (var ok = await Enroll(est, estBase, "DEV-M001"))
            {
                Assert.That((int)ok.StatusCode, Is.EqualTo(200), await ok.Content.ReadAsStringAsync());
            }

            long issued = Issued(await Status(control));
            File.Move(module, module + ".away");
            try
            {
                var status = await Status(control);
                Assert.That(status.GetProperty("ready").GetBoolean(), Is.False);
                var key = status.GetProperty("keys").EnumerateArray().Single(k => k.GetProperty("configKey").GetString() == "FactoryCa:IssuingCa:Key");
                Assert.That(key.GetProperty("reason").GetString(), Does.StartWith($"FactoryCa:IssuingCa:Key:Module: PKCS#11 module '{module}' not found"));

                string lastBody = string.Empty;
                for (int i = 0; i < 2; i++)
                {
                    using var refused = await Enroll(est, estBase, "DEV-M00" + (2 + i));
                    Assert.That((int)refused.StatusCode, Is.EqualTo(503));
                    lastBody = await refused.Content.ReadAsStringAsync();
                    Assert.That(lastBody, Does.Contain("FactoryCa:IssuingCa:Key").And.Not.Contain(SoftHsm.Pin));
                }

                Assert.That(lastBody, Does.Contain($"FactoryCa:IssuingCa:Key:Module: PKCS#11 module '{module}' not found"));
                Assert.That(Issued(await Status(control)), Is.EqualTo(issued), "nothing issued while the module is gone");
            }
            finally
            {
                File.Move(module + ".away", module);
            }

            // The key reopens within its retry backoff (1 s doubling); poll the status as an operator would.
            var watch = Stopwatch.StartNew();
            JsonElement back;
            do
            {
                await Task.Delay(200);
                back = await Status(control);
            }
            while (!back.GetProperty("ready").GetBoolean() && watch.Elapsed < TimeSpan.FromSeconds(60));

            Assert.That(back.GetProperty("ready").GetBoolean(), Is.True, back.ToString());
            using var again = await Enroll(est, estBase, "DEV-M004");
            Assert.That((int)again.StatusCode, Is.EqualTo(200), "resumes without a restart: " + await again.Content.ReadAsStringAsync());
            Assert.That(Issued(await Status(control)), Is.EqualTo(issued + 1));
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    // The journal head (the truth; the index catches up behind it); no checkpoint is due within this test (1000 entries or 5 min).
    private static long Issued(JsonElement status) => status.GetProperty("journal").GetProperty("headSeq").GetInt64();

    private static async Task<JsonElement> Status(HttpClient control)
    {
        string json = await control.GetStringAsync(new Uri("control/status", UriKind.Relative));
        Assert.That(json, Does.Not.Contain(SoftHsm.Pin));
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    private static async Task<HttpResponseMessage> Enroll(HttpClient client, string estBase, string deviceId)
    {
        var content = new ByteArrayContent(Peers.Base64Body(Peers.P256Csr(deviceId)));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/pkcs10");
        return await client.PostAsync(estBase + "/simpleenroll", content);
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}
