using Microsoft.Data.Sqlite;

namespace OfflinePki.Registry;

/// <summary>One issued certificate as the OCSP pre-signing index needs it: where it is in the registry and who issued it.</summary>
/// <param name="RowId">The registry row id (strictly increasing with insertion; the feed's cursor).</param>
/// <param name="IssuerKeyHash">20-octet SHA-1 issuerKeyHash (RFC 6960 §4.1.1).</param>
/// <param name="Serial">Normalised serial.</param>
public sealed record FeedCertificate(long RowId, byte[] IssuerKeyHash, byte[] Serial);

/// <summary>The read-only slice of the registry that the OCSP pre-signing index follows: certificates in insertion order.</summary>
public interface ICertificateFeed
{
    /// <summary>Certificates with a row id greater than <paramref name="afterRowId"/>, in row id order, at most <paramref name="limit"/>.</summary>
    /// <param name="afterRowId">The cursor: 0 for the start, else the last <see cref="FeedCertificate.RowId"/> seen.</param>
    /// <param name="limit">Maximum rows returned; positive.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is not positive.</exception>
    IReadOnlyList<FeedCertificate> ReadAfter(long afterRowId, int limit);

    /// <summary>
    /// A cheap change detector (no SQL): an opaque snapshot of the store's write-ahead-log header that changes with every
    /// commit of any process. Null when the store cannot offer one (then callers poll the version counters instead).
    /// </summary>
    ReadOnlyMemory<byte>? ChangeStamp();
}

/// <summary>
/// <see cref="ICertificateFeed"/> over the <see cref="MirrorRegistry"/> SQLite file, on its own read-only connections
/// (kept out of <see cref="MirrorRegistry"/> so that the registry's write paths stay untouched). The change stamp is
/// the first 48 octets of the SQLite WAL-index (<c>-shm</c>) header, whose change counter, frame count and salts move
/// with every commit (SQLite file format §4.5): one pread, no lock, valid across processes.
/// </summary>
public sealed class SqliteCertificateFeed : ICertificateFeed, IDisposable
{
    private const int StampLength = 48;
    private readonly string _connectionString;
    private readonly string _shmPath;
    private readonly Lock _gate = new();
    private Microsoft.Win32.SafeHandles.SafeFileHandle? _shm;

    /// <summary>Creates the feed over an existing registry file.</summary>
    /// <param name="databasePath">The registry's SQLite file (<see cref="MirrorRegistry.DatabasePath"/>).</param>
    /// <exception cref="ArgumentException"><paramref name="databasePath"/> is empty.</exception>
    public SqliteCertificateFeed(string databasePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(databasePath);
        _connectionString = new SqliteConnectionStringBuilder { DataSource = databasePath, Mode = SqliteOpenMode.ReadOnly, Pooling = true, DefaultTimeout = 30 }.ToString();
        _shmPath = databasePath + "-shm";
    }

    /// <inheritdoc />
    public IReadOnlyList<FeedCertificate> ReadAfter(long afterRowId, int limit)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        using var c = new SqliteConnection(_connectionString);
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT rowid, issuer_key_hash, serial FROM certificates WHERE rowid > $r ORDER BY rowid LIMIT $l";
        cmd.Parameters.AddWithValue("$r", afterRowId);
        cmd.Parameters.AddWithValue("$l", limit);
        using var r = cmd.ExecuteReader();
        var list = new List<FeedCertificate>();
        while (r.Read())
        {
            list.Add(new FeedCertificate(r.GetInt64(0), (byte[])r[1], (byte[])r[2]));
        }

        return list;
    }

    /// <inheritdoc />
    public ReadOnlyMemory<byte>? ChangeStamp()
    {
        var buffer = new byte[StampLength];
        try
        {
            var h = _shm;
            if (h is null)
            {
                lock (_gate)
                {
                    _shm ??= File.OpenHandle(_shmPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                    h = _shm;
                }
            }

            return RandomAccess.Read(h, buffer, 0) == StampLength ? buffer : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public void Dispose() => _shm?.Dispose();
}
