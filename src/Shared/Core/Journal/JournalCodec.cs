using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using Google.Protobuf;
using OfflinePki.Journal.V1;

namespace OfflinePki.Journal;

/// <summary>
/// The canonical encodings of the journal (brief, "The journal"). Protobuf bytes are never hashed or signed,
/// because protobuf encoding is not canonical; these fixed layouts are. They are part of the on-disk and
/// on-the-wire contract: changing them breaks every existing journal.
/// </summary>
/// <remarks>
/// <para>Entry hash (SHA-256) input, all integers big-endian:</para>
/// <code>
/// "offlinepki.journal.v1" 0x00
/// u64 seq
/// i64 time_unix_micros
/// u32 type
/// u32 payload length (bytes)
/// payload bytes
/// prev_hash (exactly 32 bytes)
/// </code>
/// <para>Checkpoint signature input:</para>
/// <code>
/// "offlinepki.checkpoint.v1" 0x00
/// journal_id (exactly 16 bytes)
/// u64 seq          (the entry just before the checkpoint entry)
/// head_hash (exactly 32 bytes)
/// i64 time_unix_micros
/// </code>
/// </remarks>
public static class JournalCodec
{
    /// <summary>Size of an entry hash and of prev_hash: 32 bytes (SHA-256).</summary>
    public const int HashSize = 32;

    /// <summary>Size of a journal id: 16 bytes.</summary>
    public const int JournalIdSize = 16;

    private static ReadOnlySpan<byte> EntryDomain => "offlinepki.journal.v1\0"u8;

    private static ReadOnlySpan<byte> CheckpointDomain => "offlinepki.checkpoint.v1\0"u8;

    private const int StackLimit = 1024;

    /// <summary>The all-zero prev_hash of seq 1.</summary>
    public static ByteString ZeroHash { get; } = ByteString.CopyFrom(new byte[HashSize]);

    /// <summary>Computes the SHA-256 entry hash of <paramref name="entry"/> over its canonical encoding (fields 1-5).</summary>
    /// <param name="entry">The entry; its <c>hash</c> field is ignored.</param>
    /// <returns>32 bytes.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="entry"/> is null.</exception>
    /// <exception cref="ArgumentException"><c>prev_hash</c> is not exactly 32 bytes.</exception>
    public static byte[] ComputeHash(JournalEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return ComputeHash(entry.Seq, entry.TimeUnixMicros, entry.Type, entry.Payload.Span, entry.PrevHash.Span);
    }

    /// <summary>Computes the SHA-256 entry hash over the canonical encoding of the given fields.</summary>
    /// <param name="seq">Entry seq.</param>
    /// <param name="timeUnixMicros">Entry time, microseconds since the Unix epoch (UTC).</param>
    /// <param name="type">Entry type (hashed as its u32 value).</param>
    /// <param name="payload">Serialized payload message.</param>
    /// <param name="prevHash">Hash of the previous entry; 32 zero bytes for seq 1.</param>
    /// <returns>32 bytes.</returns>
    /// <exception cref="ArgumentException"><paramref name="prevHash"/> is not exactly 32 bytes.</exception>
    public static byte[] ComputeHash(ulong seq, long timeUnixMicros, EntryType type, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> prevHash)
    {
        var hash = new byte[HashSize];
        ComputeHash(seq, timeUnixMicros, type, payload, prevHash, hash);
        return hash;
    }

    /// <summary>Computes the entry hash into <paramref name="destination"/> (at least 32 bytes).</summary>
    /// <exception cref="ArgumentException"><paramref name="prevHash"/> is not 32 bytes, or <paramref name="destination"/> is too small.</exception>
    public static void ComputeHash(ulong seq, long timeUnixMicros, EntryType type, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> prevHash, Span<byte> destination)
    {
        if (prevHash.Length != HashSize)
        {
            throw new ArgumentException($"prev_hash must be {HashSize} bytes, got {prevHash.Length}", nameof(prevHash));
        }

        if (destination.Length < HashSize)
        {
            throw new ArgumentException($"destination must hold {HashSize} bytes", nameof(destination));
        }

        int headerLength = EntryDomain.Length + 8 + 8 + 4 + 4;
        int total = headerLength + payload.Length + HashSize;
        byte[]? rented = null;
        Span<byte> buffer = total <= StackLimit ? stackalloc byte[StackLimit] : (rented = ArrayPool<byte>.Shared.Rent(total));
        try
        {
            buffer = buffer[..total];
            EntryDomain.CopyTo(buffer);
            int o = EntryDomain.Length;
            BinaryPrimitives.WriteUInt64BigEndian(buffer[o..], seq); o += 8;
            BinaryPrimitives.WriteInt64BigEndian(buffer[o..], timeUnixMicros); o += 8;
            BinaryPrimitives.WriteUInt32BigEndian(buffer[o..], (uint)type); o += 4;
            BinaryPrimitives.WriteUInt32BigEndian(buffer[o..], (uint)payload.Length); o += 4;
            payload.CopyTo(buffer[o..]); o += payload.Length;
            prevHash.CopyTo(buffer[o..]);
            SHA256.HashData(buffer, destination);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>The bytes a checkpoint signature covers (see the type remarks).</summary>
    /// <param name="journalId">16-byte journal id.</param>
    /// <param name="seq">Seq of the entry the checkpoint covers (the head before the checkpoint entry).</param>
    /// <param name="headHash">32-byte hash of that entry.</param>
    /// <param name="timeUnixMicros">Checkpoint time, microseconds since the Unix epoch (UTC).</param>
    /// <exception cref="ArgumentException"><paramref name="journalId"/> is not 16 bytes or <paramref name="headHash"/> is not 32 bytes.</exception>
    public static byte[] CheckpointSigningBytes(ReadOnlySpan<byte> journalId, ulong seq, ReadOnlySpan<byte> headHash, long timeUnixMicros)
    {
        if (journalId.Length != JournalIdSize)
        {
            throw new ArgumentException($"journal id must be {JournalIdSize} bytes, got {journalId.Length}", nameof(journalId));
        }

        if (headHash.Length != HashSize)
        {
            throw new ArgumentException($"head hash must be {HashSize} bytes, got {headHash.Length}", nameof(headHash));
        }

        var buffer = new byte[CheckpointDomain.Length + JournalIdSize + 8 + HashSize + 8];
        var s = buffer.AsSpan();
        CheckpointDomain.CopyTo(s);
        int o = CheckpointDomain.Length;
        journalId.CopyTo(s[o..]); o += JournalIdSize;
        BinaryPrimitives.WriteUInt64BigEndian(s[o..], seq); o += 8;
        headHash.CopyTo(s[o..]); o += HashSize;
        BinaryPrimitives.WriteInt64BigEndian(s[o..], timeUnixMicros);
        return buffer;
    }

    /// <summary>Builds an entry with its hash computed.</summary>
    /// <param name="seq">Entry seq (≥ 1).</param>
    /// <param name="timeUnixMicros">Entry time, microseconds since the Unix epoch (UTC).</param>
    /// <param name="type">Entry type.</param>
    /// <param name="payload">Serialized payload message.</param>
    /// <param name="prevHash">32-byte hash of the previous entry (all zero for seq 1).</param>
    /// <exception cref="ArgumentNullException">A reference argument is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="prevHash"/> is not 32 bytes.</exception>
    public static JournalEntry CreateEntry(ulong seq, long timeUnixMicros, EntryType type, ByteString payload, ByteString prevHash)
    {
        ArgumentNullException.ThrowIfNull(payload);
        ArgumentNullException.ThrowIfNull(prevHash);
        var hash = ComputeHash(seq, timeUnixMicros, type, payload.Span, prevHash.Span);
        return new JournalEntry
        {
            Seq = seq,
            TimeUnixMicros = timeUnixMicros,
            Type = type,
            Payload = payload,
            PrevHash = prevHash,
            Hash = UnsafeByteOperations.UnsafeWrap(hash),
        };
    }

    /// <summary>Builds an entry with its hash computed from a payload message.</summary>
    /// <exception cref="ArgumentNullException">A reference argument is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="prevHash"/> is not 32 bytes.</exception>
    public static JournalEntry CreateEntry(ulong seq, long timeUnixMicros, EntryType type, IMessage payload, ReadOnlySpan<byte> prevHash)
    {
        ArgumentNullException.ThrowIfNull(payload);
        return CreateEntry(seq, timeUnixMicros, type, UnsafeByteOperations.UnsafeWrap(payload.ToByteArray()), ByteString.CopyFrom(prevHash));
    }

    /// <summary>Builds the entry that follows <paramref name="head"/>: seq head + 1, prev_hash = head hash.</summary>
    /// <exception cref="ArgumentNullException">A reference argument is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The head seq is at its maximum.</exception>
    public static JournalEntry CreateNext(JournalHead head, long timeUnixMicros, EntryType type, IMessage payload)
    {
        ArgumentNullException.ThrowIfNull(head);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(head.Seq, ulong.MaxValue - 1, nameof(head));
        return CreateEntry(head.Seq + 1, timeUnixMicros, type, payload, head.Hash);
    }

    /// <summary>Microseconds since the Unix epoch for <paramref name="time"/> (truncated).</summary>
    public static long ToUnixMicros(DateTimeOffset time) => (time.UtcTicks - DateTime.UnixEpoch.Ticks) / 10;

    /// <summary>The UTC time for microseconds since the Unix epoch.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside the range of <see cref="DateTimeOffset"/>.</exception>
    public static DateTimeOffset FromUnixMicros(long micros)
    {
        const long minMicros = (0 - 621355968000000000L) / 10; // 0001-01-01
        const long maxMicros = (3155378975999999999L - 621355968000000000L) / 10; // 9999-12-31
        ArgumentOutOfRangeException.ThrowIfLessThan(micros, minMicros);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(micros, maxMicros);
        return new DateTimeOffset(DateTime.UnixEpoch.Ticks + (micros * 10), TimeSpan.Zero);
    }

    /// <summary>The protobuf parser of the payload message for <paramref name="type"/>, or null for an unknown or unspecified type.</summary>
    public static MessageParser? PayloadParser(EntryType type) => type switch
    {
        EntryType.Genesis => Genesis.Parser,
        EntryType.CertificateIssued => CertificateIssued.Parser,
        EntryType.EnrollmentRefused => EnrollmentRefused.Parser,
        EntryType.BatchEvent => BatchEvent.Parser,
        EntryType.PolicyChanged => PolicyChanged.Parser,
        EntryType.Checkpoint => Checkpoint.Parser,
        EntryType.OrderAccepted => OrderAccepted.Parser,
        _ => null,
    };

    /// <summary>The head after <paramref name="entry"/>: its seq and a copy of its hash.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="entry"/> is null.</exception>
    public static JournalHead HeadOf(JournalEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return new JournalHead(entry.Seq, entry.Hash.ToByteArray());
    }
}
