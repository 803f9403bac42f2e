namespace OfflinePki.Revocation;

/// <summary>One revoked certificate, as a CRL entry or an OCSP revoked answer needs it.</summary>
/// <param name="Serial">Normalised serial (RFC 5280 §4.1.2.2, see <c>SerialNumber.Normalize</c>).</param>
/// <param name="RevocationTime">When the mirror recorded the revocation (UTC, whole seconds).</param>
/// <param name="Reason">RFC 5280 §5.3.1 reason; <see cref="CrlReason.Unspecified"/> means "no reasonCode".</param>
/// <param name="InvalidityDate">RFC 5280 §5.3.2 invalidity date, when the operator gave one.</param>
public sealed record RevokedEntry(byte[] Serial, DateTimeOffset RevocationTime, CrlReason Reason, DateTimeOffset? InvalidityDate);

/// <summary>What the registry knows about one (issuer, serial).</summary>
public enum RegistryCertificateState
{
    /// <summary>No journal ever recorded this serial for this issuer.</summary>
    NeverIssued,
    /// <summary>Issued and not revoked.</summary>
    Good,
    /// <summary>Issued and revoked.</summary>
    Revoked,
}

/// <summary>The status of one (issuer, serial) for OCSP (RFC 6960 §2.2).</summary>
/// <param name="State">Never issued, good or revoked.</param>
/// <param name="Revocation">The revocation when <paramref name="State"/> is <see cref="RegistryCertificateState.Revoked"/>; else null.</param>
public sealed record CertificateStatus(RegistryCertificateState State, RevokedEntry? Revocation)
{
    /// <summary>The shared "never issued" value.</summary>
    public static CertificateStatus NeverIssued { get; } = new(RegistryCertificateState.NeverIssued, null);

    /// <summary>The shared "good" value.</summary>
    public static CertificateStatus Good { get; } = new(RegistryCertificateState.Good, null);
}

/// <summary>
/// The read slice of the registry that the CRL publisher and the OCSP responder use. Issuers are named by
/// their RFC 6960 issuerKeyHash: SHA-1 of the issuing CA's subjectPublicKey BIT STRING value (20 octets).
/// </summary>
public interface IRevocationSource
{
    /// <summary>
    /// A counter that changes whenever a revocation is recorded, in this process or another one sharing the
    /// store. Cheap to read; caches of CRLs compare it to decide whether to rebuild.
    /// </summary>
    long RevocationVersion { get; }

    /// <summary>
    /// Like <see cref="RevocationVersion"/> but for one issuer only (0 until its first revocation), so a revocation
    /// under one factory does not rebuild the CRLs of the others.
    /// </summary>
    /// <param name="issuerKeyHash">20-octet SHA-1 issuerKeyHash.</param>
    long GetRevocationVersion(byte[] issuerKeyHash);

    /// <summary>
    /// A counter that changes whenever anything that can change an OCSP answer changes: a revocation or a newly
    /// applied certificate. Cheap to read.
    /// </summary>
    long RegistryVersion { get; }

    /// <summary>
    /// Streams the revoked certificates of one issuer, ordered by serial octets (so equal serials would be
    /// adjacent), without materialising them. Dispose the enumerator (foreach does) to release the store.
    /// </summary>
    /// <param name="issuerKeyHash">20-octet SHA-1 issuerKeyHash.</param>
    IEnumerable<RevokedEntry> EnumerateRevoked(byte[] issuerKeyHash);

    /// <summary>The status of one certificate.</summary>
    /// <param name="issuerKeyHash">20-octet SHA-1 issuerKeyHash.</param>
    /// <param name="serial">Normalised serial.</param>
    CertificateStatus GetStatus(ReadOnlySpan<byte> issuerKeyHash, ReadOnlySpan<byte> serial);

    /// <summary>
    /// Reserves the next CRL number for an issuer (RFC 5280 §5.2.3): 1 for the first CRL, then strictly
    /// increasing. The reservation is durable before this returns, so a number is never reused, even across
    /// restarts or when the CRL built with it is never published.
    /// </summary>
    /// <param name="issuerKeyHash">20-octet SHA-1 issuerKeyHash.</param>
    System.Numerics.BigInteger NextCrlNumber(byte[] issuerKeyHash);
}

/// <summary>How a revoke call ended.</summary>
public enum RevokeOutcome
{
    /// <summary>The certificate is now revoked (durably).</summary>
    Revoked,
    /// <summary>The certificate was already revoked; nothing changed. The stored revocation is reported.</summary>
    AlreadyRevoked,
}

/// <summary>The result of a revocation.</summary>
/// <param name="Outcome">Revoked now, or already revoked before.</param>
/// <param name="FactoryId">The factory whose issuing CA issued the certificate, or null when the registry has no journal for it.</param>
/// <param name="IssuerKeyHash">20-octet SHA-1 issuerKeyHash.</param>
/// <param name="DeviceId">The device the certificate was issued to.</param>
/// <param name="Entry">The stored revocation (for <see cref="RevokeOutcome.AlreadyRevoked"/>, the earlier one).</param>
public sealed record RevokeResult(RevokeOutcome Outcome, string? FactoryId, byte[] IssuerKeyHash, string DeviceId, RevokedEntry Entry);

/// <summary>The write slice for revocations (CLI and admin API).</summary>
public interface IRevocationStore
{
    /// <summary>
    /// Revokes one issued certificate. The revocation is committed durably (SQLite synchronous=FULL) before this
    /// returns. Revoking an already revoked certificate changes nothing and reports <see cref="RevokeOutcome.AlreadyRevoked"/>.
    /// </summary>
    /// <param name="issuer">The issuer: a factory id (as in the journal genesis) or the hex SHA-1 issuerKeyHash; null to search every issuer (an error if the serial is ambiguous).</param>
    /// <param name="serial">Normalised serial.</param>
    /// <param name="reason">RFC 5280 §5.3.1 reason; not <see cref="CrlReason.RemoveFromCrl"/>.</param>
    /// <param name="invalidityDate">RFC 5280 §5.3.2 invalidity date (when the key is known or suspected to have been compromised); not in the future.</param>
    /// <param name="actor">Who revoked (operator name, "cli:user", ...); recorded, 1..200 characters.</param>
    /// <exception cref="ArgumentException"><paramref name="reason"/> is removeFromCRL or undefined, <paramref name="actor"/> is empty or too long, or <paramref name="invalidityDate"/> is in the future.</exception>
    /// <exception cref="RevocationException">The issuer or the serial is unknown to the registry, or the serial is ambiguous across issuers.</exception>
    RevokeResult Revoke(string? issuer, byte[] serial, CrlReason reason, DateTimeOffset? invalidityDate, string actor);

    /// <summary>
    /// Revokes every issued certificate that matches <paramref name="selector"/> in one durable transaction
    /// (brief: "revoke by device ID, or by batch/station"). Already revoked certificates keep their revocation.
    /// </summary>
    /// <param name="issuer">Factory id or hex issuerKeyHash to restrict to, or null for every issuer.</param>
    /// <param name="selector">Device, station and/or batch; at least one.</param>
    /// <param name="reason">As for <see cref="Revoke"/>.</param>
    /// <param name="invalidityDate">As for <see cref="Revoke"/>.</param>
    /// <param name="actor">As for <see cref="Revoke"/>.</param>
    /// <exception cref="ArgumentException">The selector is empty, or as for <see cref="Revoke"/>.</exception>
    /// <exception cref="RevocationException">The issuer is unknown, or no certificate matches.</exception>
    BulkRevokeResult RevokeMatching(string? issuer, RevocationSelector selector, CrlReason reason, DateTimeOffset? invalidityDate, string actor);
}

/// <summary>
/// Selects certificates for a bulk revocation (a device re-keyed, a compromised station, a recalled batch). Every
/// non-null field must match; at least one is required.
/// </summary>
/// <param name="DeviceId">IEEE 802.1AR device serial, or null.</param>
/// <param name="StationId">Requesting station, or null.</param>
/// <param name="BatchId">Order or batch, or null.</param>
public sealed record RevocationSelector(string? DeviceId = null, string? StationId = null, string? BatchId = null)
{
    /// <summary>True when no field is set.</summary>
    public bool IsEmpty => DeviceId is null && StationId is null && BatchId is null;

    /// <inheritdoc />
    public override string ToString() => string.Join(" ", new[] { ("device", DeviceId), ("station", StationId), ("batch", BatchId) }
        .Where(p => p.Item2 is not null).Select(p => $"{p.Item1} '{p.Item2}'"));
}

/// <summary>The result of a bulk revocation.</summary>
/// <param name="Matched">Certificates that match the selector.</param>
/// <param name="NewlyRevoked">Of those, how many this call revoked.</param>
/// <param name="AlreadyRevoked">Of those, how many were revoked before (left unchanged).</param>
public sealed record BulkRevokeResult(long Matched, long NewlyRevoked, long AlreadyRevoked);

/// <summary>A revocation was refused; the message says what is wrong and what to do (e.g. "serial ... was never issued by F1").</summary>
public sealed class RevocationException : Exception
{
    /// <summary>Creates the exception.</summary>
    public RevocationException(string message) : base(message) { }
}
