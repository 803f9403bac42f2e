using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using NUnit.Framework;
using OfflinePki.DeviceSimulator;
using OfflinePki.Keys;
using OfflinePki.Station;

namespace OfflinePki.Tests.Station;

/// <summary>
/// The JSON-lines framing, the simulated device's refusals (with a software key, no token needed), and the station's
/// handling of a device that breaks the protocol (a raw TCP peer written here).
/// </summary>
public class DeviceProtocolTests
{
    private static async Task<string?> ReadOne(byte[] wire, int max = 64)
    {
        await using var channel = new JsonLineChannel(new MemoryStream(wire), max);
        return await channel.ReadLineAsync(CancellationToken.None);
    }

    [Test]
    public async Task Lines_end_at_LF_and_a_CR_before_it_is_dropped()
    {
        await using var channel = new JsonLineChannel(new MemoryStream("{\"op\":\"info\"}\r\n{\"op\":\"csr\"}\n"u8.ToArray()));
        Assert.That(await channel.ReadLineAsync(CancellationToken.None), Is.EqualTo("{\"op\":\"info\"}"));
        Assert.That(await channel.ReadLineAsync(CancellationToken.None), Is.EqualTo("{\"op\":\"csr\"}"));
        Assert.That(await channel.ReadLineAsync(CancellationToken.None), Is.Null);
    }

    [Test]
    public async Task An_over_long_line_is_refused()
    {
        var ex = await Assert.ThrowsAsync<DeviceProtocolException>(() => ReadOne(Encoding.ASCII.GetBytes(new string('x', 100) + "\n")));
        Assert.That(ex!.Message, Is.EqualTo("line longer than 64 bytes"));
    }

    [Test]
    public async Task A_line_that_is_not_UTF8_is_refused()
    {
        var ex = await Assert.ThrowsAsync<DeviceProtocolException>(() => ReadOne([0x7b, 0xff, 0xfe, 0x7d, 0x0a]));
        Assert.That(ex!.Message, Is.EqualTo("line is not valid UTF-8"));
    }

    [Test]
    public async Task A_partial_last_line_is_dropped_at_end_of_stream() =>
        Assert.That(await ReadOne("{\"op\":"u8.ToArray()), Is.Null);

    [Test]
    public void A_line_that_is_not_a_JSON_object_is_a_protocol_error() =>
        Assert.That(() => DeviceProtocol.Decode<DeviceRequest>("[1,2"), Throws.TypeOf<DeviceProtocolException>().With.Message.StartsWith("line is not a valid JSON object"));

    private static (SimulatedDevice Device, AsymmetricSigningKey Key) Device(DeviceFault fault = DeviceFault.None)
    {
        var key = new AsymmetricSigningKey(ECDsa.Create(ECCurve.NamedCurves.nistP256));
        var alt = new AsymmetricSigningKey(ECDsa.Create(ECCurve.NamedCurves.nistP256));
        return (new SimulatedDevice("UNIT-0001", null, "t", key, alt, fault), key);
    }

    private static X509Certificate2 SelfSigned(ISigningKey key)
    {
        var req = new CertificateRequest(new X500DistinguishedName("CN=UNIT-0001"), key.PublicKey, HashAlgorithmName.SHA256);
        return req.Create(new X500DistinguishedName("CN=t"), new SigningKeySignatureGenerator(key), DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch.AddYears(100), [1]);
    }

    [Test]
    public void The_device_CSR_carries_its_ID_and_verifies()
    {
        var (device, key) = Device();
        var r = device.Handle(new DeviceRequest { Op = "csr", Profile = "idevid" });
        Assert.That(r.Ok, Is.True, r.Error);
        var csr = CertificateRequest.LoadSigningRequest(Convert.FromBase64String(r.Csr!), HashAlgorithmName.SHA256);
        Assert.That(csr.SubjectName.Name, Does.Contain("SERIALNUMBER=UNIT-0001").IgnoreCase.Or.Contain("OID.2.5.4.5=UNIT-0001"));
        Assert.That(csr.PublicKey.ExportSubjectPublicKeyInfo(), Is.EqualTo(key.PublicKey.ExportSubjectPublicKeyInfo()));
    }

    [Test]
    public void The_device_signs_the_context_prefixed_challenge_with_its_key()
    {
        var (device, key) = Device();
        byte[] challenge = RandomNumberGenerator.GetBytes(32);
        var r = device.Handle(new DeviceRequest { Op = "sign", Challenge = Convert.ToBase64String(challenge) });
        using var cert = SelfSigned(key);
        Assert.That(DeviceChallenge.Verify(cert, challenge, Convert.FromBase64String(r.Signature!)), Is.True);
        Assert.That(DeviceChallenge.Verify(cert, RandomNumberGenerator.GetBytes(32), Convert.FromBase64String(r.Signature!)), Is.False);
    }

    [TestCase(null, "field 'challenge' is missing")]
    [TestCase("***", "field 'challenge' is not base64")]
    [TestCase("AAAA", "challenge must be 16..64 bytes, got 3")]
    public void The_device_refuses_a_bad_challenge(string? challenge, string error)
    {
        var (device, _) = Device();
        var r = device.Handle(new DeviceRequest { Op = "sign", Challenge = challenge });
        Assert.That(r.Ok, Is.False);
        Assert.That(r.Error, Is.EqualTo(error));
    }

    [Test]
    public void The_device_refuses_a_certificate_for_another_key_and_keeps_nothing()
    {
        var (device, _) = Device();
        using var other = new AsymmetricSigningKey(ECDsa.Create(ECCurve.NamedCurves.nistP256));
        using var cert = SelfSigned(other);
        var r = device.Handle(new DeviceRequest { Op = "write", Certificate = Convert.ToBase64String(cert.RawData) });
        Assert.That(r.Error, Is.EqualTo("certificate public key does not match the device key; not stored"));
        Assert.That(device.Handle(new DeviceRequest { Op = "read" }).Error, Is.EqualTo("no certificate stored"));
        Assert.That(device.Handle(new DeviceRequest { Op = "finalize" }).Error, Is.EqualTo("no certificate stored; write one before finalize"));
        Assert.That(device.Locked, Is.False);
    }

    [Test]
    public void A_finalized_device_answers_only_info_and_read()
    {
        var (device, key) = Device();
        using var cert = SelfSigned(key);
        Assert.That(device.Handle(new DeviceRequest { Op = "write", Certificate = Convert.ToBase64String(cert.RawData), Chain = [] }).Ok, Is.True);
        Assert.That(device.Handle(new DeviceRequest { Op = "finalize" }).Locked, Is.True);
        Assert.That(device.Handle(new DeviceRequest { Op = "info" }).Locked, Is.True);
        Assert.That(device.Handle(new DeviceRequest { Op = "read" }).Certificate, Is.EqualTo(Convert.ToBase64String(cert.RawData)));
        foreach (var op in new[] { "csr", "sign", "write", "finalize" })
        {
            Assert.That(device.Handle(new DeviceRequest { Op = op }).Error, Is.EqualTo($"device is locked (finalized): '{op}' is no longer accepted"));
        }
    }

    [Test]
    public void An_unknown_op_is_refused_naming_the_known_ones()
    {
        var (device, _) = Device();
        Assert.That(device.Handle(new DeviceRequest { Op = "erase" }).Error, Is.EqualTo("unknown op 'erase' (expected info, csr, write, read, sign or finalize)"));
    }

    /// <summary>A raw TCP "device" that answers the first line with <paramref name="reply"/> (null: stays silent).</summary>
    private static async Task<string> StationAgainst(byte[]? reply, string timeout = "10s")
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var peer = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync(cts.Token);
            var stream = client.GetStream();
            var buffer = new byte[1024];
            _ = await stream.ReadAsync(buffer, cts.Token);
            if (reply is not null)
            {
                await stream.WriteAsync(reply, cts.Token);
                client.Client.Shutdown(SocketShutdown.Send);
            }

            try
            {
                while (await stream.ReadAsync(buffer, cts.Token) > 0)
                {
                }
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException)
            {
            }
        });

        var pki = Support.TestPki.Default;
        string evidence = Path.Combine(Path.GetTempPath(), "offlinepki-tests", Guid.NewGuid().ToString("N") + "-evidence.jsonl");
        Directory.CreateDirectory(Path.GetDirectoryName(evidence)!);
        var run = await StationTestBed.RunStationAsync([
            "run", "--device", $"tcp:127.0.0.1:{port}", "--label", "UNIT-0001", "--est", "https://127.0.0.1:9",
            "--client-cert", pki.PathOf("station-01.crt"), "--client-key", pki.PathOf("station-01.key"), "--ca", pki.PathOf("tls-ca.crt"),
            "--evidence", evidence, "--timeout", timeout]);
        await cts.CancelAsync();
        await peer.ContinueWith(_ => { }, TaskScheduler.Default);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(StationTestBed.ReadEvidence(evidence).Single().GetProperty("step").GetString(), Is.EqualTo("identify"));
        return run.Error;
    }

    [Test]
    public async Task A_device_answering_garbage_fails_identify_as_a_malformed_line() =>
        Assert.That(await StationAgainst("hello\n"u8.ToArray()), Does.Contain("FAIL at step 'identify': device answered 'info' with a malformed line"));

    [Test]
    public async Task A_device_answering_an_over_long_line_fails_identify() =>
        Assert.That(await StationAgainst(Encoding.ASCII.GetBytes(new string('x', DeviceProtocol.MaxLineBytes + 10) + "\n")),
            Does.Contain($"FAIL at step 'identify': device broke the protocol answering 'info': line longer than {DeviceProtocol.MaxLineBytes} bytes"));

    [Test]
    public async Task A_device_that_hangs_up_fails_identify() =>
        Assert.That(await StationAgainst([]), Does.Contain("FAIL at step 'identify': device closed the connection instead of answering 'info'"));

    [Test]
    public async Task A_silent_device_fails_identify_after_the_timeout() =>
        Assert.That(await StationAgainst(null, "300ms"), Does.Contain("FAIL at step 'identify': device did not answer 'info' within 0.3 s"));

    [Test]
    public async Task A_device_without_an_ID_fails_identify() =>
        Assert.That(await StationAgainst("{\"ok\":true}\n"u8.ToArray()), Does.Contain("FAIL at step 'identify': device reported no device ID"));

    /// <summary>A scripted device on loopback TCP: each request is answered by <paramref name="answer"/>.</summary>
    private static async Task<(StationRun Run, string Evidence)> StationAgainstScript(Func<DeviceRequest, DeviceResponse> answer, string? evidence = null)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var peer = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync(cts.Token);
            await using var channel = new JsonLineChannel(client.GetStream());
            while (await channel.ReadLineAsync(cts.Token) is { } line)
            {
                await channel.WriteLineAsync(DeviceProtocol.Encode(answer(DeviceProtocol.Decode<DeviceRequest>(line))), cts.Token);
            }
        });

        var pki = Support.TestPki.Default;
        evidence ??= Path.Combine(Path.GetTempPath(), "offlinepki-tests", Guid.NewGuid().ToString("N") + "-evidence.jsonl");
        Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "offlinepki-tests"));
        var run = await StationTestBed.RunStationAsync([
            "run", "--device", $"tcp:127.0.0.1:{port}", "--label", "UNIT-0002", "--est", "https://127.0.0.1:9",
            "--client-cert", pki.PathOf("station-01.crt"), "--client-key", pki.PathOf("station-01.key"), "--ca", pki.PathOf("tls-ca.crt"),
            "--evidence", evidence]);
        await cts.CancelAsync();
        await peer.ContinueWith(_ => { }, TaskScheduler.Default);
        return (run, evidence);
    }

    private static DeviceResponse Scripted(DeviceRequest request, byte[] csr) => request.Op switch
    {
        "info" => new DeviceResponse { Ok = true, DeviceId = "UNIT-0002", Firmware = "t", Protocol = 1, Locked = false },
        "csr" => new DeviceResponse { Ok = true, Csr = Convert.ToBase64String(csr) },
        _ => DeviceResponse.Fail("unexpected " + request.Op),
    };

    [Test]
    public async Task A_CSR_whose_signature_does_not_verify_fails_at_csr_and_is_never_sent_to_EST()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        byte[] csr = new CertificateRequest(new X500DistinguishedName("SERIALNUMBER=UNIT-0002, CN=UNIT-0002"), key, HashAlgorithmName.SHA256).CreateSigningRequest();
        csr[^3] ^= 0x01; // inside the signature
        var (run, evidence) = await StationAgainstScript(r => Scripted(r, csr));
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Error, Does.Contain("FAIL at step 'csr': device CSR is malformed or its signature does not verify (no proof of possession)"));
        Assert.That(run.Output, Does.Not.Contain("[enroll]"));
        Assert.That(StationTestBed.ReadEvidence(evidence).Single().GetProperty("step").GetString(), Is.EqualTo("csr"));
    }

    [Test]
    public async Task A_CSR_without_a_device_ID_fails_at_csr()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        byte[] csr = new CertificateRequest(new X500DistinguishedName("CN=UNIT-0002"), key, HashAlgorithmName.SHA256).CreateSigningRequest();
        var (run, _) = await StationAgainstScript(r => Scripted(r, csr));
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Error, Does.Contain("FAIL at step 'csr': CSR names device '(none)' but the label and the device say 'UNIT-0002'"));
    }

    [Test]
    public async Task A_locked_device_is_refused_at_identify()
    {
        var (run, _) = await StationAgainstScript(r => new DeviceResponse { Ok = true, DeviceId = "UNIT-0002", Locked = true });
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Error, Does.Contain("FAIL at step 'identify': device 'UNIT-0002' is already finalized (debug lock set); send it to rework"));
    }

    [Test]
    public async Task Escape_sequences_from_a_device_never_reach_the_operator_terminal()
    {
        var (run, evidence) = await StationAgainstScript(r => r.Op == "info"
            ? new DeviceResponse { Ok = true, DeviceId = "UNIT-0002", Firmware = "1.0\u001b[2J\u001b]0;pwned\u0007", Locked = false }
            : DeviceResponse.Fail("no\u001b[31m CSR\r\nstation: PASS device UNIT-0002"));
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Output + run.Error, Does.Not.Contain("\u001b").And.Not.Contain("\u0007"));
        Assert.That(run.Error, Does.Contain("FAIL at step 'csr': device refused 'csr': no?[31m CSR??station: PASS device UNIT-0002"));
        Assert.That(run.Output, Does.Not.Contain("PASS"));
        Assert.That(File.ReadAllText(evidence), Does.Not.Contain("\\u001b").IgnoreCase.And.Not.Contain("\u001b"));
    }

    [TestCase("UNIT-0002\n", "malformed device ID 'UNIT-0002?'")]
    public async Task A_malformed_device_ID_fails_at_identify(string id, string message)
    {
        var (run, _) = await StationAgainstScript(r => new DeviceResponse { Ok = true, DeviceId = id });
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Error, Does.Contain(message));
    }

    [Test]
    public async Task A_malformed_MAC_fails_at_identify_before_it_becomes_a_header()
    {
        var (run, _) = await StationAgainstScript(r => new DeviceResponse { Ok = true, DeviceId = "UNIT-0002", Mac = "00:11\r\nX-Order-Id: PO-9" });
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Error, Does.Contain("FAIL at step 'identify': device reported a malformed MAC '00:11??X-Order-Id: PO-9' (expected aa:bb:cc:dd:ee:ff)"));
    }

    [Test]
    public async Task Evidence_that_cannot_be_written_exits_3_after_printing_the_result()
    {
        string evidence = Path.Combine(Path.GetTempPath(), "offlinepki-tests", "no-such-dir-" + Guid.NewGuid().ToString("N"), "evidence.jsonl");
        var (run, _) = await StationAgainstScript(r => new DeviceResponse { Ok = true, DeviceId = "UNIT-0009" }, evidence);
        Assert.That(run.ExitCode, Is.EqualTo(3), run.ToString());
        Assert.That(run.Error, Does.Contain("FAIL at step 'identify'"));
        Assert.That(run.Error, Does.Contain($"station: evidence NOT written to '{evidence}'"));
    }

    [Test]
    public void Durations_parse_with_units_and_refuse_bare_numbers()
    {
        Assert.That(StationCli.ParseDuration("--timeout", "500ms"), Is.EqualTo(TimeSpan.FromMilliseconds(500)));
        Assert.That(StationCli.ParseDuration("--timeout", "2m"), Is.EqualTo(TimeSpan.FromMinutes(2)));
        Assert.That(StationCli.ParseDuration("--timeout", "00:00:10"), Is.EqualTo(TimeSpan.FromSeconds(10)));
        Assert.That(() => StationCli.ParseDuration("--timeout", "0s"), Throws.Exception.With.Message.Contains("must be more than 0"));
    }
}
