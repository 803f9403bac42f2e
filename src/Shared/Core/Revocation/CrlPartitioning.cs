using System.Buffers.Binary;
using System.Security.Cryptography;

namespace OfflinePki.Revocation;

/// <summary>
/// Partitioned CRLs (RFC 5280 §5.2.5 issuingDistributionPoint): a certificate belongs to partition
/// <c>SHA-256(serial octets)[0..4] (big-endian) mod N</c>, N = the number of partitions. The factory writes the
/// partition's URL into the certificate's cRLDistributionPoints; the mirror serves that partition's CRL at the same
/// URL with an issuingDistributionPoint naming it. Both sides use this one function.
/// </summary>
public static class CrlPartitioning
{
    /// <summary>Most partitions supported.</summary>
    public const int MaxPartitions = 4096;

    /// <summary>The partition (0..<paramref name="partitions"/>-1) of a certificate.</summary>
    /// <param name="serial">Normalised serial octets (as in the certificate's INTEGER).</param>
    /// <param name="partitions">Number of partitions, 1..<see cref="MaxPartitions"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="partitions"/> is out of range.</exception>
    public static int PartitionOf(ReadOnlySpan<byte> serial, int partitions)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(partitions, MaxPartitions);
        if (partitions == 1)
        {
            return 0;
        }

        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(serial, hash);
        return (int)(BinaryPrimitives.ReadUInt32BigEndian(hash) % (uint)partitions);
    }

    /// <summary>
    /// The URL of a partition's CRL, derived from the unpartitioned CRL URL: ".../F1.crl" becomes ".../F1-p{partition}.crl"
    /// (the ".crl" suffix is kept when present, else "-p{partition}" is appended).
    /// </summary>
    /// <param name="crlUrl">The unpartitioned CRL URL.</param>
    /// <param name="partition">Partition number, non-negative.</param>
    /// <exception cref="ArgumentNullException"><paramref name="crlUrl"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="partition"/> is negative.</exception>
    public static string PartitionUrl(string crlUrl, int partition)
    {
        ArgumentNullException.ThrowIfNull(crlUrl);
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        var suffix = "-p" + partition.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return crlUrl.EndsWith(".crl", StringComparison.Ordinal) ? crlUrl[..^4] + suffix + ".crl" : crlUrl + suffix;
    }
}
