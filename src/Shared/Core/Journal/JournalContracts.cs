using Google.Protobuf;
using OfflinePki.Journal.V1;

namespace OfflinePki.Journal;

/// <summary>The last entry of a journal: its seq and SHA-256 hash (32 bytes).</summary>
/// <param name="Seq">1-based sequence number; 0 means the journal is empty.</param>
/// <param name="Hash">32-byte entry hash; all zero when <paramref name="Seq"/> is 0.</param>
public sealed record JournalHead(ulong Seq, byte[] Hash)
{
    /// <summary>The head of an empty journal.</summary>
    public static JournalHead Empty { get; } = new(0, new byte[32]);
}

/// <summary>
/// Appends entries to the factory journal. An append returns only once its entry is on disk (fsync);
/// concurrent appends share one fsync (group commit). Once the journal has failed, every append fails.
/// </summary>
public interface IJournalAppender
{
    /// <summary>Appends one entry and waits until it is durable.</summary>
    /// <param name="type">Entry type; not <see cref="EntryType.Genesis"/> or <see cref="EntryType.Checkpoint"/>, which the journal writes itself.</param>
    /// <param name="payload">The payload message for <paramref name="type"/>.</param>
    /// <param name="cancellationToken">Cancels waiting; the entry may still become durable.</param>
    /// <returns>The durable entry, with its seq and hash.</returns>
    /// <exception cref="JournalUnavailableException">The journal cannot accept entries (disk, fsync or signer failure; size limit).</exception>
    Task<JournalEntry> AppendAsync(EntryType type, IMessage payload, CancellationToken cancellationToken = default);

    /// <summary>Writes a signed checkpoint over the current head now (before a sync, at shutdown).</summary>
    /// <exception cref="JournalUnavailableException">The journal or its signer is unavailable.</exception>
    Task<JournalEntry> CheckpointAsync(CancellationToken cancellationToken = default);
}

/// <summary>Reads the durable journal in seq order. Safe to use while another component appends.</summary>
public interface IJournalReader
{
    /// <summary>The last durable entry.</summary>
    JournalHead Head { get; }

    /// <summary>Streams durable entries with seq ≥ <paramref name="firstSeq"/>, in order, without loading the journal whole.</summary>
    IEnumerable<JournalEntry> ReadFrom(ulong firstSeq);
}

/// <summary>The journal cannot accept or serve entries. Issuance must stop (fail closed).</summary>
public sealed class JournalUnavailableException : Exception
{
    /// <summary>Creates the exception; the message names the cause and never carries secrets.</summary>
    public JournalUnavailableException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>Why a journal, or a part of one, failed verification.</summary>
public enum JournalFault
{
    /// <summary>The record could not be decoded (bad protobuf, wrong lengths).</summary>
    Malformed,
    /// <summary>A seq is missing: the entry's seq is not head + 1.</summary>
    Gap,
    /// <summary>The same seq with a different hash, or a prev_hash that is not the head hash.</summary>
    Fork,
    /// <summary>The entry hash does not match its canonical encoding.</summary>
    BadHash,
    /// <summary>A checkpoint signature does not verify.</summary>
    BadSignature,
    /// <summary>A signer or CA certificate does not chain to the trusted root, or lacks the required EKU.</summary>
    UnknownSigner,
    /// <summary>A certificate in the journal was not signed by the journal's issuing CA.</summary>
    ForeignCertificate,
    /// <summary>A checkpoint that names a seq/hash other than the current head (e.g. replayed).</summary>
    StaleCheckpoint,
    /// <summary>seq 0, seq overflow, an entry over the size limit, or an unknown type.</summary>
    OutOfRange,
    /// <summary>Entries of another journal (journal id or factory mismatch).</summary>
    WrongJournal,
}

/// <summary>A journal entry failed verification. Nothing from the offending range may be applied.</summary>
public sealed class JournalVerificationException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="seq">The seq of the offending entry (as claimed by it).</param>
    /// <param name="fault">What is wrong.</param>
    /// <param name="detail">Human-readable detail; no secrets.</param>
    public JournalVerificationException(ulong seq, JournalFault fault, string detail)
        : base($"journal rejected at seq {seq}: {fault}: {detail}")
    {
        Seq = seq;
        Fault = fault;
    }

    /// <summary>The offending seq.</summary>
    public ulong Seq { get; }

    /// <summary>What is wrong.</summary>
    public JournalFault Fault { get; }
}

/// <summary>
/// What a verifier must already trust to resume verification in the middle of a journal: the identity and
/// the certificates fixed by its genesis entry (which were checked against the root when first seen).
/// </summary>
/// <param name="JournalId">16-byte journal id.</param>
/// <param name="FactoryId">Factory id.</param>
/// <param name="IssuingCaCertificate">DER of the issuing CA.</param>
/// <param name="JournalSignerCertificate">DER of the journal signer.</param>
public sealed record JournalAnchor(byte[] JournalId, string FactoryId, byte[] IssuingCaCertificate, byte[] JournalSignerCertificate);
