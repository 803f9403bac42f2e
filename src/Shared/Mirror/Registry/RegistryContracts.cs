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
    ulong Seq)
{
    /// <summary>The journal's issuance facts beyond the certificate (operator, MAC, kind, ...), stored in issuance_details; null for none.</summary>
    public IssuanceDetails? Details { get; init; }
}

/// <summary>What the journal says about one issuance beyond the certificate (CertificateIssued fields 4, 7-13 and the entry time).</summary>
/// <param name="OperatorId">Operator id, empty when none.</param>
/// <param name="MacAddress">MAC address as the station gave it, empty when none.</param>
/// <param name="Kind">Issuance kind (journal.proto IssuanceKind: 0 initial, 1 rework, 2 refurb, 3 reenroll).</param>
/// <param name="Label">EST label, empty when none.</param>
/// <param name="Profile">Certificate profile name.</param>
/// <param name="IssuedAt">The CertificateIssued entry's time, UTC.</param>
/// <param name="Sha256Fingerprint">Lower-case hex SHA-256 of the certificate DER.</param>
/// <param name="SupersedesSerial">Serial of the certificate this one replaces (rework, refurb, reenroll), empty when none.</param>
/// <param name="ServerGeneratedKey">True when FactoryCa generated the key pair (EST serverkeygen).</param>
public sealed record IssuanceDetails(string OperatorId, string MacAddress, int Kind, string Label, string Profile, DateTimeOffset IssuedAt,
    string Sha256Fingerprint, byte[] SupersedesSerial, bool ServerGeneratedKey);

/// <summary>A production order a factory journaled as accepted (OrderAccepted entry).</summary>
/// <param name="JournalId">The journal.</param>
/// <param name="Seq">The entry's seq.</param>
/// <param name="OrderId">The order id.</param>
/// <param name="SignedOrder">The signed order file (DER CMS) as journaled.</param>
/// <param name="OrderSha256">SHA-256 of <paramref name="SignedOrder"/>.</param>
/// <param name="Source">"sync" or "file".</param>
/// <param name="AcceptedAt">The entry's time, UTC.</param>
public sealed record FactoryOrderRecord(byte[] JournalId, ulong Seq, string OrderId, byte[] SignedOrder, byte[] OrderSha256, string Source, DateTimeOffset AcceptedAt);

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

    /// <summary>Records a production order the factory accepted (OrderAccepted). Stores that keep no orders ignore it.</summary>
    void AddOrderAccepted(FactoryOrderRecord record)
    {
    }

    /// <summary>Creates or advances the journal's state (head seq/hash).</summary>
    void SetJournal(JournalState state);

    /// <summary>Makes the apply durable and visible.</summary>
    void Commit();
}

/// <summary>
/// The journals a mirror holds (many factories per mirror), so that sync can tell a stream that mixes in another
/// factory's journal from a fork of the pushed one. A narrow read slice of the registry.
/// </summary>
public interface IKnownJournals
{
    /// <summary>Every journal the mirror holds, with its factory, genesis anchors and head; a handful of rows per mirror.</summary>
    IReadOnlyList<JournalState> ListJournals();
}
