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

    /// <summary>Journals one revocation as PolicyChanged (policy_sha256 = SHA-256 of the summary) and marks it journaled.</summary>
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
            PolicySha256 = Google.Protobuf.ByteString.CopyFrom(SHA256.HashData(Encoding.UTF8.GetBytes(summary))),
            Summary = summary,
        }, cancellationToken).ConfigureAwait(false);
        store.MarkJournaled(entry.Sha256);
        return e.Seq;
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
            ulong? seq = null;
            if (store.PendingJournal().Any(p => p.Sha256 == entry.Sha256))
            {
                seq = await JournalAsync(journal, store, entry, cancellationToken).ConfigureAwait(false);
            }

            return Results.Json(new { fingerprint = entry.Sha256, added, journalSeq = seq });
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

/// <summary>At startup, journals the station revocations written while the daemon was stopped (PolicyChanged).</summary>
public sealed partial class RevokedStationJournaler(RevokedStationStore store, IJournalAppender journal, ILogger<RevokedStationJournaler> logger) : BackgroundService
{
    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        foreach (var entry in store.PendingJournal())
        {
            try
            {
                ulong seq = await StationRevocation.JournalAsync(journal, store, entry, stoppingToken).ConfigureAwait(false);
                LogJournaled(entry.Sha256, seq);
            }
            catch (JournalUnavailableException ex)
            {
                LogFailed(entry.Sha256, ex.Message);
                return;
            }
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "station certificate revocation journaled: sha256={Fingerprint} journal_seq={Seq}")]
    private partial void LogJournaled(string fingerprint, ulong seq);

    [LoggerMessage(EventId = 2, Level = LogLevel.Error, Message = "station certificate revocation not journaled (still in force): sha256={Fingerprint} reason={Reason}")]
    private partial void LogFailed(string fingerprint, string reason);
}
