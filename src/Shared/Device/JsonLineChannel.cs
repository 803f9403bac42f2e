using System.Text;

namespace OfflinePki.Station;

/// <summary>
/// Reads and writes LF-terminated UTF-8 lines on a byte stream (a TCP connection or a serial port opened as a
/// file), refusing lines longer than a limit. Not thread safe: one reader and one writer, taking turns.
/// </summary>
public sealed class JsonLineChannel : IAsyncDisposable
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    private readonly Stream _stream;
    private readonly int _maxLineBytes;
    private readonly byte[] _buffer = new byte[4096];
    private int _start;
    private int _end;

    /// <summary>Wraps <paramref name="stream"/>, which this channel then owns.</summary>
    /// <param name="stream">A readable and writable stream.</param>
    /// <param name="maxLineBytes">Longest line accepted, excluding LF; at least 64.</param>
    /// <exception cref="ArgumentNullException"><paramref name="stream"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxLineBytes"/> is below 64.</exception>
    public JsonLineChannel(Stream stream, int maxLineBytes = DeviceProtocol.MaxLineBytes)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLineBytes, 64);
        _stream = stream;
        _maxLineBytes = maxLineBytes;
    }

    /// <summary>Reads the next line (without LF or a trailing CR); null at end of stream.</summary>
    /// <param name="cancellationToken">Cancels the read (a serial port read may only notice when data arrives or the stream closes).</param>
    /// <returns>The line, or null when the peer closed the stream (a partial last line is dropped).</returns>
    /// <exception cref="DeviceProtocolException">The line exceeds the limit or is not UTF-8.</exception>
    public async Task<string?> ReadLineAsync(CancellationToken cancellationToken)
    {
        using var line = new MemoryStream();
        while (true)
        {
            if (_start == _end)
            {
                _start = 0;
                _end = await _stream.ReadAsync(_buffer, cancellationToken).ConfigureAwait(false);
                if (_end == 0)
                {
                    return null;
                }
            }

            int lf = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            int take = (lf < 0 ? _end : lf) - _start;
            if (line.Length + take > _maxLineBytes + 1)
            {
                throw new DeviceProtocolException($"line longer than {_maxLineBytes} bytes");
            }

            line.Write(_buffer, _start, take);
            _start += take;
            if (lf >= 0)
            {
                _start++; // the LF
                byte[] bytes = line.ToArray();
                int length = bytes.Length > 0 && bytes[^1] == (byte)'\r' ? bytes.Length - 1 : bytes.Length;
                if (length > _maxLineBytes)
                {
                    throw new DeviceProtocolException($"line longer than {_maxLineBytes} bytes");
                }

                try
                {
                    return StrictUtf8.GetString(bytes, 0, length);
                }
                catch (DecoderFallbackException)
                {
                    throw new DeviceProtocolException("line is not valid UTF-8");
                }
            }
        }
    }

    /// <summary>Writes <paramref name="line"/> and an LF, then flushes.</summary>
    /// <param name="line">The text; must not contain LF.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <exception cref="ArgumentException"><paramref name="line"/> contains an LF or exceeds the limit.</exception>
    public async Task WriteLineAsync(string line, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(line);
        if (line.Contains('\n', StringComparison.Ordinal))
        {
            throw new ArgumentException("a protocol line must not contain LF", nameof(line));
        }

        byte[] bytes = StrictUtf8.GetBytes(line + "\n");
        if (bytes.Length - 1 > _maxLineBytes)
        {
            throw new ArgumentException($"line longer than {_maxLineBytes} bytes", nameof(line));
        }

        await _stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _stream.DisposeAsync();
}
