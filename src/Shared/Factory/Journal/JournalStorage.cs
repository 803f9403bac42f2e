using System.Runtime.InteropServices;
using OfflinePki.OpenSsl;

namespace OfflinePki.Journal;

/// <summary>
/// The narrow seam between <see cref="JournalWriter"/> and the journal file, so that tests can inject write and
/// fsync failures. One instance is bound to one file. Only the writer's flush stage calls <see cref="Append"/> and
/// <see cref="Flush"/>, one after the other on one thread; <see cref="Truncate"/> runs only during recovery.
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
/// <remarks>
/// <para><b>Preallocation.</b> An fsync that also has to record a new file size writes the inode as well as the
/// data, and on our disks costs about twice a data-only flush. So the file is kept <see cref="PreallocateBytes"/>
/// ahead of the last record with written zeros (not fallocate: unwritten extents would need a metadata update on
/// first write). <see cref="Flush"/> then uses fdatasync(2), which skips the inode when only timestamps changed, and a
/// full fsync(2) only after the zeros were extended. Readers treat the zero tail as the end of the journal
/// (<see cref="JournalFileFormat"/>); <see cref="Dispose"/> and <see cref="Truncate"/> cut it off.</para>
/// </remarks>
public sealed class FileJournalStorage : IJournalStorage
{
    /// <summary>Appended to the journal path to name the writer's lock file (e.g. <c>journal.log.lock</c>).</summary>
    public const string LockSuffix = ".lock";

    /// <summary>How far ahead of the last record the file is zero-filled, in bytes (4 MiB: one extension per few thousand entries, and well under the torn tail recovery accepts).</summary>
    public const int PreallocateBytes = 4 << 20;

    private static readonly byte[] Zeros = new byte[1 << 20];
    private readonly FileStream _stream;
    private readonly FileStream _lock;
    private long _allocated;
    private bool _extended;

    private FileJournalStorage(string path, FileStream stream, FileStream writerLock)
    {
        Path = path;
        _stream = stream;
        _lock = writerLock;
        Length = stream.Length;
        _allocated = Length;
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
    /// <remarks>
    /// pwrite(2) at the current end. When the records would reach past the zero-filled space, zeros are written up to
    /// <see cref="PreallocateBytes"/> past them, and the next <see cref="Flush"/> is a full fsync.
    /// </remarks>
    public void Append(ReadOnlySpan<byte> data)
    {
        long end = Length + data.Length;
        if (end > _allocated && !OperatingSystem.IsWindows())
        {
            long target = end + PreallocateBytes;
            for (long at = Math.Max(_allocated, end); at < target; at += Zeros.Length)
            {
                RandomAccess.Write(_stream.SafeFileHandle, Zeros.AsSpan(0, (int)Math.Min(Zeros.Length, target - at)), at);
            }

            _allocated = target;
            _extended = true;
        }

        RandomAccess.Write(_stream.SafeFileHandle, data, Length);
        Length = end;
        _allocated = Math.Max(_allocated, end);
    }

    /// <inheritdoc />
    /// <remarks>
    /// fdatasync(2) when the file size is unchanged since the last successful flush, else fsync(2); POSIX makes either
    /// cover every write that completed before it.
    /// </remarks>
    public void Flush()
    {
        if (_extended || OperatingSystem.IsWindows())
        {
            RandomAccess.FlushToDisk(_stream.SafeFileHandle);
            _extended = false;
            return;
        }

        bool added = false;
        _stream.SafeFileHandle.DangerousAddRef(ref added);
        try
        {
            if (Posix.Fdatasync((int)_stream.SafeFileHandle.DangerousGetHandle()) != 0)
            {
                throw new IOException($"fdatasync of {Path} failed (errno {Marshal.GetLastPInvokeError()})");
            }
        }
        finally
        {
            if (added)
            {
                _stream.SafeFileHandle.DangerousRelease();
            }
        }
    }

    /// <inheritdoc />
    /// <remarks>Also cuts off the preallocated zeros past <paramref name="length"/>.</remarks>
    public void Truncate(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        _stream.SetLength(length);
        _stream.Flush(flushToDisk: true);
        Length = length;
        _allocated = length;
    }

    /// <inheritdoc />
    public Stream OpenRead() => new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1 << 16, FileOptions.SequentialScan);

    /// <summary>Cuts off the preallocated zeros (so that a closed journal ends with its last record), then closes the file and its lock.</summary>
    public void Dispose()
    {
        try
        {
            if (_allocated > Length && _stream.CanWrite)
            {
                Truncate(Length);
            }
        }
        catch (IOException)
        {
            // The zeros stay; readers and the next open treat them as the end of the journal.
        }
        finally
        {
            _stream.Dispose();
            _lock.Dispose();
        }
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

        int fd = Posix.OpenReadOnly(directory);
        if (fd < 0)
        {
            throw new IOException($"cannot open directory {directory} to fsync it (errno {Marshal.GetLastPInvokeError()})");
        }

        try
        {
            if (Posix.Fsync(fd) != 0)
            {
                throw new IOException($"fsync of directory {directory} failed (errno {Marshal.GetLastPInvokeError()})");
            }
        }
        finally
        {
            _ = Posix.Close(fd);
        }
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
