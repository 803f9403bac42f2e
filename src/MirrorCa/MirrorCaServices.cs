using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OfflinePki.Ocsp;
using OfflinePki.Registry;
using OfflinePki.Revocation;

namespace OfflinePki.MirrorCa;

/// <summary>Service registration for the mirror.</summary>
public static class MirrorCaServices
{
    /// <summary>
    /// Registers the options (bound from "MirrorCa", paths resolved against <paramref name="configDirectory"/>,
    /// validated on start), the registry (as <see cref="IJournalSink"/>, <see cref="IRevocationSource"/> and
    /// <see cref="IRevocationStore"/>), the loaded factories, the OCSP responder and the CRL refresher.
    /// </summary>
    public static IServiceCollection AddMirrorCa(this IServiceCollection services, IConfiguration configuration, string configDirectory)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<MirrorCaOptions>()
            .Bind(configuration.GetSection(MirrorCaOptions.SectionName))
            .PostConfigure(o => o.ResolvePaths(configDirectory))
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<MirrorCaOptions>, MirrorCaOptionsValidator>();
        // An older registry schema is migrated forward at start (and logged); a newer one stops the start.
        services.AddSingleton(sp => Cli.MigrateCommand.OpenRegistryForServe(sp.GetRequiredService<IOptions<MirrorCaOptions>>().Value.RegistryPath,
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>().CreateLogger("OfflinePki.Registry.Schema")));
        services.AddSingleton<IJournalSink>(sp => sp.GetRequiredService<MirrorRegistry>());
        services.AddSingleton<IRevocationSource>(sp => sp.GetRequiredService<MirrorRegistry>());
        services.AddSingleton<IRevocationStore>(sp => sp.GetRequiredService<MirrorRegistry>());
        services.AddSingleton<IOrderOutbox>(sp => sp.GetRequiredService<MirrorRegistry>());
        services.TryAddSingleton<Keys.KeyHealthBoard>();
        OfflinePki.Hosting.Keys.KeyHealthServiceCollectionExtensions.AddKeyHealthMonitor(services);
        services.AddSingleton<MirrorFactories>();
        services.AddMirrorOcsp();
        services.AddHostedService<CrlRefresher>();
        services.AddMirrorMonitoring();
        return services;
    }
}

/// <summary>
/// Builds every factory's CRL (and delta CRL) at start, then polls the registry's revocation counter (cheap) every
/// Crl:PollInterval so that revocations made by another process (the <c>revoke</c> CLI) are published without waiting
/// for a request, and a CRL is rebuilt once it is Crl:RefreshAfter old, well before its nextUpdate (Crl:Validity).
/// Every new CRL is also written to Crl:PublishDirectory (atomic rename) when set.
/// </summary>
public sealed partial class CrlRefresher : BackgroundService
{
    private readonly MirrorFactories _factories;
    private readonly TimeProvider _time;
    private readonly TimeSpan _interval;
    private readonly string _publishDirectory;
    private readonly ILogger<CrlRefresher> _logger;
    private readonly Dictionary<string, System.Numerics.BigInteger> _written = new(StringComparer.Ordinal);

    /// <summary>Creates the refresher.</summary>
    public CrlRefresher(MirrorFactories factories, IOptions<MirrorCaOptions> options, TimeProvider timeProvider, ILogger<CrlRefresher> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _factories = factories;
        _time = timeProvider;
        _interval = options.Value.Crl.PollInterval;
        _publishDirectory = options.Value.Crl.PublishDirectory;
        _logger = logger;
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_interval, _time);
        do
        {
            foreach (var f in _factories.All)
            {
                try
                {
                    var crl = f.Crl.GetCurrent();
                    LogCurrent(f.FactoryId, crl.CrlNumber.ToString(System.Globalization.CultureInfo.InvariantCulture), crl.EntryCount);
                    Publish(f.FactoryId + ".crl", crl);
                    if (f.Crl.DeltasEnabled)
                    {
                        Publish(f.FactoryId + "-delta.crl", f.Crl.GetCurrentDelta());
                    }

                    for (int k = 0; k < f.Partitions.Count; k++)
                    {
                        Publish(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{f.FactoryId}-p{k}.crl"), f.Partitions[k].GetCurrent());
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogFailed(ex, f.FactoryId);
                }
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    private void Publish(string fileName, OfflinePki.Crl.SignedCrl crl)
    {
        if (string.IsNullOrEmpty(_publishDirectory) || (_written.TryGetValue(fileName, out var n) && n == crl.CrlNumber))
        {
            return;
        }

        OfflinePki.Crl.CrlFiles.WriteAtomically(_publishDirectory, fileName, crl.Der);
        _written[fileName] = crl.CrlNumber;
        LogPublished(fileName, crl.CrlNumber.ToString(System.Globalization.CultureInfo.InvariantCulture), _publishDirectory);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "CRL for factory {FactoryId}: number {CrlNumber}, {Entries} entries")]
    private partial void LogCurrent(string factoryId, string crlNumber, long entries);

    [LoggerMessage(Level = LogLevel.Information, Message = "CRL {FileName} number {CrlNumber} written to {Directory}")]
    private partial void LogPublished(string fileName, string crlNumber, string directory);

    [LoggerMessage(Level = LogLevel.Error, Message = "CRL for factory {FactoryId} could not be built or published")]
    private partial void LogFailed(Exception ex, string factoryId);
}
