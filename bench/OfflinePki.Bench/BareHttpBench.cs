using System.Globalization;
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
    /// <summary>Serves until the process is killed; returns 2 for bad arguments.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        int port = 0, bytes = 811;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--port": port = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--bytes": bytes = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                default:
                    await Console.Error.WriteLineAsync("usage: barehttp --port P [--bytes 811]").ConfigureAwait(false);
                    return 2;
            }
        }

        if (port <= 0)
        {
            await Console.Error.WriteLineAsync("usage: barehttp --port P [--bytes 811]").ConfigureAwait(false);
            return 2;
        }

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
