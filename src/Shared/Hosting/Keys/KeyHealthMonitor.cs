using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OfflinePki.Keys;

namespace OfflinePki.Hosting.Keys;

/// <summary>
/// Checks every key on the daemon's <see cref="KeyHealthBoard"/> every <see cref="Interval"/> and logs each change:
/// a key that became unavailable (warning, with the reason naming its configuration key; never a PIN) and a key that is
/// back. Checking signs a probe through each PKCS#11 key, so a token that went away is noticed, and a key reopened,
/// even when no request uses it; a PKCS#11 module file that disappeared finalises the module (every key fails closed).
/// </summary>
public sealed class KeyHealthMonitor(KeyHealthBoard board, TimeProvider time, ILogger<KeyHealthMonitor> logger) : BackgroundService
{
    private readonly Dictionary<string, string?> _last = new(StringComparer.Ordinal);

    /// <summary>Time between checks (default 10 s).</summary>
    public static TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Runs one check now and logs changes since the previous one.</summary>
    /// <returns>The entries just checked.</returns>
    public IReadOnlyList<KeyHealthEntry> CheckOnce()
    {
        var entries = board.Check();
        lock (_last)
        {
            foreach (var e in entries)
            {
                bool known = _last.TryGetValue(e.ConfigKey, out var previous);
                if (!e.Available && (!known || previous != e.Reason))
                {
                    logger.LogWarning("key {ConfigKey} unavailable, signing with it is refused: {Reason}", e.ConfigKey, e.Reason);
                }
                else if (e.Available && known && previous is not null)
                {
                    logger.LogInformation("key {ConfigKey} available again", e.ConfigKey);
                }

                _last[e.ConfigKey] = e.Available ? null : e.Reason;
            }
        }

        return entries;
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        do
        {
            try
            {
                _ = CheckOnce();
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogError(ex, "key health check failed");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }
}

/// <summary>Registers the key status board and its monitor.</summary>
public static class KeyHealthServiceCollectionExtensions
{
    /// <summary>Adds <see cref="KeyHealthBoard"/> (if absent) and <see cref="KeyHealthMonitor"/> as a hosted service.</summary>
    /// <param name="services">The services.</param>
    /// <returns><paramref name="services"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> is null.</exception>
    public static IServiceCollection AddKeyHealthMonitor(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<KeyHealthBoard>();
        services.TryAddSingleton<KeyHealthMonitor>();
        services.AddHostedService(sp => sp.GetRequiredService<KeyHealthMonitor>());
        return services;
    }
}
