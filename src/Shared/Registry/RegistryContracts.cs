namespace OfflinePki.Registry;

/// <summary>What the mirror knows of one factory journal: identity, trust anchors from genesis, and head.</summary>
/// <param name="JournalId">16-byte journal id from the genesis entry.</param>
/// <param name="FactoryId">Factory id from the genesis entry.</param>
/// <param name="IssuingCaCertificate">DER of the issuing CA named in genesis.</param>
/// <param name="JournalSignerCertificate">DER of the journal signer named in genesis.</param>
/// <param name="HeadSeq">Last applied seq.</param>
/// <param name="HeadHash">32-byte hash of entry <paramref name="HeadSeq"/>.</param>
public sealed record JournalState(
    byte[] JournalId,
    string FactoryId,
    byte[] IssuingCaCertificate,
    byte[] JournalSignerCertificate,
    ulong HeadSeq,
    byte[] HeadHash);

/// <summary>One issued device certificate as the registry records it.</summary>
/// <param name="Serial">Normalised serial (see <c>SerialNumber.Normalize</c>).</param>
/// <param name="IssuerKeyHash">SHA-1 of the issuing CA's subjectPublicKey BIT STRING value (RFC 6960 CertID issuerKeyHash).</param>
/// <param name="Certificate">Full DER.</param>
/// <param name="DeviceId">IEEE 802.1AR device serial.</param>
/// <param name="StationId">Requesting station.</param>
/// <param name="BatchId">Order or batch, may be empty.</param>
/// <param name="NotBefore">Validity start.</param>
/// <param name="NotAfter">Validity end (9999-12-31T23:59:59Z for "no well-defined expiration").</param>
/// <param name="JournalId">Journal the issuance came from.</param>
/// <param name="Seq">Journal seq of the issuance.</param>
public sealed record IssuedCertificateRecord(
    byte[] Serial,
    byte[] IssuerKeyHash,
    byte[] Certificate,
    string DeviceId,
    string StationId,
    string BatchId,
    DateTimeOffset NotBefore,
    DateTimeOffset NotAfter,
    byte[] JournalId,
    ulong Seq);

/// <summary>The slice of the mirror registry that sync writes to.</summary>
public interface IJournalSink
{
    /// <summary>The state of a journal, or null if the mirror has never applied any of it.</summary>
    JournalState? GetJournal(ReadOnlySpan<byte> journalId);

    /// <summary>The stored hash of entry <paramref name="seq"/> of a journal, or null if not held (for replay/fork checks).</summary>
    byte[]? GetEntryHash(ReadOnlySpan<byte> journalId, ulong seq);

    /// <summary>Begins an atomic, durable apply. Nothing is visible until <see cref="IJournalApplyTransaction.Commit"/>.</summary>
    IJournalApplyTransaction BeginApply();
}

/// <summary>One atomic apply of verified journal entries. Disposing without commit rolls everything back.</summary>
public interface IJournalApplyTransaction : IDisposable
{
    /// <summary>Stores one verified raw entry (protobuf bytes) with its seq and hash.</summary>
    void AddEntry(ReadOnlySpan<byte> journalId, ulong seq, ReadOnlySpan<byte> hash, int entryType, ReadOnlySpan<byte> rawEntry);

    /// <summary>Records an issued certificate. A duplicate (same issuer and serial) is an error.</summary>
    void AddCertificate(IssuedCertificateRecord record);

    /// <summary>Creates or advances the journal's state (head seq/hash).</summary>
    void SetJournal(JournalState state);

    /// <summary>Makes the apply durable and visible.</summary>
    void Commit();
}
