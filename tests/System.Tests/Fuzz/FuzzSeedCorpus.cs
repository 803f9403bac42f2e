using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Station;
using OfflinePki.Sync;
using OfflinePki.Tests.Journal;
using OfflinePki.Tests.Orders;
using OfflinePki.Tests.Resilience;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Fuzz;

/// <summary>
/// Regenerates the committed seed corpora under fuzz/corpus/TARGET from real product output (journal writer, export
/// bundle writer, openssl ocsp -reqout, ops/sign-order.sh, the device protocol encoder, ops/config samples) and the
/// public trust anchor fuzz/fixtures/root-ca.crt. Explicit: run it by hand
/// (dotnet test tests/OfflinePki.Tests -c Release --filter FullyQualifiedName~FuzzSeedCorpus), then commit the corpus.
/// No private key is written: device and CSR keys are ephemeral and the test PKI's keys stay in its directory.
/// </summary>
[TestFixture]
[Explicit("regenerates fuzz/corpus; run by hand")]
public sealed class FuzzSeedCorpus
{
    private static string Corpus(string target)
    {
        var dir = Path.Combine(TestPki.RepoRoot, "fuzz", "corpus", target);
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }

        Directory.CreateDirectory(dir);
        return dir;
    }

    [Test]
    public async Task Generate()
    {
        var m = JournalTestData.M;
        File.WriteAllText(Path.Combine(TestPki.RepoRoot, "fuzz", "fixtures", "root-ca.crt"), m.Root.ExportCertificatePem() + "\n");
        var work = Path.Combine(Path.GetTempPath(), "offlinepki-tests", "fuzz-seed-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(work);

        // est: the CSR test vectors plus fresh valid requests (base64 and PEM).
        var est = Corpus("est");
        foreach (var f in Directory.GetFiles(Path.Combine(TestPki.RepoRoot, "tests", "OfflinePki.Tests", "testdata", "factory", "csr"), "*.b64"))
        {
            File.Copy(f, Path.Combine(est, Path.GetFileName(f)));
        }

        using (var p256 = ECDsa.Create(ECCurve.NamedCurves.nistP256))
        using (var rsa = RSA.Create(2048))
        {
            var ec = new CertificateRequest("CN=DEV-0001, SERIALNUMBER=DEV-0001, O=OfflinePki dev", p256, HashAlgorithmName.SHA256);
            File.WriteAllText(Path.Combine(est, "valid-p256.b64"), Convert.ToBase64String(ec.CreateSigningRequest(), Base64FormattingOptions.InsertLineBreaks));
            File.WriteAllText(Path.Combine(est, "valid-p256.pem"), ec.CreateSigningRequestPem());
            var r = new CertificateRequest("CN=DEV-0002, SERIALNUMBER=DEV-0002", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            File.WriteAllText(Path.Combine(est, "valid-rsa.b64"), Convert.ToBase64String(r.CreateSigningRequest()));
        }

        // ocsp-post / ocsp-get: requests from openssl ocsp -reqout for a real device certificate.
        string issuer = Path.Combine(work, "issuer.crt"), device = Path.Combine(work, "device.crt"), device2 = Path.Combine(work, "device2.crt");
        File.WriteAllText(issuer, m.IssuingCa.ExportCertificatePem());
        File.WriteAllText(device, PemEncoding.WriteString("CERTIFICATE", m.DeviceCertificate("OCSP-0001")));
        File.WriteAllText(device2, PemEncoding.WriteString("CERTIFICATE", m.DeviceCertificate("OCSP-0002")));
        var post = Corpus("ocsp-post");
        var get = Corpus("ocsp-get");
        var variants = new (string Name, string[] Args)[]
        {
            ("nonce", ["-cert", device]),
            ("no-nonce", ["-cert", device, "-no_nonce"]),
            ("two-certs", ["-cert", device, "-cert", device2]),
            ("sha256-certid", ["-sha256", "-cert", device, "-no_nonce"]),
            ("serial", ["-serial", "0x1000FFFF", "-no_nonce"]),
        };
        foreach (var (name, args) in variants)
        {
            var output = Path.Combine(post, name + ".der");
            Tool.OpenSsl(["ocsp", "-issuer", issuer, .. args, "-reqout", output]).EnsureSuccess("openssl ocsp -reqout");
            var b64 = Convert.ToBase64String(File.ReadAllBytes(output));
            File.WriteAllText(Path.Combine(get, name + ".txt"), Uri.EscapeDataString(b64));
            File.WriteAllText(Path.Combine(get, name + "-raw.txt"), b64);
        }

        // journal-file, journal-codec, export-bundle, sync-push: a real journal with every common entry type.
        var jdir = Path.Combine(work, "journal");
        Directory.CreateDirectory(jdir);
        var options = new JournalWriterOptions { Directory = jdir, CheckpointEveryEntries = 4, CheckpointInterval = TimeSpan.FromHours(1) };
        var file = Path.Combine(jdir, JournalFileFormat.FileName);
        await using (var writer = await JournalWriter.OpenOrCreateAsync(options, m.SignerKey, m.SignerCert,
            new GenesisParameters("F1", [m.IssuingCa.RawData], new byte[32]), TimeProvider.System, NullLogger.Instance, FileJournalStorage.Open(file)))
        {
            await writer.AppendAsync(EntryType.BatchEvent, new BatchEvent { BatchId = "B-1", Event = "opened", Detail = "seed" });
            await writer.AppendAsync(EntryType.CertificateIssued, CutLinkTests.Certificate(m, "SEED-0001"));
            await writer.AppendAsync(EntryType.EnrollmentRefused, new EnrollmentRefused { StationId = "st-1", DeviceId = "SEED-0002", Reason = "bad signature", Code = "BadSignature", CsrSha256 = ByteString.CopyFrom(new byte[32]) });
            await writer.AppendAsync(EntryType.CertificateIssued, CutLinkTests.Certificate(m, "SEED-0003"));
            await writer.CheckpointAsync();
            await writer.AppendAsync(EntryType.BatchEvent, new BatchEvent { BatchId = "B-1", Event = "closed" });
            await writer.CheckpointAsync();

            var codec = Corpus("journal-codec");
            foreach (var e in writer.ReadFrom(1))
            {
                File.WriteAllBytes(Path.Combine(codec, $"seq-{e.Seq:D3}-{e.Type}.bin"), e.ToByteArray());
            }

            var bundles = Corpus("export-bundle");
            var push = Corpus("sync-push");
            foreach (var (from, name) in new (ulong, string)[] { (1, "full"), (3, "from-3") })
            {
                var bundle = Path.Combine(bundles, name + ".bundle");
                await using (var output = File.Create(bundle))
                {
                    ExportBundleWriter.Write(writer, from, 0, m.SignerKey, m.SignerCert.RawData, output, TimeProvider.System);
                }

                using var stream = new MemoryStream();
                await foreach (var request in ExportBundleFile.Open(bundle).AsPushStream())
                {
                    request.WriteDelimitedTo(stream);
                }

                File.WriteAllBytes(Path.Combine(push, name + ".push"), stream.ToArray());
            }
        }

        var journalFiles = Corpus("journal-file");
        File.Copy(file, Path.Combine(journalFiles, "journal.bin"));
        var bytes = File.ReadAllBytes(file);
        File.WriteAllBytes(Path.Combine(journalFiles, "torn-tail.bin"), bytes[..^7]);

        // order-cms / order-json: a real signed order (ops/sign-order.sh) and its JSON.
        var orderJson = OrderFiles.Json("PO-SEED-1", 25, "F1");
        var cms = Corpus("order-cms");
        File.WriteAllBytes(Path.Combine(cms, "signed.p7"), OrderFiles.Sign(m.Pki, orderJson.DeepClone().AsObject()));
        var json = Corpus("order-json");
        File.WriteAllText(Path.Combine(json, "order.json"), orderJson.ToJsonString());
        var ranged = OrderFiles.Json("PO-SEED-2");
        ranged["deviceIds"] = new System.Text.Json.Nodes.JsonObject { ["pattern"] = "^SEED-[0-9]{4}$" };
        File.WriteAllText(Path.Combine(json, "order-pattern.json"), ranged.ToJsonString());

        // device-lines: the station's requests and a device's answers, as the encoder writes them.
        using var deviceKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest("CN=DEV-0009, SERIALNUMBER=DEV-0009", deviceKey, HashAlgorithmName.SHA256).CreateSigningRequest();
        var lines = new[]
        {
            DeviceProtocol.Encode(new DeviceRequest { Op = DeviceProtocol.Ops.Info }),
            DeviceProtocol.Encode(new DeviceResponse { Ok = true, DeviceId = "DEV-0009", Mac = "02:00:00:00:00:09", Firmware = "1.2.3", Protocol = 1, Locked = false }),
            DeviceProtocol.Encode(new DeviceRequest { Op = DeviceProtocol.Ops.Csr, Profile = "idevid" }),
            DeviceProtocol.Encode(new DeviceResponse { Ok = true, Csr = Convert.ToBase64String(csr) }),
            DeviceProtocol.Encode(new DeviceRequest { Op = DeviceProtocol.Ops.Write, Profile = "idevid", Certificate = Convert.ToBase64String(m.DeviceCertificate("DEV-0009")), Chain = [Convert.ToBase64String(m.IssuingCa.RawData)] }),
            DeviceProtocol.Encode(new DeviceRequest { Op = DeviceProtocol.Ops.Sign, Challenge = Convert.ToBase64String(new byte[32]) }),
            DeviceProtocol.Encode(new DeviceResponse { Ok = true, Signature = Convert.ToBase64String(deviceKey.SignData(new byte[32], HashAlgorithmName.SHA256)) }),
            DeviceProtocol.Encode(DeviceResponse.Fail("locked")),
        };
        var dev = Corpus("device-lines");
        File.WriteAllText(Path.Combine(dev, "session.jsonl"), string.Join('\n', lines) + "\n");
        for (int i = 0; i < lines.Length; i++)
        {
            File.WriteAllText(Path.Combine(dev, $"line-{i}.jsonl"), lines[i] + "\n");
        }

        // config: the shipped sample configurations.
        var config = Corpus("config");
        foreach (var f in Directory.GetFiles(Path.Combine(TestPki.RepoRoot, "ops", "config"), "*.json"))
        {
            File.Copy(f, Path.Combine(config, Path.GetFileName(f)));
        }

        foreach (var f in Directory.GetFiles(Path.Combine(TestPki.RepoRoot, "fuzz", "corpus"), "*", SearchOption.AllDirectories))
        {
            Assert.That(Path.GetExtension(f), Is.Not.AnyOf(".key", ".p12", ".pfx"), f);
            Assert.That(File.ReadAllText(f, Encoding.Latin1), Does.Not.Contain("PRIVATE KEY"), f);
        }

        Directory.Delete(work, recursive: true);
    }
}
