using System.Runtime.InteropServices;

namespace OfflinePki.Hosting;

/// <summary>
/// A daemon's data is private to its user whatever umask it was started with: directories 0700, files and Unix
/// sockets 0600. <see cref="Restrict"/> sets the process umask to 077 at start-up, so every file the process creates
/// afterwards (the journal, SQLite's database and its -wal/-shm files, receipts, bundles, CRL and OCSP files,
/// exports, the control socket) is created private, including those created by native code (SQLite, Kestrel's socket
/// bind) that take no mode argument.
/// </summary>
public static class PrivateFiles
{
    /// <summary>The umask every daemon runs with: no group or other bits.</summary>
    public const int Umask = 0x3F; // 077 octal

    /// <summary>Sets the process umask to 077 (no effect on Windows).</summary>
    /// <returns>The previous umask, or -1 on Windows.</returns>
    public static int Restrict() => OperatingSystem.IsWindows() ? -1 : SetUmask(Umask);

    /// <summary>Creates <paramref name="directory"/> (and its parents) when missing and sets its mode to 0700.</summary>
    /// <param name="directory">A data directory.</param>
    /// <exception cref="ArgumentException"><paramref name="directory"/> is null or empty.</exception>
    /// <exception cref="IOException">The directory cannot be created or its mode cannot be set.</exception>
    /// <exception cref="UnauthorizedAccessException">The process may not create or change the directory.</exception>
    public static void EnsurePrivateDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
            return;
        }

        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>Sets <paramref name="path"/> (a file or a Unix socket) to 0600 when it exists.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="ArgumentException"><paramref name="path"/> is null or empty.</exception>
    /// <exception cref="IOException">The mode cannot be set.</exception>
    public static void EnsurePrivateFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!OperatingSystem.IsWindows() && Path.Exists(path))
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

#pragma warning disable SYSLIB1054, CA5392 // one plain libc call (umask(2) never fails)
    [DllImport("libc", EntryPoint = "umask")]
    private static extern int SetUmask(int mask);
#pragma warning restore SYSLIB1054, CA5392
}
