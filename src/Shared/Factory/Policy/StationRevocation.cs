using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;

namespace OfflinePki.Policy;

/// <summary>
/// Local revocation of station certificates (<see cref="RevokedStationStore"/>): every revocation is journaled as a
/// PolicyChanged entry naming the fingerprint. The hosts wire it to the <c>revoke-station</c> verb, the control-socket
/// endpoint POST /control/revoke-station and the journaling of revocations written while the daemon was stopped.
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

    /// <summary>An <see cref="ArgumentException"/> message without its " (Parameter ...)" suffix, for one-line CLI and HTTP errors.</summary>
    public static string FirstLine(string message)
    {
        int i = message.IndexOf(" (Parameter", StringComparison.Ordinal);
        return i >= 0 ? message[..i] : message;
    }
}
