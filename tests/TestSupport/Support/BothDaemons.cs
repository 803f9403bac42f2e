using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OfflinePki.FactoryCa;
using OfflinePki.MirrorCa;
using OfflinePki.Sync;

namespace OfflinePki.Tests.Support;

/// <summary>
/// MirrorCa and FactoryCa on loopback from a <see cref="TestPki"/>'s generated configs, on free ports. The factory's
/// scheduled sync is off: tests sync on demand (SyncNowCommand.RunAsync), so they decide when the journal travels.
/// </summary>
public sealed class BothDaemons : IAsyncDisposable
{
    private BothDaemons(WebApplication mirror, WebApplication factory)
    {
        Mirror = mirror;
        Factory = factory;
        MirrorHttp = mirror.Urls.Single(u => u.StartsWith("http://", StringComparison.Ordinal)).TrimEnd('/');
        FactoryHttps = factory.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal)).TrimEnd('/');
        FactoryMetricsHttp = factory.Urls.SingleOrDefault(u => u.StartsWith("http://127.0.0.1:", StringComparison.Ordinal))?.TrimEnd('/');
    }

    /// <summary>The mirror.</summary>
    public WebApplication Mirror { get; }

    /// <summary>The factory.</summary>
    public WebApplication Factory { get; }

    /// <summary>The mirror's CRL/OCSP base URL, e.g. "http://127.0.0.1:40123".</summary>
    public string MirrorHttp { get; }

    /// <summary>The factory's loopback metrics listener (FactoryCa:Metrics:Listen), e.g. "http://127.0.0.1:40125", or null.</summary>
    public string? FactoryMetricsHttp { get; }

    /// <summary>The factory's EST base URL without the path, e.g. "https://127.0.0.1:40124".</summary>
    public string FactoryHttps { get; }

    /// <summary>Starts the mirror, then the factory pointed at the mirror's sync listener.</summary>
    /// <param name="pki">The generated PKI and configs.</param>
    /// <param name="adminListen">MirrorCa:Admin:Listen on a fixed port (e.g. "https://127.0.0.1:40125"), or null for no admin listener.</param>
    /// <param name="factoryServices">Extra factory service changes (after the sync settings), or null.</param>
    public static async Task<BothDaemons> StartAsync(TestPki pki, string? adminListen = null, Action<IServiceCollection>? factoryServices = null)
    {
        var mirror = MirrorCaApp.Build(pki.PathOf("mirrorca.json"), new Dictionary<string, string?>
        {
            ["MirrorCa:Http:Listen"] = "http://127.0.0.1:0",
            ["MirrorCa:Sync:Listen"] = "https://127.0.0.1:0",
            ["MirrorCa:Admin:Listen"] = adminListen ?? string.Empty,
        });
        await mirror.StartAsync();
        string mirrorSync = mirror.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal) && (adminListen is null || !u.StartsWith(adminListen, StringComparison.Ordinal)));
        var factory = FactoryCaApp.Build(pki.PathOf("factoryca.json"),
            services =>
            {
                services.PostConfigure<SyncOptions>(o =>
                {
                    // The sync server certificate names localhost.
                    o.MirrorUrl = mirrorSync.Replace("127.0.0.1", "localhost", StringComparison.Ordinal);
                    o.Enabled = false;
                });
                factoryServices?.Invoke(services);
            },
            o => o.Est.Listen = "https://127.0.0.1:0");
        await factory.StartAsync();
        return new BothDaemons(mirror, factory);
    }

    /// <summary>Stops the factory, then the mirror.</summary>
    public async ValueTask DisposeAsync()
    {
        await Factory.StopAsync();
        await Factory.DisposeAsync();
        await Mirror.StopAsync();
        await Mirror.DisposeAsync();
    }
}
