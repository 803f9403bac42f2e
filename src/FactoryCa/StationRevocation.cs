using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Policy;

namespace OfflinePki.FactoryCa;

/// <summary>
/// Local revocation of station certificates: the <c>revoke-station</c> CLI verb, the control-socket endpoint
/// POST /control/revoke-station, and the startup journaling of revocations written while the daemon was stopped.
/// Every revocation is journaled as a PolicyChanged entry naming the fingerprint.
/// </summary>
public static class StationRevocation
{
    /// <summary>The PolicyChanged summary for a revocation (no secrets: a fingerprint and the operator's reason).</summary>
    /// <param name="entry">The revocation.</param>
    public static string Summary(RevokedStation entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return $"station certificate revoked: sha256={entry.Sha256} at={entry.RevokedAt:O} reason={entry.Reason}";
    }

    /// <summary>Journals one revocation as PolicyChanged (policy_sha256 = SHA-256 of the revoked-stations file) and marks it journaled.</summary>
    /// <param name="journal">The journal.</param>
    /// <param name="store">The store.</param>
    /// <param name="entry">The revocation.</param>
    /// <param name="cancellationToken">Cancels waiting for the journal.</param>
    /// <returns>The journal seq.</returns>
    /// <exception cref="JournalUnavailableException">The journal cannot be written; the revocation stays in force and pending.</exception>
    public static async Task<ulong> JournalAsync(IJournalAppender journal, RevokedStationStore store, RevokedStation entry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(journal);
        ArgumentNullException.ThrowIfNull(store);
        string summary = Summary(entry);
        var e = await journal.AppendAsync(EntryType.PolicyChanged, new PolicyChanged
        {
            // The digest of the revocation list as it now stands (the policy state this change produced).
            PolicySha256 = Google.Protobuf.ByteString.CopyFrom(File.Exists(store.FilePath)
                ? SHA256.HashData(File.ReadAllBytes(store.FilePath)) : SHA256.HashData(Encoding.UTF8.GetBytes(summary))),
            Summary = summary,
        }, cancellationToken).ConfigureAwait(false);
        store.MarkJournaled(entry.Sha256);
        return e.Seq;
    }

    private static readonly SemaphoreSlim JournalLock = new(1, 1);

    /// <summary>
    /// Journals every revocation not journaled yet (written through the control socket, by the CLI while the daemon was
    /// stopped, or into the file by hand), one PolicyChanged each, one caller at a time so none is journaled twice.
    /// </summary>
    /// <param name="journal">The journal.</param>
    /// <param name="store">The store.</param>
    /// <param name="cancellationToken">Cancels waiting.</param>
    /// <returns>The journal seq of each revocation journaled now, by fingerprint.</returns>
    /// <exception cref="JournalUnavailableException">The journal cannot be written; the rest stay pending (and in force).</exception>
    public static async Task<IReadOnlyDictionary<string, ulong>> JournalPendingAsync(IJournalAppender journal, RevokedStationStore store, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        var done = new Dictionary<string, ulong>(StringComparer.Ordinal);
        await JournalLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var entry in store.PendingJournal())
            {
                done[entry.Sha256] = await JournalAsync(journal, store, entry, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            JournalLock.Release();
        }

        return done;
    }

    /// <summary>POST /control/revoke-station?fingerprint=..&amp;reason=..: revokes (durably), journals, and answers JSON.</summary>
    internal static async Task<IResult> RevokeAsync(HttpRequest request, RevokedStationStore store, IJournalAppender journal, CancellationToken cancellationToken)
    {
        string fingerprint = request.Query["fingerprint"].FirstOrDefault() ?? string.Empty;
        string reason = request.Query["reason"].FirstOrDefault() ?? string.Empty;
        RevokedStation entry;
        bool added;
        try
        {
            (entry, added) = store.Revoke(fingerprint, reason);
        }
        catch (ArgumentException ex)
        {
            return Results.Text(FirstLine(ex.Message) + "\n", statusCode: StatusCodes.Status400BadRequest);
        }

        try
        {
            var seqs = await JournalPendingAsync(journal, store, cancellationToken).ConfigureAwait(false);
            return Results.Json(new { fingerprint = entry.Sha256, added, journalSeq = seqs.TryGetValue(entry.Sha256, out var seq) ? seq : (ulong?)null });
        }
        catch (JournalUnavailableException ex)
        {
            return Results.Text($"revoked (in force, in {store.FilePath}) but not journaled yet: {ex.Message}\n", statusCode: StatusCodes.Status503ServiceUnavailable);
        }
    }

    /// <summary>
    /// revoke-station: with the daemon running, through its control socket (in force at once, journaled at once);
    /// otherwise written to DataDirectory/revoked-stations and journaled when the daemon next starts.
    /// Exit codes: 0 revoked (or already revoked), 1 failed, 2 bad arguments.
    /// </summary>
    /// <param name="configPath">The FactoryCa config.</param>
    /// <param name="fingerprint">Hex SHA-256 of the station certificate DER, or null when <paramref name="certPath"/> is given.</param>
    /// <param name="certPath">PEM or DER station certificate, or null.</param>
    /// <param name="reason">Why (1-200 printable ASCII characters).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public static async Task<int> CliAsync(string configPath, string? fingerprint, string? certPath, string reason, CancellationToken cancellationToken)
    {
        if ((fingerprint is null) == (certPath is null))
        {
            Console.Error.WriteLine("give exactly one of --fingerprint <sha256 hex> or --cert <station certificate file>");
            return 2;
        }

        string fp;
        try
        {
            if (certPath is not null)
            {
                using var cert = X509CertificateLoader.LoadCertificateFromFile(certPath);
                fp = Convert.ToHexStringLower(SHA256.HashData(cert.RawData));
            }
            else
            {
                fp = RevokedStationStore.NormalizeFingerprint(fingerprint!);
            }
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"revoke-station: {FirstLine(ex.Message)}");
            return 2;
        }

        string data = FactoryCli.DataDirectoryOf(configPath);
        using (var client = ControlEndpoints.CreateClient(data))
        {
            try
            {
                var uri = new Uri($"control/revoke-station?fingerprint={fp}&reason={Uri.EscapeDataString(reason)}", UriKind.Relative);
                using var response = await client.PostAsync(uri, null, cancellationToken).ConfigureAwait(false);
                string body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    Console.WriteLine(body);
                    return 0;
                }

                Console.Error.Write(body);
                return response.StatusCode == System.Net.HttpStatusCode.BadRequest ? 2 : 1;
            }
            catch (HttpRequestException)
            {
                // Daemon not running: write the file; the daemon journals it when it starts.
            }
        }

        try
        {
            var (entry, added) = new RevokedStationStore(data, TimeProvider.System).Revoke(fp, reason);
            Console.WriteLine($"station certificate sha256={entry.Sha256} {(added ? "revoked" : "was already revoked")} in {Path.Combine(data, RevokedStationStore.FileName)}; the daemon is not running: it refuses the certificate and journals the change when it starts");
            return 0;
        }
        catch (ArgumentException ex)
        {
            Console.Error.WriteLine($"revoke-station: {FirstLine(ex.Message)}");
            return 2;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            Console.Error.WriteLine($"revoke-station: cannot write the revocation file: {ex.Message}");
            return 1;
        }
    }

    private static string FirstLine(string message)
    {
        int i = message.IndexOf(" (Parameter", StringComparison.Ordinal);
        return i >= 0 ? message[..i] : message;
    }
}

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
