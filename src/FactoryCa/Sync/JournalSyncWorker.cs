using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OfflinePki.Sync;

namespace OfflinePki.Hosting.Sync;

/// <summary>
/// Runs <see cref="JournalSyncClient.SyncOnceAsync"/> every <see cref="SyncOptions.Interval"/> (when
/// <see cref="SyncOptions.Enabled"/>) and whenever <see cref="RequestSync"/> is called. Failures are logged and
/// retried at the next tick; a fork stops the schedule until restart (an operator must look).
/// </summary>
public sealed class JournalSyncWorker : BackgroundService
{
    private readonly JournalSyncClient _client;
    private readonly IOptions<SyncOptions> _options;
    private readonly TimeProvider _time;
    private readonly ILogger<JournalSyncWorker> _logger;
    private readonly SemaphoreSlim _trigger = new(0, 1);

    /// <summary>Creates the worker.</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public JournalSyncWorker(JournalSyncClient client, IOptions<SyncOptions> options, TimeProvider timeProvider, ILogger<JournalSyncWorker> logger)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(logger);
        _client = client;
        _options = options;
        _time = timeProvider;
        _logger = logger;
    }

    /// <summary>The last successful sync and when it finished, or null.</summary>
    public (SyncResult Result, DateTimeOffset At)? LastSuccess { get; private set; }

    /// <summary>The last failure message (no secrets), or null after a success.</summary>
    public string? LastError { get; private set; }

    /// <summary>True once a fork was detected; the schedule then stops.</summary>
    public bool ForkDetected { get; private set; }

    /// <summary>Asks for a sync now (coalesced with any pending request).</summary>
    public void RequestSync()
    {
        try
        {
            _trigger.Release();
        }
        catch (SemaphoreFullException)
        {
            // A sync is already requested.
        }
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var options = _options.Value;
        try
        {
            while (!stoppingToken.IsCancellationRequested && !ForkDetected)
            {
                if (!options.Enabled)
                {
                    // Schedule off: sync on demand only.
                    await _trigger.WaitAsync(stoppingToken).ConfigureAwait(false);
                    await RunOnceAsync(stoppingToken).ConfigureAwait(false);
                    continue;
                }

                await RunOnceAsync(stoppingToken).ConfigureAwait(false);
                using var wake = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                var tick = Task.Delay(options.Interval, _time, wake.Token);
                var demand = _trigger.WaitAsync(wake.Token);
                await Task.WhenAny(tick, demand).ConfigureAwait(false);
                await wake.CancelAsync().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task RunOnceAsync(CancellationToken stoppingToken)
    {
        try
        {
            var result = await _client.SyncOnceAsync(stoppingToken).ConfigureAwait(false);
            LastSuccess = (result, _time.GetUtcNow());
            LastError = null;
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (JournalSyncException ex) when (ex.IsFork)
        {
            ForkDetected = true;
            LastError = ex.Message;
            _logger.LogCritical("journal sync stopped until restart: {Reason}", ex.Message);
        }
        catch (RpcException ex)
        {
            LastError = $"{ex.StatusCode}: {ex.Status.Detail}";
            _logger.LogWarning("journal sync failed, retrying in {Interval}: {Reason}", _options.Value.Interval, LastError);
        }
        catch (Exception ex) when (ex is JournalSyncException or OfflinePki.Journal.JournalUnavailableException)
        {
            LastError = ex.Message;
            _logger.LogWarning("journal sync failed, retrying in {Interval}: {Reason}", _options.Value.Interval, ex.Message);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LastError = "unexpected error: " + ex.GetType().Name;
            _logger.LogError(ex, "journal sync failed unexpectedly, retrying in {Interval}", _options.Value.Interval);
        }
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        _trigger.Dispose();
        base.Dispose();
    }
}
