using System.CommandLine;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace OfflinePki.Bench;

/// <summary>
/// A peer, not a benchmark of ours: the bare Kestrel ceiling, a minimal-API endpoint that answers every <c>POST /ocsp</c>
/// with a fixed body. The OCSP benchmark runs it as its own process (<c>barehttp --port P --bytes 811</c>) with the
/// daemons' GC settings, until it is killed.
/// </summary>
public static class BareHttpBench
{
    /// <summary>The <c>barehttp --port P [--bytes 811]</c> verb.</summary>
    public static Command Command()
    {
        var port = BenchCli.Int("--port", 0, "Loopback port to listen on (required)", min: 1);
        port.DefaultValueFactory = null;
        port.Required = true;
        var bytes = BenchCli.Int("--bytes", 811, "Size of the fixed response body in bytes");
        return BenchCli.Verb("barehttp", "Peer for the ocsp bench: bare Kestrel answering every POST /ocsp with a fixed body, until killed", [port, bytes],
            p => RunAsync(p.GetValue(port), p.GetValue(bytes)));
    }

    /// <summary>Serves on 127.0.0.1:<paramref name="port"/> until the process is killed.</summary>
    public static async Task<int> RunAsync(int port, int bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(port);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        var body = new byte[bytes];
        RandomNumberGenerator.Fill(body);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        await using var app = builder.Build();
        app.MapPost("/ocsp", () => Results.Bytes(body, "application/ocsp-response"));
        await app.RunAsync().ConfigureAwait(false);
        return 0;
    }
}
