using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Google.Protobuf;

namespace OfflinePki.Sync.Grpc;

/// <summary>
/// Names and constants of the gRPC over HTTP/2 wire protocol (PROTOCOL-HTTP2.md).
/// </summary>
public static class GrpcProtocol
{
    /// <summary>The request and response content type.</summary>
    public const string ContentType = "application/grpc";

    /// <summary>Response trailer (or trailers-only header) carrying the decimal status code.</summary>
    public const string StatusHeader = "grpc-status";

    /// <summary>Response trailer carrying the percent-encoded status message.</summary>
    public const string MessageHeader = "grpc-message";

    /// <summary>Request header carrying the call timeout (see <see cref="GrpcTimeout"/>).</summary>
    public const string TimeoutHeader = "grpc-timeout";

    /// <summary>Header naming the message compression; we negotiate none ("identity").</summary>
    public const string EncodingHeader = "grpc-encoding";

    /// <summary>Header listing the compressions a peer accepts; we send "identity".</summary>
    public const string AcceptEncodingHeader = "grpc-accept-encoding";

    /// <summary>The default limit on one message, in bytes (4 MiB, as in grpc-core).</summary>
    public const int DefaultMaxMessageBytes = 4 * 1024 * 1024;

    /// <summary>The user agent our client sends.</summary>
    public const string UserAgent = "offlinepki-grpc/1.0";

    /// <summary>True if <paramref name="contentType"/> is application/grpc or application/grpc+proto (or ;params).</summary>
    public static bool IsGrpcContentType(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType))
        {
            return false;
        }

        var semi = contentType.IndexOf(';', StringComparison.Ordinal);
        var media = (semi >= 0 ? contentType[..semi] : contentType).Trim();
        return media.Equals(ContentType, StringComparison.OrdinalIgnoreCase)
            || media.Equals(ContentType + "+proto", StringComparison.OrdinalIgnoreCase);
    }
}

/// <summary>
/// Length-prefixed message framing (gRPC over HTTP/2, PROTOCOL-HTTP2.md, "Length-Prefixed-Message"):
/// a 1-byte compressed flag, a 4-byte big-endian unsigned length, then the serialized protobuf.
/// We always send the flag 0 and negotiate no <c>grpc-encoding</c>, so a received flag 1 is refused
/// with <see cref="GrpcStatusCode.Unimplemented"/>.
/// </summary>
public static class GrpcFraming
{
    /// <summary>Bytes in the frame prefix (flag + length).</summary>
    public const int PrefixLength = 5;

    /// <summary>Serializes <paramref name="message"/> into one frame and writes it (no flush).</summary>
    /// <param name="stream">Destination (an HTTP/2 request or response body).</param>
    /// <param name="message">The message.</param>
    /// <param name="maxMessageBytes">Largest serialized message allowed, in bytes.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <exception cref="GrpcException"><see cref="GrpcStatusCode.ResourceExhausted"/>: the message exceeds <paramref name="maxMessageBytes"/>.</exception>
    public static async ValueTask WriteMessageAsync(Stream stream, IMessage message, int maxMessageBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(message);
        var frame = Encode(message, maxMessageBytes);
        await stream.WriteAsync(frame, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Returns one complete frame (prefix and message) for <paramref name="message"/>.</summary>
    /// <exception cref="GrpcException"><see cref="GrpcStatusCode.ResourceExhausted"/>: the message exceeds <paramref name="maxMessageBytes"/>.</exception>
    public static byte[] Encode(IMessage message, int maxMessageBytes)
    {
        ArgumentNullException.ThrowIfNull(message);
        var size = message.CalculateSize();
        if (size > maxMessageBytes)
        {
            throw new GrpcException(GrpcStatusCode.ResourceExhausted,
                $"message of {size} bytes exceeds the maximum of {maxMessageBytes} bytes");
        }

        var frame = new byte[PrefixLength + size];
        frame[0] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1, 4), (uint)size);
        message.WriteTo(frame.AsSpan(PrefixLength));
        return frame;
    }

    /// <summary>Returns one complete uncompressed frame around already-serialized bytes.</summary>
    /// <exception cref="GrpcException"><see cref="GrpcStatusCode.ResourceExhausted"/>: the payload exceeds <paramref name="maxMessageBytes"/>.</exception>
    public static byte[] Encode(ReadOnlySpan<byte> serialized, int maxMessageBytes)
    {
        if (serialized.Length > maxMessageBytes)
        {
            throw new GrpcException(GrpcStatusCode.ResourceExhausted,
                $"message of {serialized.Length} bytes exceeds the maximum of {maxMessageBytes} bytes");
        }

        var frame = new byte[PrefixLength + serialized.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1, 4), (uint)serialized.Length);
        serialized.CopyTo(frame.AsSpan(PrefixLength));
        return frame;
    }

    /// <summary>
    /// Reads one frame and returns the serialized message, or null at a clean end of stream (before any
    /// byte of a new frame).
    /// </summary>
    /// <param name="stream">Source (an HTTP/2 request or response body).</param>
    /// <param name="maxMessageBytes">Largest message accepted, in bytes; checked before reading the body.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <exception cref="GrpcException">
    /// <see cref="GrpcStatusCode.ResourceExhausted"/>: the declared length exceeds <paramref name="maxMessageBytes"/>;
    /// <see cref="GrpcStatusCode.Unimplemented"/>: the message is compressed (flag 1);
    /// <see cref="GrpcStatusCode.Internal"/>: a bad flag, or the stream ends inside a frame.
    /// </exception>
    public static async ValueTask<byte[]?> ReadMessageAsync(Stream stream, int maxMessageBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var prefix = new byte[PrefixLength];
        var got = await ReadAtLeastAsync(stream, prefix, cancellationToken).ConfigureAwait(false);
        if (got == 0)
        {
            return null;
        }

        if (got < PrefixLength)
        {
            throw new GrpcException(GrpcStatusCode.Internal, "the stream ended inside a gRPC message prefix");
        }

        switch (prefix[0])
        {
            case 0:
                break;
            case 1:
                throw new GrpcException(GrpcStatusCode.Unimplemented,
                    "received a compressed message, but no grpc-encoding was negotiated (only identity is supported)");
            default:
                throw new GrpcException(GrpcStatusCode.Internal, $"invalid gRPC message flag 0x{prefix[0]:x2}");
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(prefix.AsSpan(1));
        if (length > (uint)maxMessageBytes)
        {
            throw new GrpcException(GrpcStatusCode.ResourceExhausted,
                $"received message of {length} bytes exceeds the maximum of {maxMessageBytes} bytes");
        }

        var body = new byte[length];
        if (await ReadAtLeastAsync(stream, body, cancellationToken).ConfigureAwait(false) < body.Length)
        {
            throw new GrpcException(GrpcStatusCode.Internal, $"the stream ended inside a gRPC message of {length} bytes");
        }

        return body;
    }

    /// <summary>Reads frames until the end of stream and parses each with <paramref name="parser"/>.</summary>
    /// <exception cref="GrpcException">As <see cref="ReadMessageAsync"/>; <paramref name="parseFailure"/> when a message does not parse.</exception>
    public static async IAsyncEnumerable<T> ReadMessagesAsync<T>(Stream stream, MessageParser<T> parser, int maxMessageBytes,
        GrpcStatusCode parseFailure, [EnumeratorCancellation] CancellationToken cancellationToken = default)
        where T : IMessage<T>
    {
        ArgumentNullException.ThrowIfNull(parser);
        while (true)
        {
            var bytes = await ReadMessageAsync(stream, maxMessageBytes, cancellationToken).ConfigureAwait(false);
            if (bytes is null)
            {
                yield break;
            }

            yield return Parse(parser, bytes, parseFailure);
        }
    }

    /// <summary>Parses a message, mapping a protobuf failure to <paramref name="failure"/>.</summary>
    /// <exception cref="GrpcException"><paramref name="failure"/>: the bytes are not a valid message.</exception>
    public static T Parse<T>(MessageParser<T> parser, byte[] bytes, GrpcStatusCode failure)
        where T : IMessage<T>
    {
        ArgumentNullException.ThrowIfNull(parser);
        try
        {
            return parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new GrpcException(failure, $"message is not a valid {typeof(T).Name}: {ex.Message}", ex);
        }
    }

    private static async ValueTask<int> ReadAtLeastAsync(Stream stream, byte[] buffer, CancellationToken cancellationToken)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(total), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }

            total += n;
        }

        return total;
    }
}

/// <summary>
/// The <c>grpc-timeout</c> header (gRPC over HTTP/2, PROTOCOL-HTTP2.md): "Timeout → TimeoutValue TimeoutUnit",
/// at most 8 ASCII digits, unit H (hours), M (minutes), S (seconds), m (milliseconds), u (microseconds),
/// n (nanoseconds).
/// </summary>
public static class GrpcTimeout
{
    /// <summary>Largest TimeoutValue (8 digits).</summary>
    public const long MaxValue = 99_999_999;

    /// <summary>Parses a header value. Returns false for anything malformed (empty, &gt; 8 digits, bad unit).</summary>
    public static bool TryParse(string? value, out TimeSpan timeout)
    {
        timeout = default;
        if (value is null || value.Length < 2 || value.Length > 9)
        {
            return false;
        }

        var digits = value.AsSpan(0, value.Length - 1);
        foreach (var c in digits)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }

        var n = long.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);
        timeout = value[^1] switch
        {
            'H' => TimeSpan.FromHours(n),
            'M' => TimeSpan.FromMinutes(n),
            'S' => TimeSpan.FromSeconds(n),
            'm' => TimeSpan.FromMilliseconds(n),
            'u' => TimeSpan.FromTicks(n * 10),
            'n' => TimeSpan.FromTicks(n / 100),
            _ => TimeSpan.MinValue,
        };
        return timeout != TimeSpan.MinValue;
    }

    /// <summary>
    /// Formats a timeout with the finest unit whose value fits in 8 digits, rounding up so the peer's
    /// deadline is never earlier than ours. Non-positive values format as "0n" ... "1n" (already expired).
    /// </summary>
    public static string Format(TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero)
        {
            return "1n";
        }

        // Ticks are 100 ns.
        var ticks = timeout.Ticks;
        if (ticks <= MaxValue / 100)
        {
            return (ticks * 100).ToString(CultureInfo.InvariantCulture) + "n";
        }

        (long perUnit, char unit)[] units =
        [
            (10, 'u'), (TimeSpan.TicksPerMillisecond, 'm'), (TimeSpan.TicksPerSecond, 'S'),
            (TimeSpan.TicksPerMinute, 'M'), (TimeSpan.TicksPerHour, 'H'),
        ];
        foreach (var (perUnit, unit) in units)
        {
            var v = (ticks + perUnit - 1) / perUnit;
            if (v <= MaxValue)
            {
                return v.ToString(CultureInfo.InvariantCulture) + unit;
            }
        }

        return MaxValue.ToString(CultureInfo.InvariantCulture) + "H";
    }
}

/// <summary>
/// Percent-encoding of the <c>grpc-message</c> value (gRPC over HTTP/2, PROTOCOL-HTTP2.md): the UTF-8 bytes of
/// the message, with every byte outside 0x20-0x7E, and '%' itself, written as "%XX" (upper-case hex).
/// </summary>
public static class GrpcMessageEncoding
{
    /// <summary>Encodes a status message for the wire.</summary>
    public static string Encode(string? message)
    {
        if (string.IsNullOrEmpty(message))
        {
            return string.Empty;
        }

        var bytes = Encoding.UTF8.GetBytes(message);
        var sb = new StringBuilder(bytes.Length);
        foreach (var b in bytes)
        {
            if (b is >= 0x20 and <= 0x7E && b != (byte)'%')
            {
                sb.Append((char)b);
            }
            else
            {
                sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return sb.ToString();
    }

    /// <summary>
    /// Decodes a received value. Per the spec, a malformed "%" sequence is kept as-is rather than failing the
    /// call, and invalid UTF-8 becomes U+FFFD.
    /// </summary>
    public static string Decode(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return string.Empty;
        }

        if (!value.Contains('%', StringComparison.Ordinal))
        {
            return value;
        }

        var bytes = new List<byte>(value.Length);
        for (int i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '%' && i + 2 < value.Length && IsHex(value[i + 1]) && IsHex(value[i + 2]))
            {
                bytes.Add(byte.Parse(value.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture));
                i += 2;
            }
            else if (c < 0x80)
            {
                bytes.Add((byte)c);
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsHex(char c) => c is (>= '0' and <= '9') or (>= 'a' and <= 'f') or (>= 'A' and <= 'F');
}
