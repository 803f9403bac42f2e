using System.Security.Cryptography.X509Certificates;
using NUnit.Framework;
using OfflinePki.Tests.Factory;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Station;

/// <summary>
/// The station tool end to end: a real FactoryCa (EST over mTLS, real journal), real device-sim processes whose keys
/// live in a SoftHSM2 token, the station CLI. Each fault of the simulator must stop the run at the right step with
/// the right reason, never finalize the unit, and leave evidence without secrets.
/// </summary>
[NonParallelizable]
public class StationEndToEndTests
{
    // One key per simulated device: FactoryCa may refuse one public key for two device IDs (cloned keys).
    private static readonly string[] Keys =
    [
        "pass", "serial", "wrong-key-slot", "wrong-key-slot-alt", "swapped-id", "failed-write", "refused-signature",
        "label", "refused", "pinned-root", "kind", "python",
    ];

    private StationTestBed _bed = null!;

    [OneTimeSetUp]
    public async Task Start() => _bed = await StationTestBed.StartAsync(Keys);

    [OneTimeTearDown]
    public async Task Stop() => await _bed.DisposeAsync();

    [Test]
    public async Task A_good_device_passes_every_step_is_journaled_finalized_and_leaves_evidence_without_secrets()
    {
        using var sim = _bed.StartSimulator("SIM-10001", "pass", mac: "02:00:5e:10:00:01");
        string evidence = _bed.NewEvidencePath();
        var run = await StationTestBed.RunStationAsync(_bed.StationArgs(sim.Endpoint, "SIM-10001", evidence));

        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        foreach (var step in new[] { "identify", "csr", "enroll", "verify", "write", "challenge", "finalize" })
        {
            Assert.That(run.Output, Does.Contain($"[{step}]"), run.ToString());
        }

        Assert.That(run.Output, Does.Contain("PASS device SIM-10001"));
        var line = StationTestBed.ReadEvidence(evidence).Single();
        Assert.That(line.GetProperty("result").GetString(), Is.EqualTo("pass"));
        Assert.That(line.GetProperty("step").GetString(), Is.EqualTo("done"));
        Assert.That(line.GetProperty("deviceId").GetString(), Is.EqualTo("SIM-10001"));
        Assert.That(line.GetProperty("label").GetString(), Is.EqualTo("SIM-10001"));
        Assert.That(line.GetProperty("station").GetString(), Is.EqualTo("station-01"));
        Assert.That(line.GetProperty("operator").GetString(), Is.EqualTo("op-7"));
        Assert.That(line.GetProperty("mac").GetString(), Is.EqualTo("02:00:5e:10:00:01"));
        Assert.That(line.TryGetProperty("reason", out _), Is.False);

        // The certificate the evidence names is in the journal, with the station, operator and MAC the station sent.
        string serial = line.GetProperty("serial").GetString()!;
        var issued = _bed.Issued().Single(i => i.DeviceId == "SIM-10001");
        using var cert = X509CertificateLoader.LoadCertificate(issued.Certificate.ToByteArray());
        Assert.That(cert.SerialNumber, Is.EqualTo(serial));
        Assert.That(line.GetProperty("fingerprint").GetString(),
            Is.EqualTo("sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(cert.RawData))));
        Assert.That(issued.StationId, Is.EqualTo("station-01"));
        Assert.That(issued.OperatorId, Is.EqualTo("op-7"));
        Assert.That(issued.MacAddress, Is.EqualTo("02:00:5e:10:00:01"));

        // The device holds the certificate and is locked.
        var info = await StationTestBed.InfoAsync(sim.Endpoint);
        Assert.That(info.Locked, Is.True);

        // No secret anywhere: not the token PIN, not the station key, not a challenge's private material.
        string stationKey = File.ReadAllText(_bed.Pki.PathOf("station-01.key"));
        string keyBody = stationKey.Split('\n')[1];
        foreach (var (what, text) in new[] { ("evidence", File.ReadAllText(evidence)), ("station output", run.Output + run.Error), ("simulator log", sim.Log) })
        {
            Assert.That(text, Does.Not.Contain(_bed.Pin), what + " holds the token PIN");
            Assert.That(text, Does.Not.Contain("PRIVATE KEY"), what);
            Assert.That(text, Does.Not.Contain(keyBody), what + " holds the station key");
        }
    }

    [Test]
    public async Task A_device_on_a_serial_port_passes_through_a_pty()
    {
        Assert.That(File.Exists("/usr/bin/socat"), "socat is needed for the pty (bash ops/install-deps.sh)");
        using var sim = _bed.StartSimulator("SIM-10002", "serial");
        string tty = Path.Combine(_bed.Scratch, "ttyDUT-" + Guid.NewGuid().ToString("N")[..6]);
        var psi = new System.Diagnostics.ProcessStartInfo("socat") { UseShellExecute = false, RedirectStandardError = true };
        foreach (var a in new[] { $"pty,raw,echo=0,link={tty}", $"tcp:127.0.0.1:{sim.Port}" })
        {
            psi.ArgumentList.Add(a);
        }

        using var socat = System.Diagnostics.Process.Start(psi)!;
        try
        {
            for (int i = 0; i < 200 && !File.Exists(tty); i++)
            {
                await Task.Delay(25);
            }

            Assert.That(File.Exists(tty), "socat made no pty");
            string evidence = _bed.NewEvidencePath();
            var run = await StationTestBed.RunStationAsync(_bed.StationArgs("serial:" + tty, "SIM-10002", evidence));
            Assert.That(run.ExitCode, Is.Zero, run.ToString());
            Assert.That(StationTestBed.ReadEvidence(evidence).Single().GetProperty("result").GetString(), Is.EqualTo("pass"));
            Assert.That(_bed.Issued().Count(i => i.DeviceId == "SIM-10002"), Is.EqualTo(1));
        }
        finally
        {
            if (!socat.HasExited)
            {
                socat.Kill();
            }
        }
    }

    [TestCase("wrong-key-slot", "SIM-20001", "challenge", "challenge signature does not verify with the new certificate's public key", true)]
    [TestCase("refused-signature", "SIM-20002", "challenge", "device refused 'sign': signature refused by the secure element", true)]
    [TestCase("failed-write", "SIM-20003", "write", "certificate read back from the device differs from the one written", true)]
    [TestCase("swapped-id", "SIM-20004", "csr", "CSR names device 'SIM-20040' but the label and the device say 'SIM-20004' (swapped ID)", false)]
    public async Task A_faulty_device_fails_at_the_right_step_with_the_reason_and_is_not_finalized(string fault, string deviceId, string step, string reason, bool issued)
    {
        using var sim = _bed.StartSimulator(deviceId, fault, fault);
        int before = _bed.Issued().Count;
        string evidence = _bed.NewEvidencePath();
        var run = await StationTestBed.RunStationAsync(_bed.StationArgs(sim.Endpoint, deviceId, evidence));

        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Error, Does.Contain($"FAIL at step '{step}': {reason}"), run.ToString());
        var line = StationTestBed.ReadEvidence(evidence).Single();
        Assert.That(line.GetProperty("result").GetString(), Is.EqualTo("fail"));
        Assert.That(line.GetProperty("step").GetString(), Is.EqualTo(step));
        Assert.That(line.GetProperty("reason").GetString(), Does.Contain(reason));
        Assert.That((await StationTestBed.InfoAsync(sim.Endpoint)).Locked, Is.False, "a failed unit must not be finalized");
        Assert.That(File.ReadAllText(evidence), Does.Not.Contain(_bed.Pin));
        Assert.That(sim.Log, Does.Not.Contain(_bed.Pin));

        if (issued)
        {
            // Enrolled before the fault showed: the evidence names the certificate so it can be revoked.
            string serial = line.GetProperty("serial").GetString()!;
            Assert.That(run.Error, Does.Contain($"certificate {serial} was issued but the unit failed"));
            Assert.That(_bed.Issued().Count, Is.EqualTo(before + 1));
        }
        else
        {
            Assert.That(line.TryGetProperty("serial", out _), Is.False);
            Assert.That(_bed.Issued().Count, Is.EqualTo(before), "nothing may be issued for a swapped ID");
        }
    }

    [Test]
    public async Task A_label_that_does_not_match_the_device_stops_before_the_CSR()
    {
        using var sim = _bed.StartSimulator("SIM-30001", "label");
        int before = _bed.Issued().Count;
        string evidence = _bed.NewEvidencePath();
        var run = await StationTestBed.RunStationAsync(_bed.StationArgs(sim.Endpoint, "SIM-30009", evidence));

        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Error, Does.Contain("FAIL at step 'identify': device reports ID 'SIM-30001' but the scanned label is 'SIM-30009'"));
        var line = StationTestBed.ReadEvidence(evidence).Single();
        Assert.That(line.GetProperty("step").GetString(), Is.EqualTo("identify"));
        Assert.That(line.GetProperty("label").GetString(), Is.EqualTo("SIM-30009"));
        Assert.That(line.GetProperty("deviceId").GetString(), Is.EqualTo("SIM-30001"));
        Assert.That(_bed.Issued().Count, Is.EqualTo(before));
        Assert.That(sim.Log, Does.Not.Contain("csr:"), "the device must not be asked for a CSR");
    }

    [Test]
    public async Task An_EST_refusal_is_surfaced_at_the_enroll_step_and_nothing_is_written_to_the_device()
    {
        using var sim = _bed.StartSimulator("SIM-40001", "refused");
        var unlisted = Peers.ClientCert("station-99", _bed.Pki.PathOf("tls-ca.crt"), _bed.Pki.PathOf("tls-ca.key"));
        int before = _bed.Issued().Count;
        string evidence = _bed.NewEvidencePath();
        var run = await StationTestBed.RunStationAsync(_bed.StationArgs(sim.Endpoint, "SIM-40001", evidence, unlisted));

        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Error, Does.Contain("FAIL at step 'enroll': EST simpleenroll refused (HTTP 403): station CN=station-99 is not in the station list"));
        var line = StationTestBed.ReadEvidence(evidence).Single();
        Assert.That(line.GetProperty("step").GetString(), Is.EqualTo("enroll"));
        Assert.That(line.GetProperty("station").GetString(), Is.EqualTo("station-99"));
        Assert.That(_bed.Issued().Count, Is.EqualTo(before));
        Assert.That(sim.Log, Does.Not.Contain("write:"));
        Assert.That((await StationTestBed.InfoAsync(sim.Endpoint)).Locked, Is.False);
    }

    [Test]
    public async Task A_certificate_that_does_not_chain_to_the_pinned_root_fails_verify_and_the_unit_is_not_written()
    {
        using var sim = _bed.StartSimulator("SIM-40002", "pinned-root");
        var rogue = Peers.RogueCa();
        string evidence = _bed.NewEvidencePath();
        var run = await StationTestBed.RunStationAsync(_bed.StationArgs(sim.Endpoint, "SIM-40002", evidence, null, "--root", rogue.Crt));

        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Error, Does.Contain("FAIL at step 'verify': EST cacerts does not hold the pinned root 'CN=Rogue CA'"));
        var line = StationTestBed.ReadEvidence(evidence).Single();
        Assert.That(line.GetProperty("step").GetString(), Is.EqualTo("verify"));
        Assert.That(line.GetProperty("serial").GetString(), Is.Not.Empty, "the issued certificate is named so it can be revoked");
        Assert.That(sim.Log, Does.Not.Contain("write:"));
    }

    [Test]
    public async Task The_pinned_root_and_the_issuance_kind_pass_through()
    {
        using var sim = _bed.StartSimulator("SIM-40003", "kind");
        string evidence = _bed.NewEvidencePath();
        var run = await StationTestBed.RunStationAsync(_bed.StationArgs(sim.Endpoint, "SIM-40003", evidence, null,
            "--root", _bed.Pki.PathOf("root-ca.crt"), "--kind", "initial", "--station-id", "line-3-station-01"));
        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        var line = StationTestBed.ReadEvidence(evidence).Single();
        Assert.That(line.GetProperty("kind").GetString(), Is.EqualTo("initial"));
        Assert.That(line.GetProperty("station").GetString(), Is.EqualTo("line-3-station-01"));
    }

    [Test]
    public void The_simulator_refuses_to_start_with_a_wrong_PIN_and_does_not_echo_it()
    {
        string wrongPin = "wrong-pin-" + Guid.NewGuid().ToString("N")[..8];
        string pinFile = Path.Combine(_bed.Scratch, "wrong.pin");
        File.WriteAllText(pinFile, wrongPin + "\n");
        var ex = Assert.Throws<InvalidOperationException>(() => Simulator.Start(_bed.Conf, [
            "--device-id", "SIM-70001", "--token-label", StationTestBed.Token, "--key-label", "pass", "--pin-file", pinFile]))!;
        Assert.That(ex.Message, Does.Contain("device-sim: secure element: device-sim --key-label: PKCS#11 key 'pkcs11:token=sim-se;object=pass;type=private' cannot be opened"));
        Assert.That(ex.Message, Does.Not.Contain(wrongPin));
    }

    /// <summary>
    /// The spec in docs/device-protocol.md is enough to talk to the device: a python3 client speaks the protocol, and
    /// openssl checks the CSR's proof of possession and the challenge signature over context || 0x00 || challenge.
    /// </summary>
    [Test]
    public void A_python_client_and_openssl_agree_with_the_protocol_spec()
    {
        using var sim = _bed.StartSimulator("SIM-80001", "python");
        string dir = Path.Combine(_bed.Scratch, "py-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(dir);
        const string script = """
            import base64, json, os, socket, sys
            host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
            s = socket.create_connection((host, port), timeout=20)
            f = s.makefile("rwb")
            def call(req):
                f.write((json.dumps(req) + "\n").encode()); f.flush()
                line = f.readline()
                assert line.endswith(b"\n"), line
                return json.loads(line)
            info = call({"op": "info"})
            assert info["ok"] and info["deviceId"] == "SIM-80001" and info["protocol"] == 1 and info["locked"] is False, info
            csr = call({"op": "csr", "profile": "idevid"})
            open(os.path.join(out, "csr.der"), "wb").write(base64.b64decode(csr["csr"]))
            challenge = os.urandom(32)
            sig = call({"op": "sign", "challenge": base64.b64encode(challenge).decode()})
            open(os.path.join(out, "sig.der"), "wb").write(base64.b64decode(sig["signature"]))
            open(os.path.join(out, "msg.bin"), "wb").write(b"OfflinePki station challenge v1\x00" + challenge)
            bad = call({"op": "sign", "challenge": "AAAA"})
            assert bad == {"ok": False, "error": "challenge must be 16..64 bytes, got 3"}, bad
            print("ok")
            """;
        string py = Path.Combine(dir, "client.py");
        File.WriteAllText(py, script);
        Tool.Run("/usr/bin/python3", [py, "127.0.0.1", sim.Port, dir]).EnsureSuccess("python3 protocol client");

        string csr = Path.Combine(dir, "csr.der"), pub = Path.Combine(dir, "pub.pem");
        var verify = Tool.OpenSsl("req", "-inform", "DER", "-in", csr, "-verify", "-noout", "-subject");
        Assert.That(verify.ExitCode, Is.Zero, verify.StdErr);
        Assert.That(verify.StdOut + verify.StdErr, Does.Contain("serialNumber").IgnoreCase.And.Contain("SIM-80001"));
        Tool.OpenSsl("req", "-inform", "DER", "-in", csr, "-pubkey", "-noout", "-out", pub).EnsureSuccess("openssl req -pubkey");
        var dgst = Tool.OpenSsl("dgst", "-sha256", "-verify", pub, "-signature", Path.Combine(dir, "sig.der"), Path.Combine(dir, "msg.bin"));
        Assert.That(dgst.StdOut, Does.Contain("Verified OK"), dgst.StdErr);
    }

    [Test]
    public async Task An_unreachable_device_fails_at_connect()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // nothing listens there now
        string evidence = _bed.NewEvidencePath();
        var run = await StationTestBed.RunStationAsync(_bed.StationArgs($"tcp:127.0.0.1:{port}", "SIM-50001", evidence));
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Error, Does.Contain($"FAIL at step 'connect': cannot connect to device at tcp:127.0.0.1:{port}"));
        Assert.That(StationTestBed.ReadEvidence(evidence).Single().GetProperty("step").GetString(), Is.EqualTo("connect"));
    }

    [TestCase(new[] { "--est", "http://127.0.0.1:1" }, "--est 'http://127.0.0.1:1' must be an https:// URL")]
    [TestCase(new[] { "--timeout", "10" }, "--timeout '10': expected e.g. 10s")]
    [TestCase(new[] { "--est-label", "a/b" }, "--est-label 'a/b': 1-64 of [A-Za-z0-9._-]")]
    public async Task Bad_arguments_exit_2_naming_the_option_and_touch_nothing(string[] extra, string message)
    {
        string evidence = _bed.NewEvidencePath();
        var args = _bed.StationArgs("tcp:127.0.0.1:9", "SIM-60001", evidence);
        for (int i = 0; i < extra.Length; i += 2)
        {
            int at = args.IndexOf(extra[i]);
            if (at >= 0)
            {
                args[at + 1] = extra[i + 1];
            }
            else
            {
                args.AddRange([extra[i], extra[i + 1]]);
            }
        }

        var run = await StationTestBed.RunStationAsync(args);
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.Contain(message));
        Assert.That(File.Exists(evidence), Is.False);
    }

    [Test]
    public async Task A_missing_client_key_exits_2()
    {
        string evidence = _bed.NewEvidencePath();
        var run = await StationTestBed.RunStationAsync(_bed.StationArgs("tcp:127.0.0.1:9", "SIM-60002", evidence,
            (_bed.Pki.PathOf("station-01.crt"), Path.Combine(_bed.Scratch, "no-such.key"))));
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.Contain("station: setup:"));
        Assert.That(File.Exists(evidence), Is.False);
    }
}
