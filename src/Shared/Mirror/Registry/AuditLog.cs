using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace OfflinePki.Registry;

/// <summary>
/// One record of the mirror's append-only, hash-chained audit log: who did what, why and when.
/// <c>Hash = SHA-256(PreviousHash || seq (8 octets BE) || at (8 octets BE, Unix seconds) || len-prefixed UTF-8 actor, action, detail)</c>,
/// with 32 zero octets as the previous hash of record 1 (the same chaining idea as the factory journal).
/// </summary>
/// <param name="Seq">1, 2, 3, ... without gaps.</param>
/// <param name="At">When (UTC, whole seconds).</param>
/// <param name="Actor">Who (e.g. "cli:alice", "admin:admin-revoker").</param>
/// <param name="Action">What: "revoke", "revoke-bulk", "release-hold".</param>
/// <param name="Detail">The object and the why: issuer, serial(s), reason, invalidity date, selector.</param>
/// <param name="PreviousHash">32-octet hash of record <c>Seq - 1</c> (zeros for record 1).</param>
/// <param name="Hash">32-octet hash of this record.</param>
public sealed record AuditRecord(long Seq, DateTimeOffset At, string Actor, string Action, string Detail, byte[] PreviousHash, byte[] Hash);

/// <summary>The result of verifying the audit chain.</summary>
/// <param name="Ok">True when every record chains to its predecessor and hashes correctly.</param>
/// <param name="Records">Records checked.</param>
/// <param name="HeadHash">Hash of the last record (zeros when empty).</param>
/// <param name="Error">What is wrong and where (null when <paramref name="Ok"/>).</param>
public sealed record AuditVerification(bool Ok, long Records, byte[] HeadHash, string? Error);

/// <summary>Hashing and verification of <see cref="AuditRecord"/> chains.</summary>
public static class AuditChain
{
    /// <summary>Length of each hash (SHA-256).</summary>
    public const int HashLength = 32;

    /// <summary>Computes the hash of a record from its fields and its predecessor's hash.</summary>
    /// <exception cref="ArgumentException"><paramref name="previousHash"/> is not 32 octets.</exception>
    public static byte[] ComputeHash(ReadOnlySpan<byte> previousHash, long seq, DateTimeOffset at, string actor, string action, string detail)
    {
        if (previousHash.Length != HashLength)
        {
            throw new ArgumentException("previous hash must be 32 octets", nameof(previousHash));
        }

        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> n = stackalloc byte[8];
        h.AppendData(previousHash);
        BinaryPrimitives.WriteInt64BigEndian(n, seq);
        h.AppendData(n);
        BinaryPrimitives.WriteInt64BigEndian(n, at.ToUnixTimeSeconds());
        h.AppendData(n);
        foreach (var text in new[] { actor, action, detail })
        {
            var bytes = Encoding.UTF8.GetBytes(text);
            BinaryPrimitives.WriteInt64BigEndian(n, bytes.Length);
            h.AppendData(n);
            h.AppendData(bytes);
        }

        return h.GetHashAndReset();
    }

    /// <summary>Verifies a chain streamed in seq order from record 1.</summary>
    /// <param name="records">The records, in order.</param>
    public static AuditVerification Verify(IEnumerable<AuditRecord> records)
    {
        ArgumentNullException.ThrowIfNull(records);
        var previous = new byte[HashLength];
        long expected = 1;
        foreach (var r in records)
        {
            if (r.Seq != expected)
            {
                return new(false, expected - 1, previous, $"audit record {expected} is missing (found seq {r.Seq}); the log was truncated or edited");
            }

            if (!r.PreviousHash.AsSpan().SequenceEqual(previous))
            {
                return new(false, expected - 1, previous, $"audit record {r.Seq} does not chain to record {r.Seq - 1} (previous hash differs); the log was edited");
            }

            var hash = ComputeHash(previous, r.Seq, r.At, r.Actor, r.Action, r.Detail);
            if (!hash.AsSpan().SequenceEqual(r.Hash))
            {
                return new(false, expected - 1, previous, $"audit record {r.Seq} ({r.Action} by {r.Actor}) does not match its hash; its content was edited");
            }

            previous = hash;
            expected++;
        }

        return new(true, expected - 1, previous, null);
    }
}
