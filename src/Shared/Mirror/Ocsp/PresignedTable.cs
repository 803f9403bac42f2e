using System.Buffers.Binary;
using OfflinePki.Revocation;

namespace OfflinePki.Ocsp;

/// <summary>
/// A certificate serial number (RFC 5280 §4.1.2.2: a positive INTEGER of at most 20 octets, normalised) held inline,
/// so that an index keyed by serials has no object per certificate.
/// </summary>
internal readonly struct SerialKey : IEquatable<SerialKey>
{
    /// <summary>Most octets a serial may have (RFC 5280 §4.1.2.2).</summary>
    public const int MaxLength = 20;

    private readonly ulong _a;
    private readonly ulong _b;
    private readonly uint _c;
    private readonly byte _length;

    private SerialKey(ulong a, ulong b, uint c, byte length)
    {
        _a = a;
        _b = b;
        _c = c;
        _length = length;
    }

    /// <summary>The key of a normalised serial of 1 to 20 octets; false for any other length.</summary>
    public static bool TryCreate(ReadOnlySpan<byte> serial, out SerialKey key)
    {
        if (serial.IsEmpty || serial.Length > MaxLength)
        {
            key = default;
            return false;
        }

        Span<byte> buffer = stackalloc byte[MaxLength];
        buffer.Clear();
        serial.CopyTo(buffer);
        key = new SerialKey(BinaryPrimitives.ReadUInt64BigEndian(buffer), BinaryPrimitives.ReadUInt64BigEndian(buffer[8..]),
            BinaryPrimitives.ReadUInt32BigEndian(buffer[16..]), (byte)serial.Length);
        return true;
    }

    /// <summary>The serial octets.</summary>
    public byte[] ToArray()
    {
        Span<byte> buffer = stackalloc byte[MaxLength];
        BinaryPrimitives.WriteUInt64BigEndian(buffer, _a);
        BinaryPrimitives.WriteUInt64BigEndian(buffer[8..], _b);
        BinaryPrimitives.WriteUInt32BigEndian(buffer[16..], _c);
        return buffer[.._length].ToArray();
    }

    public bool Equals(SerialKey other) => _a == other._a && _b == other._b && _c == other._c && _length == other._length;

    public override bool Equals(object? obj) => obj is SerialKey other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(_a, _b, _c, _length);
}

/// <summary>What a <see cref="PresignedTable"/> slot holds at one moment.</summary>
/// <param name="Status">The certificate's status (shared <see cref="CertificateStatus.Good"/> for good ones).</param>
/// <param name="HasAnswer">Whether the slot holds a pre-signed response.</param>
/// <param name="Answer">A copy of the pre-signed response when one was asked for and is held; else null.</param>
/// <param name="RefreshAtUnix">When the response must be re-signed (Unix seconds).</param>
/// <param name="Epoch">The responder epoch the response was signed under.</param>
/// <param name="Version">Changes with every write to the slot; <see cref="PresignedTable.TryStore"/> compares it.</param>
internal readonly record struct PresignedView(CertificateStatus Status, bool HasAnswer, OcspAnswer? Answer, long RefreshAtUnix, int Epoch, int Version);

/// <summary>
/// The pre-signed responses of one issuer, laid out for the garbage collector: an index of inline serial keys to slot
/// numbers, slots in arrays of structs, and response DER in fixed-size cells of 16 MiB slabs (large-object heap, never
/// moved). A million certificates are a few dozen arrays, not millions of objects, so no collection has to trace or
/// compact them, and a re-signed response overwrites its own cell.
/// </summary>
/// <remarks>
/// <para>Thread safety: the serial index and slot arrays grow under a reader/writer lock (lookups take the read side);
/// each slot is read and written under one of 64 stripe locks, so a reader copies a response that no writer is
/// changing. Writes are optimistic: <see cref="TryStore"/> applies only if the slot's version is the one read.</para>
/// <para>Memory: per certificate about 90 octets (index entry and slot); per pre-signed response one cell of
/// <see cref="CellSize"/> octets (a response that does not fit, which a usual RFC 5019 answer with the responder
/// certificate does, is kept as its own array).</para>
/// </remarks>
internal sealed class PresignedTable
{
    /// <summary>Octets of one response cell.</summary>
    public const int CellSize = 1024;

    private const int ChunkBits = 16;
    private const int ChunkSize = 1 << ChunkBits;
    private const int StripeCount = 64;
    private const int SlabBytes = 16 << 20;
    private const int CellsPerSlab = SlabBytes / CellSize;

    private readonly ReaderWriterLockSlim _map = new(LockRecursionPolicy.NoRecursion);
    private readonly Dictionary<SerialKey, int> _index = [];
    private readonly Lock[] _stripes = Enumerable.Range(0, StripeCount).Select(_ => new Lock()).ToArray();
    private readonly Lock _cellGate = new();
    private volatile Slot[][] _chunks = [];
    private volatile byte[][] _slabs = [];
    private int _count;
    private int _cells;

    /// <summary>Certificates held.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Adds a certificate with its status and no response; false if the serial is already held.</summary>
    public bool TryAdd(SerialKey serial, CertificateStatus status)
    {
        _map.EnterWriteLock();
        try
        {
            if (_index.ContainsKey(serial))
            {
                return false;
            }

            int slot = _count;
            if ((slot >> ChunkBits) == _chunks.Length)
            {
                var grown = new Slot[_chunks.Length + 1][];
                Array.Copy(_chunks, grown, _chunks.Length);
                grown[^1] = new Slot[ChunkSize];
                _chunks = grown;
            }

            ref var s = ref SlotAt(slot);
            s.Key = serial;
            s.Status = status;
            s.Cell = -1;
            _index.Add(serial, slot);
            Volatile.Write(ref _count, slot + 1);
            return true;
        }
        finally
        {
            _map.ExitWriteLock();
        }
    }

    /// <summary>Finds a serial's slot number; false if the serial is not held.</summary>
    public bool TryFind(SerialKey serial, out int slot)
    {
        _map.EnterReadLock();
        try
        {
            return _index.TryGetValue(serial, out slot);
        }
        finally
        {
            _map.ExitReadLock();
        }
    }

    /// <summary>The slot's status, a copy of its response (if any and <paramref name="withAnswer"/>) and its version.</summary>
    public PresignedView Read(int slot, bool withAnswer = true)
    {
        lock (_stripes[slot & (StripeCount - 1)])
        {
            ref var s = ref SlotAt(slot);
            OcspAnswer? answer = null;
            if (withAnswer && s.Length > 0)
            {
                var der = s.Overflow ?? CellSpan(s.Cell)[..s.Length].ToArray();
                answer = new OcspAnswer(der, OcspResponseStatus.Successful, new DateTimeOffset(s.ProducedAtTicks, TimeSpan.Zero),
                    new DateTimeOffset(s.NextUpdateTicks, TimeSpan.Zero), false);
            }

            return new PresignedView(s.Status, s.Length > 0, answer, s.RefreshAtUnix, s.Epoch, s.Version);
        }
    }

    /// <summary>The slot's serial.</summary>
    public SerialKey KeyAt(int slot)
    {
        lock (_stripes[slot & (StripeCount - 1)])
        {
            return SlotAt(slot).Key;
        }
    }

    /// <summary>Sets a new status and drops the slot's response (it no longer tells the truth); true if it had one.</summary>
    public bool Replace(int slot, CertificateStatus status)
    {
        lock (_stripes[slot & (StripeCount - 1)])
        {
            ref var s = ref SlotAt(slot);
            bool had = s.Length > 0;
            s.Status = status;
            s.Length = 0;
            s.Overflow = null;
            s.RefreshAtUnix = 0;
            s.Version++;
            return had;
        }
    }

    /// <summary>
    /// Stores a freshly signed response if the slot is still at <paramref name="expectedVersion"/>. A slot without a
    /// cell gets one only when <paramref name="mayTakeCell"/> (the caller enforces the bound on pre-signed responses).
    /// </summary>
    /// <returns>Whether it was stored, and whether the slot already held a response before.</returns>
    public (bool Stored, bool HadAnswer) TryStore(int slot, int expectedVersion, OcspAnswer answer, long refreshAtUnix, int epoch, bool mayTakeCell)
    {
        ArgumentNullException.ThrowIfNull(answer);
        lock (_stripes[slot & (StripeCount - 1)])
        {
            ref var s = ref SlotAt(slot);
            bool had = s.Length > 0;
            if (s.Version != expectedVersion || (!had && !mayTakeCell))
            {
                return (false, had);
            }

            if (answer.Der.Length <= CellSize)
            {
                if (s.Cell < 0)
                {
                    s.Cell = TakeCell();
                }

                answer.Der.CopyTo(CellSpan(s.Cell));
                s.Overflow = null;
            }
            else
            {
                s.Overflow = answer.Der;
            }

            s.Length = answer.Der.Length;
            s.ProducedAtTicks = answer.ProducedAt!.Value.UtcTicks;
            s.NextUpdateTicks = answer.NextUpdate!.Value.UtcTicks;
            s.RefreshAtUnix = refreshAtUnix;
            s.Epoch = epoch;
            s.Version++;
            return (true, had);
        }
    }

    private ref Slot SlotAt(int slot) => ref _chunks[slot >> ChunkBits][slot & (ChunkSize - 1)];

    private Span<byte> CellSpan(int cell) => _slabs[cell / CellsPerSlab].AsSpan(cell % CellsPerSlab * CellSize, CellSize);

    private int TakeCell()
    {
        lock (_cellGate)
        {
            int cell = _cells;
            if (cell / CellsPerSlab == _slabs.Length)
            {
                var grown = new byte[_slabs.Length + 1][];
                Array.Copy(_slabs, grown, _slabs.Length);
                grown[^1] = GC.AllocateUninitializedArray<byte>(SlabBytes);
                _slabs = grown;
            }

            _cells = cell + 1;
            return cell;
        }
    }

    private struct Slot
    {
        public SerialKey Key;
        public CertificateStatus Status;
        public byte[]? Overflow;
        public long ProducedAtTicks;
        public long NextUpdateTicks;
        public long RefreshAtUnix;
        public int Cell;
        public int Length;
        public int Epoch;
        public int Version;
    }
}
