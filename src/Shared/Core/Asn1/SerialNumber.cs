using System.Security.Cryptography;

namespace OfflinePki.Asn1;

/// <summary>
/// The one normaliser for certificate serial numbers (RFC 5280 §4.1.2.2): positive, minimally encoded
/// big-endian two's-complement, at most 20 octets.
/// </summary>
public static class SerialNumber
{
    /// <summary>The longest serial RFC 5280 §4.1.2.2 allows, in octets.</summary>
    public const int MaxOctets = 20;

    /// <summary>
    /// Returns the minimal DER INTEGER content octets for a serial given as unsigned big-endian bytes.
    /// </summary>
    /// <exception cref="ArgumentException">The value is zero or longer than 20 octets once encoded.</exception>
    public static byte[] Normalize(ReadOnlySpan<byte> unsignedBigEndian)
    {
        int start = 0;
        while (start < unsignedBigEndian.Length && unsignedBigEndian[start] == 0)
        {
            start++;
        }

        var magnitude = unsignedBigEndian[start..];
        if (magnitude.IsEmpty)
        {
            throw new ArgumentException("A certificate serial number must be positive (RFC 5280 §4.1.2.2).", nameof(unsignedBigEndian));
        }

        bool needsPad = (magnitude[0] & 0x80) != 0;
        var result = new byte[magnitude.Length + (needsPad ? 1 : 0)];
        magnitude.CopyTo(result.AsSpan(needsPad ? 1 : 0));
        if (result.Length > MaxOctets)
        {
            throw new ArgumentException($"A certificate serial number is at most {MaxOctets} octets (RFC 5280 §4.1.2.2); got {result.Length}.", nameof(unsignedBigEndian));
        }

        return result;
    }

    /// <summary>Upper-case hex of the normalised serial, the form used in logs, the registry and the CLI.</summary>
    public static string ToHex(ReadOnlySpan<byte> serial) => Convert.ToHexString(serial);

    /// <summary>Parses hex (optionally with ':' separators or a 0x prefix) into a normalised serial.</summary>
    /// <exception cref="FormatException">Not hex.</exception>
    /// <exception cref="ArgumentException">Zero or too long.</exception>
    public static byte[] FromHex(string hex)
    {
        ArgumentNullException.ThrowIfNull(hex);
        var clean = hex.Trim().Replace(":", string.Empty, StringComparison.Ordinal);
        if (clean.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            clean = clean[2..];
        }

        if (clean.Length % 2 == 1)
        {
            clean = "0" + clean;
        }

        return Normalize(Convert.FromHexString(clean));
    }
}

/// <summary>Source of fresh certificate serial numbers; injected so tests can control it.</summary>
public interface ISerialNumberSource
{
    /// <summary>A new normalised serial (see <see cref="SerialNumber.Normalize"/>).</summary>
    byte[] Next();
}

/// <summary>
/// 127 bits from the OS CSPRNG (the CA/B Forum asks for at least 64), top bit cleared so the serial is
/// positive, encoded in at most 16 octets.
/// </summary>
public sealed class RandomSerialNumberSource : ISerialNumberSource
{
    /// <inheritdoc />
    public byte[] Next()
    {
        Span<byte> bytes = stackalloc byte[16];
        do
        {
            RandomNumberGenerator.Fill(bytes);
            bytes[0] &= 0x7F;
            bytes[0] |= 0x40; // keep the full 16-octet length so at least 64 bits are always present
        }
        while (bytes.IndexOfAnyExcept((byte)0) < 0);

        return SerialNumber.Normalize(bytes);
    }
}
