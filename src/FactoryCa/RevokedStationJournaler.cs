using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Policy;

namespace OfflinePki.FactoryCa;


/// <summary>
/// Journals station revocations not journaled yet (PolicyChanged): at startup (written while the daemon was stopped),
/// then every <see cref="Interval"/> (lines added to the file by hand while it runs, which the daemon already enforces).
/// </summary>
public sealed partial class RevokedStationJournaler(RevokedStationStore store, IJournalAppender journal, TimeProvider time,
    ILogger<RevokedStationJournaler> logger) : BackgroundService
{
    /// <summary>How often the revocation file is checked for entries not yet journaled.</summary>
    public static TimeSpan Interval { get; } = TimeSpan.FromSeconds(2);

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    foreach (var (fingerprint, seq) in await StationRevocation.JournalPendingAsync(journal, store, stoppingToken).ConfigureAwait(false))
                    {
                        LogJournaled(fingerprint, seq);
                    }
                }
                catch (Exception ex) when (ex is JournalUnavailableException or IOException or FormatException or UnauthorizedAccessException)
                {
                    LogFailed(ex.Message);
                }

                await Task.Delay(Interval, time, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "station certificate revocation journaled: sha256={Fingerprint} journal_seq={Seq}")]
    private partial void LogJournaled(string fingerprint, ulong seq);

    [LoggerMessage(EventId = 2, Level = LogLevel.Error, Message = "station certificate revocations not journaled yet (they are in force): {Reason}")]
    private partial void LogFailed(string reason);
}
