using System.Text;

namespace OfflinePki.Policy;

/// <summary>The station certificates revoked locally on the factory, by SHA-256 fingerprint of their DER.</summary>
public interface IRevokedStations
{
    /// <summary>True when the certificate with this fingerprint is revoked.</summary>
    /// <param name="sha256Hex">Lower- or upper-case hex SHA-256 of the certificate DER (64 characters).</param>
    bool IsRevoked(string sha256Hex);
}

/// <summary>One locally revoked station certificate.</summary>
/// <param name="Sha256">Lower-case hex SHA-256 of the certificate DER.</param>
/// <param name="RevokedAt">When it was revoked (UTC).</param>
/// <param name="Reason">Why, as the operator gave it (one line of printable ASCII, at most 200 characters).</param>
public sealed record RevokedStation(string Sha256, DateTimeOffset RevokedAt, string Reason);

/// <summary>
/// The file DataDirectory/revoked-stations: one line per revoked station certificate,
/// <c>&lt;sha256 hex&gt; &lt;unix seconds&gt; &lt;reason&gt;</c>, appended and fsynced before a revocation is acknowledged.
/// The daemon re-reads the file when it changes (checked at most once a second, on use), so a revocation written by
/// the CLI while the daemon runs takes effect without a restart; the control socket applies it at once.
/// A second file, revoked-stations.journaled, lists the fingerprints already journaled as PolicyChanged.
/// Fails closed: once the file cannot be read or parsed, every caller gets the error (never the list of before) until
/// a later read succeeds. Thread safe.
/// </summary>
public sealed class RevokedStationStore : IRevokedStations
{
    /// <summary>File name inside the data directory.</summary>
    public const string FileName = "revoked-stations";

    /// <summary>File name of the list of fingerprints already journaled.</summary>
    public const string JournaledFileName = "revoked-stations.journaled";

    /// <summary>Longest reason accepted, in characters.</summary>
    public const int MaxReasonLength = 200;

    private static readonly TimeSpan RecheckInterval = TimeSpan.FromSeconds(1);
    private readonly string _path;
    private readonly string _journaledPath;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private volatile Dictionary<string, RevokedStation> _entries = new(StringComparer.Ordinal);
    private DateTime _fileStamp;
    private long _fileLength = -1;
    private DateTimeOffset _checkedAt = DateTimeOffset.MinValue;

    // The last read failure, until a read succeeds: every caller fails closed with it, also within RecheckInterval.
    private volatile Exception? _failure;

    /// <summary>Opens (without creating) the store in <paramref name="dataDirectory"/> and reads the file if present.</summary>
    /// <param name="dataDirectory">FactoryCa:DataDirectory.</param>
    /// <param name="time">Clock for the re-read interval and revocation times.</param>
    /// <exception cref="ArgumentException"><paramref name="dataDirectory"/> is empty.</exception>
    /// <exception cref="FormatException">A line of the file is malformed; the message names the line.</exception>
    public RevokedStationStore(string dataDirectory, TimeProvider time)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        ArgumentNullException.ThrowIfNull(time);
        _path = Path.Combine(dataDirectory, FileName);
        _journaledPath = Path.Combine(dataDirectory, JournaledFileName);
        _time = time;
        Reload(force: true);
    }

    /// <summary>The file path.</summary>
    public string FilePath => _path;

    /// <summary>Every revoked certificate, in file order.</summary>
    public IReadOnlyCollection<RevokedStation> Entries
    {
        get
        {
            Reload(force: false);
            return _entries.Values;
        }
    }

    /// <inheritdoc />
    /// <exception cref="FormatException">The file is malformed (also for every call until it is read again successfully).</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public bool IsRevoked(string sha256Hex)
    {
        ArgumentNullException.ThrowIfNull(sha256Hex);
        Reload(force: false);
        return _entries.ContainsKey(sha256Hex.ToLowerInvariant());
    }

    /// <summary>Revokes a station certificate: appends and fsyncs the line, then applies it.</summary>
    /// <param name="sha256Hex">Hex SHA-256 of the certificate DER (64 hex characters, either case).</param>
    /// <param name="reason">Why (1..200 printable ASCII characters).</param>
    /// <returns>The entry, and false when it was already revoked (nothing is written then).</returns>
    /// <exception cref="ArgumentException">The fingerprint is not 64 hex characters, or the reason is empty, too long or not printable ASCII.</exception>
    /// <exception cref="IOException">The file cannot be written; nothing was revoked.</exception>
    public (RevokedStation Entry, bool Added) Revoke(string sha256Hex, string reason)
    {
        string fp = NormalizeFingerprint(sha256Hex);
        CheckReason(reason);
        lock (_lock)
        {
            Reload(force: true);
            if (_entries.TryGetValue(fp, out var existing))
            {
                return (existing, false);
            }

            var entry = new RevokedStation(fp, DateTimeOffset.FromUnixTimeSeconds(_time.GetUtcNow().ToUnixTimeSeconds()), reason);
            AppendLine(_path, $"{fp} {entry.RevokedAt.ToUnixTimeSeconds()} {reason}");
            Reload(force: true);
            return (entry, true);
        }
    }

    /// <summary>The revocations not yet journaled (see <see cref="MarkJournaled"/>).</summary>
    public IReadOnlyList<RevokedStation> PendingJournal()
    {
        var done = File.Exists(_journaledPath)
            ? File.ReadAllLines(_journaledPath).Select(l => l.Trim()).Where(l => l.Length > 0).ToHashSet(StringComparer.Ordinal)
            : [];
        return Entries.Where(e => !done.Contains(e.Sha256)).ToList();
    }

    /// <summary>Records that the revocation of <paramref name="sha256Hex"/> is in the journal (fsynced).</summary>
    /// <param name="sha256Hex">The fingerprint.</param>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public void MarkJournaled(string sha256Hex)
    {
        string fp = NormalizeFingerprint(sha256Hex);
        lock (_lock)
        {
            AppendLine(_journaledPath, fp);
        }
    }

    /// <summary>Lower-case hex of a 32-byte fingerprint; accepts upper case and colons (openssl -fingerprint style).</summary>
    /// <param name="sha256Hex">The fingerprint text.</param>
    /// <exception cref="ArgumentException">Not 64 hex digits.</exception>
    public static string NormalizeFingerprint(string sha256Hex)
    {
        ArgumentNullException.ThrowIfNull(sha256Hex);
        string fp = sha256Hex.Replace(":", string.Empty, StringComparison.Ordinal).Trim().ToLowerInvariant();
        if (fp.StartsWith("sha256=", StringComparison.Ordinal))
        {
            fp = fp["sha256=".Length..];
        }

        if (fp.Length != 64 || !fp.All(char.IsAsciiHexDigit))
        {
            throw new ArgumentException($"'{sha256Hex}' is not a SHA-256 fingerprint (64 hex digits)", nameof(sha256Hex));
        }

        return fp;
    }

    private static void CheckReason(string reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        if (reason.Length is 0 or > MaxReasonLength || reason.Any(c => c is < (char)0x20 or > (char)0x7E))
        {
            throw new ArgumentException($"reason must be 1-{MaxReasonLength} printable ASCII characters on one line", nameof(reason));
        }
    }

    private static void AppendLine(string path, string line)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var fs = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        fs.Write(Encoding.ASCII.GetBytes(line + "\n"));
        fs.Flush(flushToDisk: true);
    }

    private void Reload(bool force)
    {
        var now = _time.GetUtcNow();
        if (!force && now - _checkedAt < RecheckInterval)
        {
            ThrowIfFailed();
            return;
        }

        lock (_lock)
        {
            // _checkedAt moves only once the outcome is known, so that no caller skips the read meanwhile.
            try
            {
                Read(force);
                _failure = null;
                _checkedAt = now;
            }
            catch (Exception ex) when (ex is FormatException or IOException or UnauthorizedAccessException)
            {
                // Fail closed until a read succeeds: the entries of before may be missing a revocation.
                _failure = ex;
                _checkedAt = now;
                throw;
            }
        }
    }

    private void ThrowIfFailed()
    {
        switch (_failure)
        {
            case null:
                return;
            case FormatException f:
                throw new FormatException(f.Message, f);
            case UnauthorizedAccessException u:
                throw new UnauthorizedAccessException(u.Message, u);
            case var other:
                throw new IOException(other.Message, other);
        }
    }

    private void Read(bool force)
    {
        var info = new FileInfo(_path);
        if (!info.Exists)
        {
            _entries = new Dictionary<string, RevokedStation>(StringComparer.Ordinal);
            _fileLength = -1;
            return;
        }

        if (!force && _failure is null && info.LastWriteTimeUtc == _fileStamp && info.Length == _fileLength)
        {
            return;
        }

        var map = new Dictionary<string, RevokedStation>(StringComparer.Ordinal);
        int n = 0;
        foreach (var raw in File.ReadAllLines(_path))
        {
            n++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var parts = line.Split(' ', 3);
            if (parts.Length < 2 || !long.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long secs))
            {
                throw new FormatException($"{_path} line {n}: expected '<sha256 hex> <unix seconds> <reason>'");
            }

            string fp;
            try
            {
                fp = NormalizeFingerprint(parts[0]);
            }
            catch (ArgumentException ex)
            {
                throw new FormatException($"{_path} line {n}: {ex.Message}", ex);
            }

            map.TryAdd(fp, new RevokedStation(fp, DateTimeOffset.FromUnixTimeSeconds(secs), parts.Length > 2 ? parts[2] : string.Empty));
        }

        _entries = map;
        _fileStamp = info.LastWriteTimeUtc;
        _fileLength = info.Length;
    }
}
