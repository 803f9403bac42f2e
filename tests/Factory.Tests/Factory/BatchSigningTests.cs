using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;
using OfflinePki.FactoryCa;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Orders;
using OfflinePki.Policy;
using OfflinePki.Tests.Orders;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Factory;

/// <summary>
/// <c>FactoryCa sign-batch</c>, run as the real CLI (<c>dotnet FactoryCa.dll</c>) over folders of openssl-made CSRs:
/// certificates checked with <c>openssl verify</c>, reports parsed with python3's csv module, the journal read back.
/// </summary>
[NonParallelizable]
public class BatchSigningTests
{
    private const string Operator = "op-7";
    private TestPki _pki = null!;

    [OneTimeSetUp]
    public void Setup() => _pki = TestPki.Default;

    /// <summary>A config with its own data directory and sync off.</summary>
    private string Config(string? checkDigit = null)
    {
        string id = Guid.NewGuid().ToString("N")[..8];
        var config = JsonNode.Parse(File.ReadAllText(_pki.PathOf("factoryca.json")))!;
        config["FactoryCa"]!["DataDirectory"] = "data/batch-" + id;
        config["FactoryCa"]!["Sync"]!["Enabled"] = false;
        if (checkDigit is not null)
        {
            config["FactoryCa"]!["Profile"]!["DeviceIdCheckDigit"] = checkDigit;
        }

        string path = _pki.PathOf($"factoryca-batch-{id}.json");
        File.WriteAllText(path, config.ToJsonString());
        return path;
    }

    /// <summary>Accepts an order offline, as import-order does through the daemon (OrderBook.AcceptAsync, journaled OrderAccepted).</summary>
    private async Task ImportAsync(string config, string orderId, long quantity, string? pattern = null)
    {
        await using var app = FactoryCaApp.Build(config);
        var json = OrderFiles.Json(orderId, quantity);
        if (pattern is not null)
        {
            json["deviceIds"] = new JsonObject { ["pattern"] = pattern };
        }

        var r = await app.Services.GetRequiredService<OrderBook>().AcceptAsync(OrderFiles.Sign(_pki, json), "file", CancellationToken.None);
        Assert.That(r.Accepted, Is.True);
    }

    private static string JournalPath(string config)
    {
        var data = JsonNode.Parse(File.ReadAllText(config))!["FactoryCa"]!["DataDirectory"]!.GetValue<string>();
        return Path.Combine(Path.GetDirectoryName(config)!, data, "journal", "journal.log");
    }

    private static List<JournalEntry> Entries(string config) => JournalFileReader.Open(JournalPath(config)).ReadFrom(1).ToList();

    private static List<CertificateIssued> Issued(string config) => Entries(config)
        .Where(e => e.Type == EntryType.CertificateIssued).Select(e => CertificateIssued.Parser.ParseFrom(e.Payload)).ToList();

    private static Tool.Result SignBatch(string config, string order, string dir, string output, params string[] extra) =>
        Tool.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "FactoryCa.dll"), "sign-batch", "--config", config, "--order", order,
            "--csr-dir", dir, "--out", output, .. extra]);

    private static string NewDir()
    {
        string d = Peers.NewPath("-dir");
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>An openssl P-256 key file.</summary>
    private static string NewKey()
    {
        string key = Peers.NewPath(".key");
        Tool.OpenSsl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key).EnsureSuccess("genpkey");
        return key;
    }

    /// <summary>openssl req -new with <paramref name="key"/> for <paramref name="deviceId"/>, PEM or DER, written to dir/name; returns the DER.</summary>
    private static byte[] WriteCsr(string dir, string name, string deviceId, string key, bool der)
    {
        string path = Path.Combine(dir, name);
        Tool.OpenSsl("req", "-new", "-key", key, "-subj", $"/serialNumber={deviceId}/CN=x", "-outform", der ? "DER" : "PEM", "-out", path).EnsureSuccess("openssl req");
        return der ? File.ReadAllBytes(path) : Convert.FromBase64String(string.Concat(File.ReadAllLines(path).Where(l => !l.StartsWith("-----", StringComparison.Ordinal))));
    }

    /// <summary>python3's csv module reads the file: a list of rows, each a list of fields.</summary>
    private static List<string[]> PythonCsv(string path)
    {
        var r = Tool.Run("/usr/bin/python3", ["-c", "import csv,json,sys; print(json.dumps(list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8')))))", path])
            .EnsureSuccess("python3 csv");
        return JsonSerializer.Deserialize<List<string[]>>(r.StdOut)!;
    }

    [Test]
    public async Task Import_order_with_the_daemon_stopped_journals_it_once_and_a_tampered_order_changes_nothing()
    {
        string config = Config();
        await using (FactoryCaApp.Build(config))
        {
            // genesis only: the journal exists, no daemon runs afterwards
        }

        string good = Peers.NewPath(".p7"), bad = Peers.NewPath(".p7");
        File.WriteAllBytes(good, OrderFiles.Sign(_pki, OrderFiles.Json("PO-OFFLINE", 7)));
        var tampered = OrderFiles.Sign(_pki, OrderFiles.Json("PO-TAMPERED", 7));
        tampered[tampered.Length / 2] ^= 0x01;
        File.WriteAllBytes(bad, tampered);

        Assert.That(await ImportOrderCommand.RunAsync(config, good, CancellationToken.None), Is.Zero);
        Assert.That(await ImportOrderCommand.RunAsync(config, good, CancellationToken.None), Is.Zero, "a second import is a no-op");
        byte[] before = File.ReadAllBytes(JournalPath(config));
        Assert.That(await ImportOrderCommand.RunAsync(config, bad, CancellationToken.None), Is.EqualTo(1));
        Assert.That(File.ReadAllBytes(JournalPath(config)), Is.EqualTo(before), "a refused order journals nothing");

        Assert.That(Entries(config).Count(e => e.Type == EntryType.OrderAccepted), Is.EqualTo(1));
        await using var app = FactoryCaApp.Build(config);
        Assert.That(app.Services.GetRequiredService<OrderBook>().StatusOf("PO-OFFLINE")?.Order.Quantity, Is.EqualTo(7));
    }

    [Test]
    public async Task A_folder_of_pem_and_der_csrs_is_signed_under_the_order_and_a_rerun_issues_nothing_twice()
    {
        string config = Config();
        await ImportAsync(config, "PO-BATCH-1", 10);
        string dir = NewDir(), output = NewDir();
        var csrs = new Dictionary<string, (string Device, byte[] Der)>
        {
            ["a-unit"] = ("ORD-00001", WriteCsr(dir, "a-unit.csr", "ORD-00001", NewKey(), der: false)),
            ["b-unit"] = ("ORD-00002", WriteCsr(dir, "b-unit.der", "ORD-00002", NewKey(), der: true)),
            ["c-unit"] = ("ORD-00003", WriteCsr(dir, "c-unit.req", "ORD-00003", NewKey(), der: true)),
            ["d-unit"] = ("ORD-00004", WriteCsr(dir, "d-unit.pem", "ORD-00004", NewKey(), der: false)),
        };
        File.WriteAllText(Path.Combine(dir, "notes.txt"), "not a CSR: ignored");

        var run = SignBatch(config, "PO-BATCH-1", dir, output, "--operator", Operator);
        Assert.That(run.ExitCode, Is.Zero, run.StdOut + run.StdErr);
        Assert.That(run.StdOut, Does.Contain("issued 4, already issued 0, refused 0, order remaining quantity 6"));

        // Every certificate verifies with openssl against the root, through chain.pem (issuing CA, then the root).
        string chain = Path.Combine(output, "chain.pem");
        var chainCerts = PemCerts(File.ReadAllText(chain));
        Assert.That(chainCerts, Has.Count.EqualTo(2));
        Assert.That(chainCerts[0], Is.EqualTo(_pki.Cert("issuing-ca-F1").RawData));
        Assert.That(chainCerts[1], Is.EqualTo(_pki.Root.RawData));
        var firstRun = new Dictionary<string, byte[]>();
        foreach (var name in csrs.Keys)
        {
            string crt = Path.Combine(output, name + ".crt");
            Tool.OpenSsl("verify", "-CAfile", _pki.PathOf("root-ca.crt"), "-untrusted", chain, crt).EnsureSuccess("openssl verify " + name);
            firstRun[name] = File.ReadAllBytes(crt);

            // BouncyCastle agrees: it verifies the signature and reads the device ID and the CSR's key.
            using var issuingCa = _pki.Cert("issuing-ca-F1");
            var bc = BouncyOracle.CertificatePem(crt, issuingCa);
            Assert.That(BouncyOracle.SubjectValues(bc, "2.5.4.5"), Is.EqualTo(new[] { csrs[name].Device }), name);
            var csrKey = System.Security.Cryptography.X509Certificates.CertificateRequest.LoadSigningRequest(csrs[name].Der,
                System.Security.Cryptography.HashAlgorithmName.SHA256).PublicKey.ExportSubjectPublicKeyInfo();
            Assert.That(bc.SubjectPublicKeyInfo.GetEncoded(), Is.EqualTo(csrKey), name + ": the certified key is the CSR's");
        }

        Assert.That(Directory.GetFiles(output, "*.tmp"), Is.Empty, "temporary files are renamed");

        // The journal holds them under the order, station batch-signer, the operator and each CSR's hash.
        var issued = Issued(config);
        Assert.That(issued.Select(i => i.DeviceId), Is.EquivalentTo(csrs.Values.Select(c => c.Device)));
        foreach (var i in issued)
        {
            Assert.That(i.BatchId, Is.EqualTo("PO-BATCH-1"));
            Assert.That(i.StationId, Is.EqualTo(BatchSigner.StationId));
            Assert.That(i.OperatorId, Is.EqualTo(Operator));
            var csr = csrs.Values.Single(c => c.Device == i.DeviceId);
            Assert.That(i.CsrSha256.ToByteArray(), Is.EqualTo(SHA256.HashData(csr.Der)));
        }

        // The batch report CSV, read by python3, matches the journal; refused.csv is only its header.
        var rows = PythonCsv(Path.Combine(output, "batch-report.csv"));
        Assert.That(string.Join(',', rows[0]), Is.EqualTo(BatchReport.CsvHeader));
        Assert.That(rows, Has.Count.EqualTo(5));
        foreach (var row in rows.Skip(1))
        {
            var i = issued.Single(x => x.DeviceId == row[0]);
            using var cert = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(i.Certificate.ToByteArray());
            Assert.That(row[1], Is.EqualTo(cert.SerialNumber));
            Assert.That(row[2], Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(i.Certificate.Span))));
            Assert.That(row[3], Is.Empty, "no MAC in a batch");
            Assert.That(row[4..], Is.EqualTo(new[] { BatchSigner.StationId, Operator, row[6], "initial" }));
            Assert.That(DateTimeOffset.Parse(row[6], System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(DateTimeOffset.UtcNow.AddHours(-1)));
        }

        using (var json = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(output, "batch-report.json"))))
        {
            Assert.That(json.RootElement.GetProperty("orderId").GetString(), Is.EqualTo("PO-BATCH-1"));
            Assert.That(json.RootElement.GetProperty("count").GetInt32(), Is.EqualTo(4));
        }

        Assert.That(PythonCsv(Path.Combine(output, "refused.csv")), Has.Count.EqualTo(1));

        // Re-run (e.g. after a crash): nothing new is journaled, the same certificates are written again.
        int entries = Entries(config).Count(e => e.Type != EntryType.Checkpoint);
        foreach (var f in Directory.GetFiles(output))
        {
            File.Delete(f);
        }

        var again = SignBatch(config, "PO-BATCH-1", dir, output, "--operator", Operator);
        Assert.That(again.ExitCode, Is.Zero, again.StdOut + again.StdErr);
        Assert.That(again.StdOut, Does.Contain("issued 0, already issued 4, refused 0, order remaining quantity 6"));
        Assert.That(again.StdOut, Does.Contain("a-unit.csr: already issued ORD-00001"));
        Assert.That(Entries(config).Count(e => e.Type != EntryType.Checkpoint), Is.EqualTo(entries), "a re-run journals nothing");
        foreach (var (name, bytes) in firstRun)
        {
            Assert.That(File.ReadAllBytes(Path.Combine(output, name + ".crt")), Is.EqualTo(bytes), name);
        }

        var rerunRows = PythonCsv(Path.Combine(output, "batch-report.csv"));
        Assert.That(rerunRows.Skip(1).Select(r => string.Join(',', r)), Is.EquivalentTo(rows.Skip(1).Select(r => string.Join(',', r))),
            "the report of a re-run lists the same certificates, with their journaled times");
    }

    [Test]
    public async Task Refused_csrs_are_listed_with_their_code_and_the_batch_goes_on_exit_1()
    {
        string config = Config();
        await ImportAsync(config, "PO-BATCH-2", 3);
        string dir = NewDir(), output = NewDir();
        string clonedKey = NewKey();
        File.WriteAllText(Path.Combine(dir, "01-garbage.csr"), "this is not a CSR\n");
        WriteCsr(dir, "02-outside.pem", "ORD-99999", NewKey(), der: false);
        WriteCsr(dir, "03-ok.pem", "ORD-00010", clonedKey, der: false);
        WriteCsr(dir, "04-clone.der", "ORD-00011", clonedKey, der: true);
        WriteCsr(dir, "05-ok.csr", "ORD-00012", NewKey(), der: false);
        WriteCsr(dir, "06-ok.csr", "ORD-00013", NewKey(), der: false);
        WriteCsr(dir, "07-quota.csr", "ORD-00014", NewKey(), der: false);
        WriteCsr(dir, "07-quota.pem", "ORD-00015", NewKey(), der: false);

        var run = SignBatch(config, "PO-BATCH-2", dir, output);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.StdOut + run.StdErr);
        Assert.That(run.StdOut, Does.Contain("issued 3, already issued 0, refused 5, order remaining quantity 0"));

        var refused = PythonCsv(Path.Combine(output, "refused.csv"));
        Assert.That(string.Join(',', refused[0]), Is.EqualTo(BatchSigner.RefusedCsvHeader));
        var byFile = refused.Skip(1).ToDictionary(r => r[0]);
        Assert.That(byFile.Keys, Is.EquivalentTo(new[] { "01-garbage.csr", "02-outside.pem", "04-clone.der", "07-quota.csr", "07-quota.pem" }));
        Assert.That(byFile["01-garbage.csr"][2], Is.EqualTo("MalformedBody"));
        Assert.That(byFile["01-garbage.csr"][1], Is.Empty);
        Assert.That(byFile["02-outside.pem"][1..3], Is.EqualTo(new[] { "ORD-99999", "DeviceIdOutsideOrder" }));
        Assert.That(byFile["02-outside.pem"][3], Does.Contain("outside order PO-BATCH-2"));
        Assert.That(byFile["04-clone.der"][1..3], Is.EqualTo(new[] { "ORD-00011", "DuplicatePublicKey" }));
        Assert.That(byFile["07-quota.csr"][1..3], Is.EqualTo(new[] { "ORD-00014", "OrderExhausted" }));
        Assert.That(byFile["07-quota.pem"][2], Is.EqualTo(BatchSigner.DuplicateBaseNameCode), "07-quota.csr already writes 07-quota.crt");

        // Certificates only for the accepted ones; nothing journaled for the refused ones but the cloned-key report.
        Assert.That(Issued(config).Select(i => i.DeviceId), Is.EquivalentTo(new[] { "ORD-00010", "ORD-00012", "ORD-00013" }));
        var reports = Entries(config).Where(e => e.Type == EntryType.EnrollmentRefused).Select(e => EnrollmentRefused.Parser.ParseFrom(e.Payload)).ToList();
        Assert.That(reports.Select(r => (r.DeviceId, r.Code, r.StationId)), Is.EqualTo(new[] { ("ORD-00011", "DuplicatePublicKey", BatchSigner.StationId) }),
            "a cloned key is reported to the OEM (journaled as a refusal), as on EST");
        Assert.That(Directory.GetFiles(output, "*.crt").Select(Path.GetFileName), Is.EquivalentTo(new[] { "03-ok.crt", "05-ok.crt", "06-ok.crt" }));
        Assert.That(PythonCsv(Path.Combine(output, "batch-report.csv")), Has.Count.EqualTo(4));

        // A different CSR for an enrolled device is a normal refusal, not "already issued".
        string dir2 = NewDir(), output2 = NewDir();
        WriteCsr(dir2, "again.csr", "ORD-00010", NewKey(), der: false);
        var second = SignBatch(config, "PO-BATCH-2", dir2, output2);
        Assert.That(second.ExitCode, Is.EqualTo(1));
        Assert.That(PythonCsv(Path.Combine(output2, "refused.csv"))[1][2], Is.EqualTo("DeviceAlreadyEnrolled"));
    }

    [Test]
    public async Task A_wrong_check_digit_is_refused_under_the_profile_s_scheme()
    {
        string config = Config(checkDigit: "iso7064-mod37-36");
        await ImportAsync(config, "PO-BATCH-CD", 5, pattern: "^ORD[0-9]{5}[0-9A-Z]$");
        string dir = NewDir(), output = NewDir();
        string good = DeviceIdFormat.Append(DeviceIdCheckDigit.Iso7064Mod37_36, "ORD00001");
        char right = good[^1];
        string bad = "ORD00002" + (right == 'A' ? 'B' : 'A');
        bad = DeviceIdFormat.IsValidMod37_36(bad) ? "ORD00002" + (right == 'C' ? 'D' : 'C') : bad;
        WriteCsr(dir, "good.csr", good, NewKey(), der: false);
        WriteCsr(dir, "bad.csr", bad, NewKey(), der: true);

        var run = SignBatch(config, "PO-BATCH-CD", dir, output);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.StdOut + run.StdErr);
        Assert.That(run.StdOut, Does.Contain("issued 1, already issued 0, refused 1, order remaining quantity 4"));
        var refused = PythonCsv(Path.Combine(output, "refused.csv"));
        Assert.That(refused.Skip(1).Single()[..3], Is.EqualTo(new[] { "bad.csr", bad, "DeviceIdCheckDigit" }));
        Assert.That(Issued(config).Select(i => i.DeviceId), Is.EqualTo(new[] { good }));
    }

    [Test]
    public async Task An_unknown_order_exits_2_before_anything_is_signed()
    {
        string config = Config();
        await ImportAsync(config, "PO-BATCH-3", 5);
        string dir = NewDir(), output = Path.Combine(NewDir(), "out");
        WriteCsr(dir, "a.csr", "ORD-00001", NewKey(), der: false);
        byte[] journal = File.ReadAllBytes(JournalPath(config));

        var run = SignBatch(config, "PO-NOPE", dir, output);
        Assert.That(run.ExitCode, Is.EqualTo(2), run.StdOut + run.StdErr);
        Assert.That(run.StdErr, Does.Contain("no accepted production order 'PO-NOPE'"));
        Assert.That(run.StdErr, Does.Contain("Nothing was signed"));
        Assert.That(File.ReadAllBytes(JournalPath(config)), Is.EqualTo(journal), "the journal is unchanged");
        Assert.That(Directory.Exists(output), Is.False);

        var profile = SignBatch(config, "PO-BATCH-3", dir, output, "--profile", "no-such-profile");
        Assert.That(profile.ExitCode, Is.EqualTo(2));
        Assert.That(profile.StdErr, Does.Contain("no profile named 'no-such-profile'"));
        var empty = SignBatch(config, "PO-BATCH-3", NewDir(), output);
        Assert.That(empty.ExitCode, Is.EqualTo(2));
        Assert.That(empty.StdErr, Does.Contain("holds no *.csr"));
        Assert.That(File.ReadAllBytes(JournalPath(config)), Is.EqualTo(journal), "the journal is unchanged");
    }

    [Test]
    public async Task With_the_daemon_running_on_the_data_directory_it_refuses_and_changes_nothing()
    {
        string config = Config();
        await ImportAsync(config, "PO-BATCH-4", 5);
        string dir = NewDir(), output = Path.Combine(NewDir(), "out");
        WriteCsr(dir, "a.csr", "ORD-00001", NewKey(), der: false);
        var app = FactoryCaApp.Build(config, configure: o => o.Est.Listen = "https://127.0.0.1:0");
        await app.StartAsync();
        try
        {
            byte[] journal = File.ReadAllBytes(JournalPath(config));
            var run = SignBatch(config, "PO-BATCH-4", dir, output);
            Assert.That(run.ExitCode, Is.EqualTo(2), run.StdOut + run.StdErr);
            Assert.That(run.StdErr, Does.Contain("the FactoryCa daemon is running on this data directory"));
            Assert.That(File.ReadAllBytes(JournalPath(config)), Is.EqualTo(journal), "the journal is unchanged");
            Assert.That(Directory.Exists(output), Is.False);
            Assert.That(app.Services.GetRequiredService<OrderBook>().StatusOf("PO-BATCH-4")!.Remaining, Is.EqualTo(5));

            // Without the control socket (deleted, or the daemon started after the probe) the journal writer lock still refuses.
            File.Delete(ControlEndpoints.SocketPath(Path.GetDirectoryName(Path.GetDirectoryName(JournalPath(config)))!));
            var locked = SignBatch(config, "PO-BATCH-4", dir, output);
            Assert.That(locked.ExitCode, Is.EqualTo(2), locked.StdOut + locked.StdErr);
            Assert.That(locked.StdErr, Does.Contain("the FactoryCa daemon is running on this data directory"));
            Assert.That(locked.StdErr, Does.Contain("journal writer lock is held"));
            Assert.That(File.ReadAllBytes(JournalPath(config)), Is.EqualTo(journal), "the journal is unchanged");
            Assert.That(Directory.Exists(output), Is.False);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        // Once it is stopped, the same command signs.
        var after = SignBatch(config, "PO-BATCH-4", dir, output);
        Assert.That(after.ExitCode, Is.Zero, after.StdOut + after.StdErr);
        Assert.That(after.StdOut, Does.Contain("issued 1, already issued 0, refused 0, order remaining quantity 4"));
    }

    [Test]
    public void A_second_journal_writer_is_refused_until_the_first_closes()
    {
        string dir = NewDir(), path = Path.Combine(dir, "journal.log");
        var first = FileJournalStorage.Open(path);
        first.Append([1, 2, 3]);
        first.Flush();
        byte[] before = File.ReadAllBytes(path); // the 3 bytes, then the first writer's preallocated zeros
        var ex = Assert.Throws<JournalInUseException>(() => FileJournalStorage.Open(path))!;
        Assert.That(ex.Message, Does.Contain("is open for writing by another process"));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before), "the refused writer changed nothing");
        first.Dispose();
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(new byte[] { 1, 2, 3 }), "a closed journal ends at its last byte");
        using var second = FileJournalStorage.Open(path);
        Assert.That(second.Length, Is.EqualTo(3));
    }

    private static List<byte[]> PemCerts(string pem)
    {
        var list = new List<byte[]>();
        var span = pem.AsSpan();
        while (PemEncoding.TryFind(span, out var fields))
        {
            list.Add(Convert.FromBase64String(span[fields.Base64Data].ToString()));
            span = span[fields.Location.End..];
        }

        return list;
    }
}
