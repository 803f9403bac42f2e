using System.Runtime.InteropServices;

namespace OfflinePki.Journal;

/// <summary>
/// The narrow seam between <see cref="JournalWriter"/> and the journal file, so that tests can inject write and
/// fsync failures. One instance is bound to one file. The writer's encode stage calls <see cref="Append"/> while its
/// flush stage may be in <see cref="Flush"/> (one thread each); <see cref="Truncate"/> runs only during recovery.
/// </summary>
public interface IJournalStorage : IDisposable
{
    /// <summary>The file path, for messages and logs.</summary>
    string Path { get; }

    /// <summary>Current length of the file in bytes, including appended but not yet flushed bytes.</summary>
    long Length { get; }

    /// <summary>Writes <paramref name="data"/> at the end of the file (not yet durable).</summary>
    /// <exception cref="IOException">The write failed; part of <paramref name="data"/> may be in the file.</exception>
    void Append(ReadOnlySpan<byte> data);

    /// <summary>Makes durable (fsync) at least everything appended before the call began.</summary>
    /// <exception cref="IOException">The flush failed; nothing since the last successful flush may be relied on.</exception>
    void Flush();

    /// <summary>Cuts the file to <paramref name="length"/> bytes and makes that durable.</summary>
    /// <exception cref="IOException">The truncation failed.</exception>
    void Truncate(long length);

    /// <summary>Opens an independent read-only stream over the file (readers and recovery).</summary>
    /// <exception cref="IOException">The file cannot be opened.</exception>
    Stream OpenRead();
}

/// <summary>
/// <see cref="IJournalStorage"/> over a local file. Creating the file also fsyncs its directory (POSIX), so that a
/// new journal's directory entry survives a crash once its first records are flushed.
/// </summary>
public sealed class FileJournalStorage : IJournalStorage
{
    /// <summary>Appended to the journal path to name the writer's lock file (e.g. <c>journal.log.lock</c>).</summary>
    public const string LockSuffix = ".lock";

    private readonly FileStream _stream;
    private readonly FileStream _lock;

    private FileJournalStorage(string path, FileStream stream, FileStream writerLock)
    {
        Path = path;
        _stream = stream;
        _lock = writerLock;
        Length = stream.Length;
    }

    /// <summary>Opens <paramref name="path"/> for appending, creating it (and fsyncing its directory) if missing.</summary>
    /// <param name="path">The journal file path; its directory must exist.</param>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty.</exception>
    /// <exception cref="JournalInUseException">Another process writes the journal (its lock file <c>PATH.lock</c> is held).</exception>
    /// <exception cref="IOException">The file cannot be opened or created.</exception>
    /// <exception cref="UnauthorizedAccessException">No permission.</exception>
    public static FileJournalStorage Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        path = System.IO.Path.GetFullPath(path);
        bool existed = File.Exists(path);

        // One writer per journal, across processes (the daemon, sign-batch): an exclusive lock on a sidecar file, held
        // until Dispose and released by the OS if the process dies (flock(2) LOCK_EX on Unix, a share mode on Windows).
        // The journal file itself only takes a shared lock (FileShare.Read with write access), so it cannot be the guard.
        FileStream writerLock;
        try
        {
            writerLock = new FileStream(path + LockSuffix, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 0, FileOptions.None);
        }
        catch (IOException ex) when (ex is not FileNotFoundException and not DirectoryNotFoundException and not PathTooLongException)
        {
            throw new JournalInUseException($"journal {path} is open for writing by another process (its lock {path + LockSuffix} is held): "
                + "only one FactoryCa process (the daemon or sign-batch) may write a journal", ex);
        }

        FileStream? fs = null;
        try
        {
            // FileShare.Read: readers may open their own streams.
            fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0, FileOptions.None);
            if (!existed)
            {
                FsyncDirectory(System.IO.Path.GetDirectoryName(path)!);
            }
        }
        catch
        {
            fs?.Dispose();
            writerLock.Dispose();
            throw;
        }

        return new FileJournalStorage(path, fs, writerLock);
    }

    /// <inheritdoc />
    public string Path { get; }

    /// <inheritdoc />
    public long Length { get; private set; }

    /// <inheritdoc />
    /// <remarks>pwrite(2) at the current end: no shared file position, so a concurrent <see cref="Flush"/> is safe.</remarks>
    public void Append(ReadOnlySpan<byte> data)
    {
        RandomAccess.Write(_stream.SafeFileHandle, data, Length);
        Length += data.Length;
    }

    /// <inheritdoc />
    /// <remarks>fsync(2) on the file descriptor; POSIX makes it cover every write that completed before it.</remarks>
    public void Flush() => RandomAccess.FlushToDisk(_stream.SafeFileHandle);

    /// <inheritdoc />
    public void Truncate(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        _stream.SetLength(length);
        _stream.Flush(flushToDisk: true);
        Length = length;
    }

    /// <inheritdoc />
    public Stream OpenRead() => new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1 << 16, FileOptions.SequentialScan);

    /// <inheritdoc />
    public void Dispose()
    {
        _stream.Dispose();
        _lock.Dispose();
    }

    /// <summary>fsync(2) on a directory, so that a created or renamed entry in it is durable. No-op on Windows.</summary>
    /// <exception cref="IOException">open or fsync failed.</exception>
    public static void FsyncDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        int fd = NativeMethods.open(directory, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            throw new IOException($"cannot open directory {directory} to fsync it (errno {Marshal.GetLastPInvokeError()})");
        }

        try
        {
            if (NativeMethods.fsync(fd) != 0)
            {
                throw new IOException($"fsync of directory {directory} failed (errno {Marshal.GetLastPInvokeError()})");
            }
        }
        finally
        {
            _ = NativeMethods.close(fd);
        }
    }

    private static class NativeMethods
    {
#pragma warning disable SYSLIB1054, CA2101, CA5392 // plain libc calls; no unsafe code in this assembly
        [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false)]
        internal static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libc", SetLastError = true)]
        internal static extern int fsync(int fd);

        [DllImport("libc", SetLastError = true)]
        internal static extern int close(int fd);
#pragma warning restore SYSLIB1054, CA2101, CA5392
    }
}

/// <summary>Another process (the FactoryCa daemon, or sign-batch) holds the journal's writer lock; nothing was opened or changed.</summary>
public sealed class JournalInUseException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">Names the journal and its lock file.</param>
    /// <param name="inner">The sharing violation.</param>
    public JournalInUseException(string message, Exception? inner = null) : base(message, inner) { }
}
