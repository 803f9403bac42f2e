using OfflinePki.Journal.V1;

namespace OfflinePki.Journal;

/// <summary>
/// A read-only <see cref="IJournalReader"/> over a journal file that no writer in this process holds (the CLI
/// <c>export</c> and <c>verify</c> of a stopped factory, tests). Opening scans the file once to find the head and build
/// a sparse seq → offset index (every 1024th seq); it decodes records but does not verify them: pair it with
/// <see cref="JournalChainVerifier"/> or <see cref="JournalFileVerifier"/>. An incomplete last record is ignored.
/// </summary>
public sealed class JournalFileReader : IJournalReader
{
    private const int IndexStride = 1024;
    private readonly IJournalStorage _storage;
    private readonly List<(ulong Seq, long Offset)> _index;
    private readonly long _length;

    private JournalFileReader(IJournalStorage storage, List<(ulong, long)> index, JournalHead head, long length)
    {
        _storage = storage;
        _index = index;
        Head = head;
        _length = length;
    }

    /// <inheritdoc />
    /// <remarks>The head found when the file was opened.</remarks>
    public JournalHead Head { get; }

    /// <summary>Opens <paramref name="journalPath"/> (journal.log or its directory) and scans it.</summary>
    /// <exception cref="ArgumentException"><paramref name="journalPath"/> is empty.</exception>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="JournalUnavailableException">Not a journal, or a record in the middle does not decode or breaks the seq order.</exception>
    public static JournalFileReader Open(string journalPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(journalPath);
        if (Directory.Exists(journalPath))
        {
            journalPath = Path.Combine(journalPath, JournalFileFormat.FileName);
        }

        if (!File.Exists(journalPath))
        {
            throw new FileNotFoundException($"journal file {journalPath} does not exist", journalPath);
        }

        var storage = new ReadOnlyFileStorage(Path.GetFullPath(journalPath));
        using var stream = storage.OpenRead();
        if (!JournalFileFormat.ReadMagic(stream, out _))
        {
            throw new JournalUnavailableException($"{journalPath} is not an OfflinePki journal (bad magic)");
        }

        var index = new List<(ulong, long)>();
        long offset = JournalFileFormat.Magic.Length;
        var buffer = new byte[4096];
        JournalEntry? last = null;
        while (true)
        {
            var status = JournalFileFormat.ReadRecord(stream, ref buffer, out var entry, out int length);
            if (status is JournalFileFormat.ReadStatus.End or JournalFileFormat.ReadStatus.ShortPrefix or JournalFileFormat.ReadStatus.ShortBody)
            {
                break;
            }

            ulong expected = (last?.Seq ?? 0) + 1;
            if (status != JournalFileFormat.ReadStatus.Ok || entry!.Seq != expected)
            {
                throw new JournalUnavailableException($"journal {journalPath}: record at byte offset {offset} is {(status == JournalFileFormat.ReadStatus.Ok ? $"seq {entry!.Seq}, expected {expected}" : status.ToString())}");
            }

            if (entry.Seq % IndexStride == 1)
            {
                index.Add((entry.Seq, offset));
            }

            offset += length;
            last = entry;
        }

        return new JournalFileReader(storage, index, last is null ? JournalHead.Empty : JournalCodec.HeadOf(last), offset);
    }

    /// <inheritdoc />
    /// <exception cref="JournalUnavailableException">(During enumeration) the file changed underneath or cannot be read.</exception>
    public IEnumerable<JournalEntry> ReadFrom(ulong firstSeq)
    {
        firstSeq = Math.Max(firstSeq, 1);
        if (firstSeq > Head.Seq)
        {
            return [];
        }

        var start = _index[0];
        foreach (var i in _index)
        {
            if (i.Seq > firstSeq)
            {
                break;
            }

            start = i;
        }

        return JournalWriter.ReadRange(_storage, start.Seq, start.Offset, firstSeq, Head.Seq, _length);
    }

    private sealed class ReadOnlyFileStorage(string path) : IJournalStorage
    {
        public string Path => path;
        public long Length => new FileInfo(path).Length;
        public void Append(ReadOnlySpan<byte> data) => throw new NotSupportedException("read-only journal");
        public void Flush() => throw new NotSupportedException("read-only journal");
        public void Truncate(long length) => throw new NotSupportedException("read-only journal");
        public Stream OpenRead() => new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16, FileOptions.SequentialScan);
        public void Dispose() { }
    }
}
