using System.Buffers;
using System.Buffers.Binary;
using Google.Protobuf;
using OfflinePki.Journal.V1;

namespace OfflinePki.Journal;

/// <summary>
/// The on-disk journal format. It is stable: a journal written today must open in every later version.
/// </summary>
/// <remarks>
/// <para>A journal is a directory holding one file, <c>journal.log</c>:</para>
/// <code>
/// offset 0: magic, 8 ASCII bytes "OPKIJNL1"
/// then records, back to back, until end of file:
///   u32 big-endian length N (1 ≤ N ≤ 64 MiB)
///   N bytes: a JournalEntry protobuf (proto/offlinepki/journal/v1/journal.proto)
/// </code>
/// <para>Record k holds seq k (seq 1 is the genesis entry, followed by an initial checkpoint). There is no
/// per-record checksum: each entry carries its own SHA-256 over a canonical encoding (<see cref="JournalCodec"/>)
/// and the prev_hash chain, which recovery and verification check. Records are only ever appended; recovery may
/// truncate an incomplete, never-acknowledged tail (see <c>JournalWriter</c>).</para>
/// <para><b>Preallocated space.</b> While a writer has the file open, the file may continue past the last record with
/// zero bytes (<c>FileJournalStorage</c> writes zeros ahead so that an fsync of new records need not update the
/// file size). A length prefix of 0 followed by nothing but zeros is therefore the end of the journal, and a record
/// that does not decode, ends in zeros and is followed by nothing but zeros is a torn write into that space. A clean
/// close cuts the zeros off; a crash leaves them, and the next open cuts them off.</para>
/// </remarks>
public static class JournalFileFormat
{
    /// <summary>The journal file's name inside the journal directory.</summary>
    public const string FileName = "journal.log";

    /// <summary>Length of the length prefix of a record, in bytes.</summary>
    public const int LengthPrefixSize = 4;

    /// <summary>The largest record length a reader accepts, in bytes (64 MiB); appends are limited far lower by options.</summary>
    public const int MaxRecordBytes = 64 << 20;

    /// <summary>The 8-byte magic at offset 0: ASCII "OPKIJNL1".</summary>
    public static ReadOnlySpan<byte> Magic => "OPKIJNL1"u8;

    /// <summary>Appends one record (length prefix + protobuf) for <paramref name="entry"/> to <paramref name="output"/>.</summary>
    /// <returns>The record length in bytes, prefix included.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static int WriteRecord(IBufferWriter<byte> output, JournalEntry entry)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(entry);
        int size = entry.CalculateSize();
        var span = output.GetSpan(LengthPrefixSize + size);
        BinaryPrimitives.WriteUInt32BigEndian(span, (uint)size);
        entry.WriteTo(span.Slice(LengthPrefixSize, size));
        output.Advance(LengthPrefixSize + size);
        return LengthPrefixSize + size;
    }

    /// <summary>The outcome of reading one record.</summary>
    internal enum ReadStatus
    {
        /// <summary>A record was read and decoded.</summary>
        Ok,
        /// <summary>Clean end of file, exactly at a record boundary.</summary>
        End,
        /// <summary>Fewer than 4 bytes remain: a torn length prefix.</summary>
        ShortPrefix,
        /// <summary>The length prefix is 0 or over the limit.</summary>
        BadLength,
        /// <summary>The body is shorter than the prefix says: torn.</summary>
        ShortBody,
        /// <summary>The body is complete but is not a JournalEntry.</summary>
        Undecodable,
        /// <summary>(Recovery only) a self-consistent entry that does not chain to the one before it.</summary>
        Unchained,
    }

    /// <summary>Reads one record at the stream's position. On anything but Ok the stream position is unspecified.</summary>
    internal static ReadStatus ReadRecord(Stream stream, ref byte[] buffer, out JournalEntry? entry, out int recordLength)
    {
        entry = null;
        recordLength = 0;
        Span<byte> prefix = stackalloc byte[LengthPrefixSize];
        int got = stream.ReadAtLeast(prefix, LengthPrefixSize, throwOnEndOfStream: false);
        if (got == 0)
        {
            return ReadStatus.End;
        }

        if (got < LengthPrefixSize)
        {
            return ReadStatus.ShortPrefix;
        }

        uint len = BinaryPrimitives.ReadUInt32BigEndian(prefix);
        if (len == 0)
        {
            return RestIsZero(stream) ? ReadStatus.End : ReadStatus.BadLength; // zeros: preallocated space
        }

        if (len > MaxRecordBytes)
        {
            return ReadStatus.BadLength;
        }

        if (buffer.Length < len)
        {
            buffer = new byte[Math.Max(len, (uint)buffer.Length * 2)];
        }

        got = stream.ReadAtLeast(buffer.AsSpan(0, (int)len), (int)len, throwOnEndOfStream: false);
        if (got < len)
        {
            return ReadStatus.ShortBody;
        }

        recordLength = LengthPrefixSize + (int)len;
        try
        {
            entry = JournalEntry.Parser.ParseFrom(buffer.AsSpan(0, (int)len));
            return ReadStatus.Ok;
        }
        catch (InvalidProtocolBufferException)
        {
            // A record cut short inside preallocated space reads as complete, with zeros where its bytes never landed.
            return buffer[len - 1] == 0 && RestIsZero(stream) ? ReadStatus.ShortBody : ReadStatus.Undecodable;
        }
    }

    /// <summary>True when every byte from the stream's position to its end is zero (reads to the end).</summary>
    internal static bool RestIsZero(Stream stream)
    {
        var chunk = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            int n;
            while ((n = stream.Read(chunk, 0, 1 << 16)) > 0)
            {
                if (chunk.AsSpan(0, n).ContainsAnyExcept((byte)0))
                {
                    return false;
                }
            }

            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    /// <summary>Reads and checks the magic; false if the stream is shorter than the magic or it differs.</summary>
    internal static bool ReadMagic(Stream stream, out int bytesRead)
    {
        Span<byte> m = stackalloc byte[8];
        bytesRead = stream.ReadAtLeast(m, 8, throwOnEndOfStream: false);
        return bytesRead == 8 && m.SequenceEqual(Magic);
    }
}
