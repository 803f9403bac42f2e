namespace OfflinePki.Crl;

/// <summary>Writes CRLs to a publish directory for a static web server or CDN.</summary>
public static class CrlFiles
{
    /// <summary>
    /// Writes <paramref name="der"/> to <c>{directory}/{fileName}</c> atomically: a temporary file in the same directory
    /// is written and flushed to disk, then renamed over the target, so a reader sees the old or the new CRL, never a
    /// partial one.
    /// </summary>
    /// <param name="directory">The publish directory; created if missing.</param>
    /// <param name="fileName">File name without directory parts, e.g. "F1.crl".</param>
    /// <param name="der">The DER CRL.</param>
    /// <returns>The full path written.</returns>
    /// <exception cref="ArgumentException"><paramref name="fileName"/> is empty or has directory parts.</exception>
    /// <exception cref="IOException">The directory or file cannot be written.</exception>
    public static string WriteAtomically(string directory, string fileName, ReadOnlySpan<byte> der)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentException.ThrowIfNullOrEmpty(fileName);
        if (fileName != Path.GetFileName(fileName))
        {
            throw new ArgumentException($"'{fileName}' must be a plain file name", nameof(fileName));
        }

        Directory.CreateDirectory(directory);
        var target = Path.Combine(directory, fileName);
        var temp = Path.Combine(directory, "." + fileName + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                fs.Write(der);
                fs.Flush(flushToDisk: true);
            }

            File.Move(temp, target, overwrite: true);
            return target;
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }
}
