using System.Diagnostics;
using System.Net;
using System.Text.Json;
using NUnit.Framework;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Grpc.AspNetCore.Server.Model;
using OfflinePki.Hosting.Grpc;
using OfflinePki.Hosting.Sync;
using OfflinePki.Sync;
using OfflinePki.Sync.Grpc;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Sync;

/// <summary>A Kestrel server on 127.0.0.1:0 with the gRPC mTLS listener (grpc-dotnet) and caller-mapped services.</summary>
internal sealed class GrpcTestHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private GrpcTestHost(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }

    public Uri BaseAddress => new($"https://127.0.0.1:{Port}/");

    public static async Task<GrpcTestHost> StartAsync(TestPki pki, Action<IEndpointRouteBuilder> map, Action<IServiceCollection>? services = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var serverCert = pki.CertWithKey("mirror-sync-server");
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseGrpcMutualTls(serverCert)));
        builder.Services.AddGrpc(o => o.EnableDetailedErrors = false).AddServiceOptions<TestGrpcService>(o => o.Interceptors.Add<SyncErrorInterceptor>());
        builder.Services.AddSingleton<TestGrpcMethods>();
        builder.Services.AddSingleton<IServiceMethodProvider<TestGrpcService>>(sp => sp.GetRequiredService<TestGrpcMethods>());
        services?.Invoke(builder.Services);
        var app = builder.Build();
        map(app);
        if (app.Services.GetRequiredService<TestGrpcMethods>().Any)
        {
            app.MapGrpcService<TestGrpcService>();
        }

        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(20));
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new GrpcTestHost(app, new Uri(address).Port);
    }

    /// <summary>A host serving the production JournalSync service (and health) over <paramref name="applier"/>.</summary>
    public static Task<GrpcTestHost> StartSyncAsync(TestPki pki, SyncApplier applier, CallerIdentityPolicy? callers = null,
        Action<JournalSyncServiceOptions>? configure = null) =>
        StartAsync(pki, e => e.MapJournalSync(), s =>
        {
            s.AddSingleton(applier);
            s.AddJournalSyncService(_ => callers ?? SyncCallers(pki), configure is null ? null : (o, _) => configure(o));
        });

    public static CallerIdentityPolicy SyncCallers(TestPki pki) =>
        new("offlinepki.sync.v1.JournalSync", pki.Cert("tls-ca"), new Dictionary<string, string> { ["factory-F1-sync"] = "F1" });

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().WaitAsync(TimeSpan.FromSeconds(20));
        await _app.DisposeAsync();
    }
}

/// <summary>Runs testdata/grpc/grpc_peer.py with Debian's python3-grpcio.</summary>
internal static class PythonGrpc
{
    public const string Python = "/usr/bin/python3";

    public static string Script => Path.Combine(AppContext.BaseDirectory, "testdata", "grpc", "grpc_peer.py");

    public sealed record Outcome(string Code, string? Details, byte[]? Response);

    public static Outcome Call(TestPki pki, int port, string clientName, string kind, string path, TimeSpan timeout, params byte[][] requests)
    {
        var args = new List<string>
        {
            Script, "client", port.ToString(System.Globalization.CultureInfo.InvariantCulture), pki.Directory, clientName, kind, path,
            timeout.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        args.AddRange(requests.Select(Convert.ToHexString));
        var result = Tool.Run(Python, args, timeout: TimeSpan.FromSeconds(30)).EnsureSuccess("grpc_peer.py client");
        using var doc = JsonDocument.Parse(result.StdOut.Trim().Split('\n')[^1]);
        var root = doc.RootElement;
        return new Outcome(
            root.GetProperty("code").GetString()!,
            root.TryGetProperty("details", out var d) ? d.GetString() : null,
            root.TryGetProperty("response", out var r) ? Convert.FromHexString(r.GetString()!) : null);
    }

    /// <summary>Starts the python server; dispose to stop it.</summary>
    public static PythonServer StartServer(TestPki pki) => new(pki);

    public sealed class PythonServer : IDisposable
    {
        private readonly Process _process;

        public PythonServer(TestPki pki)
        {
            var psi = new ProcessStartInfo(Python)
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            psi.ArgumentList.Add(Script);
            psi.ArgumentList.Add("server");
            psi.ArgumentList.Add(pki.Directory);
            _process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start python3");
            var line = _process.StandardOutput.ReadLineAsync();
            if (!line.Wait(TimeSpan.FromSeconds(20)) || line.Result is null)
            {
                var err = _process.HasExited ? _process.StandardError.ReadToEnd() : "(still running)";
                Dispose();
                throw new InvalidOperationException("python grpc server did not report its port: " + err);
            }

            Port = int.Parse(line.Result.Trim(), System.Globalization.CultureInfo.InvariantCulture);
        }

        public int Port { get; }

        public void Dispose()
        {
            try
            {
                _process.StandardInput.Close();
                if (!_process.WaitForExit(TimeSpan.FromSeconds(5)))
                {
                    _process.Kill(entireProcessTree: true);
                }
            }
            finally
            {
                _process.Dispose();
            }
        }
    }
}

internal static class GrpcAssert
{
    public static async Task<GrpcException> ThrowsAsync(Func<Task> call)
    {
        try
        {
            await call();
        }
        catch (GrpcException e)
        {
            return e;
        }

        Assert.Fail("expected a GrpcException");
        return null!;
    }
}
