using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OfflinePki.FactoryCa;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Station;
using OfflinePki.Sync;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Station;

/// <summary>
/// A real FactoryCa (fresh dev PKI, real journal, EST on 127.0.0.1:0), one SoftHSM2 token made by
/// ops/device-sim-token.sh in a temp directory (one P-256 key per simulated device, so no two devices share a key),
/// real device-sim processes, and the station CLI run in-process.
/// </summary>
internal sealed class StationTestBed : IAsyncDisposable
{
    public const string Token = "sim-se";
    private readonly WebApplication _factory;

    private StationTestBed(TestPki pki, WebApplication factory, string estBase, string hsmDir)
    {
        Pki = pki;
        _factory = factory;
        EstBase = estBase;
        HsmDir = hsmDir;
    }

    public TestPki Pki { get; }

    public string EstBase { get; }

    public string HsmDir { get; }

    public string Conf => Path.Combine(HsmDir, "softhsm2.conf");

    public string PinFile => Path.Combine(HsmDir, Token + ".pin");

    public string Pin => File.ReadAllText(PinFile).Trim();

    public string Scratch => Path.Combine(Pki.Directory, "station-scratch");

    public static async Task<StationTestBed> StartAsync(params string[] keyLabels)
    {
        var pki = TestPki.Create("F1");
        string hsm = Path.Combine(pki.Directory, "device-se");
        Tool.Run("bash", [Path.Combine(TestPki.RepoRoot, "ops", "device-sim-token.sh"), hsm, Token, .. keyLabels],
                env: new Dictionary<string, string> { ["OFFLINEPKI_FACTORYCA"] = Path.Combine(AppContext.BaseDirectory, "FactoryCa.dll") })
            .EnsureSuccess("ops/device-sim-token.sh");
        var app = FactoryCaApp.Build(pki.PathOf("factoryca.json"),
            services => services.PostConfigure<SyncOptions>(o => o.Enabled = false),
            o => o.Est.Listen = "https://127.0.0.1:0");
        await app.StartAsync();
        string est = app.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal)).TrimEnd('/');
        var bed = new StationTestBed(pki, app, est, hsm);
        Directory.CreateDirectory(bed.Scratch);
        return bed;
    }

    public async ValueTask DisposeAsync()
    {
        await _factory.StopAsync();
        await _factory.DisposeAsync();
    }

    /// <summary>Every CertificateIssued entry in the factory's journal.</summary>
    public List<CertificateIssued> Issued()
    {
        var reader = _factory.Services.GetRequiredService<IJournalReader>();
        return reader.ReadFrom(1).Where(e => e.Type == EntryType.CertificateIssued)
            .Select(e => CertificateIssued.Parser.ParseFrom(e.Payload)).ToList();
    }

    /// <summary>Starts device-sim; disposed = killed.</summary>
    public Simulator StartSimulator(string deviceId, string keyLabel, string fault = "none", string? mac = null) =>
        Simulator.Start(Conf, [
            "--listen", "127.0.0.1:0", "--device-id", deviceId, "--token-label", Token, "--key-label", keyLabel,
            "--pin-file", PinFile, "--fault", fault, .. mac is null ? Array.Empty<string>() : ["--mac", mac]]);

    /// <summary>Station arguments for <paramref name="device"/> (station-01 unless <paramref name="clientCert"/> is given).</summary>
    public List<string> StationArgs(string device, string label, string evidence, (string Crt, string Key)? clientCert = null, params string[] extra)
    {
        var args = new List<string>
        {
            "run", "--device", device, "--label", label, "--est", EstBase,
            "--client-cert", clientCert?.Crt ?? Pki.PathOf("station-01.crt"),
            "--client-key", clientCert?.Key ?? Pki.PathOf("station-01.key"),
            "--ca", Pki.PathOf("tls-ca.crt"), "--operator", "op-7", "--evidence", evidence, "--timeout", "15s",
        };
        args.AddRange(extra);
        return args;
    }

    public static async Task<StationRun> RunStationAsync(IEnumerable<string> args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = await StationCli.RunAsync(args.ToArray(), output, error);
        return new StationRun(code, output.ToString(), error.ToString());
    }

    public string NewEvidencePath() => Path.Combine(Scratch, Guid.NewGuid().ToString("N")[..8] + "-evidence.jsonl");

    public static List<JsonElement> ReadEvidence(string path) =>
        File.ReadAllLines(path).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    /// <summary>Asks a device for info directly (to see whether it was finalized).</summary>
    public static async Task<DeviceResponse> InfoAsync(string endpoint)
    {
        await using var link = await DeviceLink.OpenAsync(endpoint, TimeSpan.FromSeconds(15), CancellationToken.None);
        return await link.CallAsync("test", new DeviceRequest { Op = DeviceProtocol.Ops.Info }, CancellationToken.None);
    }
}

internal sealed record StationRun(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Output}\nstderr:\n{Error}";
}

/// <summary>A device-sim child process (started and killed by the test that owns it).</summary>
internal sealed class Simulator : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private Simulator(Process process, string endpoint)
    {
        _process = process;
        Endpoint = endpoint;
    }

    /// <summary>"tcp:127.0.0.1:PORT".</summary>
    public string Endpoint { get; private set; }

    public string Port => Endpoint[(Endpoint.LastIndexOf(':') + 1)..];

    public string Log
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString() + _stderr;
            }
        }
    }

    public static Simulator Start(string softhsmConf, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "device-sim.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["SOFTHSM2_CONF"] = softhsmConf;
        var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start device-sim");
        var sim = new Simulator(p, string.Empty);
        var ready = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                // WaitForExit() also waits for stderr to be drained, so the log is complete.
                _ = Task.Run(() =>
                {
                    p.WaitForExit();
                    ready.TrySetException(new InvalidOperationException("device-sim exited before listening: " + sim.Log));
                });
                return;
            }

            lock (sim._stdout)
            {
                sim._stdout.AppendLine(e.Data);
            }

            int i = e.Data.IndexOf("listening tcp:", StringComparison.Ordinal);
            if (i >= 0)
            {
                ready.TrySetResult(e.Data[(i + "listening ".Length)..].Split(' ')[0]);
            }
        };
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (sim._stdout)
                {
                    sim._stderr.AppendLine(e.Data);
                }
            }
        };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            sim.Endpoint = ready.Task.WaitAsync(TimeSpan.FromSeconds(60)).GetAwaiter().GetResult();
        }
        catch (Exception)
        {
            sim.Dispose();
            throw;
        }

        return sim;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
    }
}
