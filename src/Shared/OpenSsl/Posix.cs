using System.Runtime.InteropServices;

namespace OfflinePki.OpenSsl;

/// <summary>
/// The libc calls the journal's durability needs and .NET does not offer: fdatasync(2) of a file and fsync(2) of a
/// directory (POSIX.1-2008). Kept here because this is the one project with native calls.
/// </summary>
internal static class Posix
{
    /// <summary>open(2) with O_RDONLY; returns the descriptor or -1 (errno in <see cref="Marshal.GetLastPInvokeError"/>).</summary>
    internal static int OpenReadOnly(string path) => NativeMethods.open(path, 0 /* O_RDONLY */);

    /// <summary>fsync(2); 0 or -1.</summary>
    internal static int Fsync(int fd) => NativeMethods.fsync(fd);

    /// <summary>fdatasync(2); 0 or -1.</summary>
    internal static int Fdatasync(int fd) => NativeMethods.fdatasync(fd);

    /// <summary>close(2); 0 or -1.</summary>
    internal static int Close(int fd) => NativeMethods.close(fd);

    private static class NativeMethods
    {
#pragma warning disable SYSLIB1054, CA2101, CA5392 // plain libc calls
        [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false)]
        internal static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libc", SetLastError = true)]
        internal static extern int fsync(int fd);

        [DllImport("libc", SetLastError = true)]
        internal static extern int fdatasync(int fd);

        [DllImport("libc", SetLastError = true)]
        internal static extern int close(int fd);
#pragma warning restore SYSLIB1054, CA2101, CA5392
    }
}
