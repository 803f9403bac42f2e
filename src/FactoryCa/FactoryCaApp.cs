using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OfflinePki.Hosting;
using OfflinePki.Keys;
using OfflinePki.Issuance;
using OfflinePki.Journal;
using OfflinePki.Policy;

namespace OfflinePki.FactoryCa;

/// <summary>Builds the FactoryCa web host: options, issuance, station policy, journal seam, Kestrel mTLS, EST endpoints.</summary>
public static class FactoryCaApp
{
    /// <summary>Builds (does not start) the host from a JSON config file with a "FactoryCa" section.</summary>
    /// <param name="configPath">Path of the JSON file; relative paths inside resolve against its directory.</param>
    /// <param name="overrideServices">Runs after the default registrations; later registrations win (tests replace IJournalAppender here).</param>
    /// <param name="configure">Adjusts options after binding and path resolution (e.g. Est:Listen port 0 in tests).</param>
    /// <returns>The built application; call StartAsync/RunAsync.</returns>
    /// <exception cref="FileNotFoundException">The config file does not exist.</exception>
    /// <exception cref="OptionsValidationException">The configuration is invalid; each failure names its key.</exception>
    /// <exception cref="Keys.SigningKeyUnavailableException">The issuing CA key cannot be loaded.</exception>
    /// <exception cref="ArgumentException">The issuing CA key does not match its certificate.</exception>
    public static WebApplication Build(string configPath, Action<IServiceCollection>? overrideServices = null, Action<FactoryCaOptions>? configure = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(configPath);
        string fullPath = Path.GetFullPath(configPath);
        if (!File.Exists(fullPath))
        {
            throw new FileNotFoundException($"config file '{fullPath}' not found", fullPath);
        }

        // Issue 16 finding 7: everything the daemon creates is private to its user, whatever umask it was started with.
        PrivateFiles.Restrict();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = Path.GetDirectoryName(fullPath) });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddJsonFile(fullPath, optional: false, reloadOnChange: false);
        builder.Configuration.AddEnvironmentVariables("OFFLINEPKI_");

        if (!builder.Configuration.GetSection("Logging").Exists())
        {
            builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        }

        builder.Services.AddFactoryCaOptions(builder.Configuration, Path.GetDirectoryName(fullPath)!, configure);
        builder.Services.AddFactoryIssuance();
        builder.Services.AddFactoryStationPolicy();
        builder.Services.AddFactoryJournal(builder.Configuration);
        builder.Services.AddFactoryDevicePolicy(builder.Configuration);
        builder.Services.AddFactorySync(builder.Configuration, Path.GetDirectoryName(fullPath)!);
        builder.Services.AddFactoryOrders();
        builder.Services.AddFactoryEstListener();
        builder.Services.AddFactoryMonitoring(builder.Configuration);
        overrideServices?.Invoke(builder.Services);

        var app = builder.Build();

        // Fail at build time, not at the first request: options (with key names), CA key/cert, station list.
        try
        {
            _ = app.Services.GetRequiredService<IOptions<FactoryCaOptions>>().Value;
            _ = app.Services.GetRequiredService<ICertificateIssuer>();
            _ = app.Services.GetService<Orders.OrderBook>(); // rebuilt from the journal now, not at the first enrollment
            _ = app.Services.GetRequiredService<IStationAuthorizer>();

            _ = app.Services.GetRequiredService<JournalWriter>();
            _ = app.Services.GetRequiredService<Policy.DevicePolicy>(); // rebuilt from the journal now, not at the first request
        }
        catch
        {
            // Release what was opened before the failure (the journal and its writer lock, the index).
            app.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }

        app.MapEst();
        app.MapControl();
        app.MapFactoryMonitoring();
        // bind(2) creates the control socket 0777 & ~umask (0700): the socket is a file, 0600.
        app.Lifetime.ApplicationStarted.Register(() => PrivateFiles.EnsurePrivateFile(
            ControlEndpoints.SocketPath(app.Services.GetRequiredService<IOptions<FactoryCaOptions>>().Value.DataDirectory)));
        return app;
    }

    /// <summary>
    /// Kestrel: HTTPS on Est:Listen with the EST server certificate; a client certificate is requested and any is
    /// accepted at the TLS layer, so the application can answer a missing or foreign one with a clear 401/403.
    /// Request bodies are capped at Est:MaxRequestBytes.
    /// </summary>
    public static IServiceCollection AddFactoryEstListener(this IServiceCollection services)
    {
        services.TryAddSingleton<KeyHealthBoard>();
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<FactoryCaOptions>, KeyHealthBoard>((kestrel, factory, health) =>
        {
            var est = factory.Value.Est;
            if (!ListenAddress.TryParse(est.Listen, Uri.UriSchemeHttps, out var endpoint, out var error))
            {
                throw new OptionsValidationException(FactoryCaOptions.SectionName, typeof(FactoryCaOptions), [$"FactoryCa:Est:Listen: {error}"]);
            }

            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = est.MaxRequestBytes;

            // The local control socket (sync-now, status): filesystem permissions guard it, not TLS.
            PrivateFiles.EnsurePrivateDirectory(factory.Value.DataDirectory);
            string control = ControlEndpoints.SocketPath(factory.Value.DataDirectory);
            File.Delete(control);
            kestrel.ListenUnixSocket(control);
            kestrel.Listen(endpoint!, listen =>
            {
                listen.Protocols = HttpProtocols.Http1AndHttp2;
                var tls = TlsCertificateSource.Load($"{FactoryCaOptions.SectionName}:Est:ServerKey", est.ServerCertificate, est.ServerKey);
                health.Track($"{FactoryCaOptions.SectionName}:Est:ServerKey", tls, est.ServerKey);
                listen.UseHttps(https =>
                {
                    if (tls.IsPkcs11)
                    {
                        // Per handshake, so the key is probed and reopened after a failure (docs/hsm.md). No TLS resumption:
                        // .NET caches a resumable SSL_CTX per certificate, which would keep the engine key of before the outage.
                        https.ServerCertificateSelector = (_, _) => tls.Current;
                    }
                    else
                    {
                        https.ServerCertificate = tls.Current;
                    }

                    https.ClientCertificateMode = ClientCertificateMode.AllowCertificate;
                    https.AllowAnyClientCertificate();
                    // The handshake builds the client's chain offline: a client certificate's AIA URL is never fetched.
                    https.OnAuthenticate = (_, ssl) =>
                    {
                        ClientCertificateChains.ApplyOffline(ssl);
                        if (tls.IsPkcs11)
                        {
                            ssl.AllowTlsResume = false;
                        }
                    };
                });
            });
        });
        return services;
    }
}
