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
    /// <param name="progress">Receives progress after each committed batch, or null.</param>
    /// <exception cref="RevocationException">The issuer is unknown, or no certificate matches.</exception>
    /// <remarks>
    /// The matching certificates are revoked in batched transactions (each durable, each recorded in the audit log),
    /// so 100,000 certificates do not hold one huge write transaction; an interrupted call leaves whole batches done
    /// and can simply be repeated (already revoked certificates are skipped).
    /// </remarks>
    BulkRevokeResult RevokeMatching(string? issuer, RevocationSelector selector, CrlReason reason, DateTimeOffset? invalidityDate, string actor,
        IProgress<BulkRevokeProgress>? progress = null);

    /// <summary>
    /// Releases a certificateHold (RFC 5280 §5.3.1): the certificate is valid again, disappears from full CRLs and
    /// appears in the next delta CRL as removeFromCRL. Durable and audited before this returns.
    /// </summary>
    /// <param name="issuer">Factory id or hex issuerKeyHash, or null to search every issuer.</param>
    /// <param name="serial">Normalised serial.</param>
    /// <param name="actor">Who releases; 1..200 characters.</param>
    /// <exception cref="ArgumentException"><paramref name="actor"/> is empty or too long.</exception>
    /// <exception cref="RevocationException">The serial is unknown, ambiguous, not revoked, or revoked for a reason other than certificateHold (final).</exception>
    ReleaseResult ReleaseHold(string? issuer, byte[] serial, string actor);
}

/// <summary>
/// Selects certificates for a bulk revocation (a device re-keyed, a compromised station, a recalled batch, a whole
/// factory). Every non-null field must match; at least one of <paramref name="DeviceId"/>, <paramref name="StationId"/>,
/// <paramref name="BatchId"/> or <paramref name="AllOfIssuer"/> is required.
/// </summary>
/// <param name="DeviceId">IEEE 802.1AR device serial, or null.</param>
/// <param name="StationId">Requesting station, or null.</param>
/// <param name="BatchId">Order or batch, or null.</param>
/// <param name="IssuedFrom">Only certificates issued at or after this time (the journal's issuance time, i.e. notBefore), or null.</param>
/// <param name="IssuedTo">Only certificates issued at or before this time, or null.</param>
/// <param name="AllOfIssuer">Every certificate of the issuer named in the call (revocation "by factory"); needs an issuer.</param>
public sealed record RevocationSelector(string? DeviceId = null, string? StationId = null, string? BatchId = null,
    DateTimeOffset? IssuedFrom = null, DateTimeOffset? IssuedTo = null, bool AllOfIssuer = false)
{
    /// <summary>True when no selecting field (device, station, batch, whole issuer) is set; a time window alone does not select.</summary>
    public bool IsEmpty => DeviceId is null && StationId is null && BatchId is null && !AllOfIssuer;

    /// <inheritdoc />
    public override string ToString()
    {
        var parts = new[] { ("device", DeviceId), ("station", StationId), ("batch", BatchId) }
            .Where(p => p.Item2 is not null).Select(p => $"{p.Item1} '{p.Item2}'").ToList();
        if (AllOfIssuer)
        {
            parts.Insert(0, "every certificate");
        }

        if (IssuedFrom is { } f)
        {
            parts.Add(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"issued from {f.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}"));
        }

        if (IssuedTo is { } t)
        {
            parts.Add(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"issued to {t.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}"));
        }

        return string.Join(" ", parts);
    }
}

/// <summary>Progress of a bulk revocation, reported after each committed batch.</summary>
/// <param name="Done">Certificates revoked so far (committed).</param>
/// <param name="Total">Certificates this call will revoke (matched and not already revoked).</param>
public readonly record struct BulkRevokeProgress(long Done, long Total);

/// <summary>The result of releasing a certificateHold.</summary>
/// <param name="FactoryId">Factory of the issuing CA, or null when no journal names it.</param>
/// <param name="IssuerKeyHash">20-octet SHA-1 issuerKeyHash.</param>
/// <param name="DeviceId">Device the certificate was issued to.</param>
/// <param name="Serial">Normalised serial.</param>
/// <param name="ReleasedAt">When the hold was released (UTC, whole seconds).</param>
public sealed record ReleaseResult(string? FactoryId, byte[] IssuerKeyHash, string DeviceId, byte[] Serial, DateTimeOffset ReleasedAt);

/// <summary>
/// One change of a certificate's revocation state since a CRL was built, for delta CRLs (RFC 5280 §5.2.4).
/// </summary>
/// <param name="Serial">Normalised serial.</param>
/// <param name="Current">The revocation now in force, or null when the certificate is no longer revoked (a released hold: removeFromCRL).</param>
/// <param name="ChangedAt">Time of the latest change (UTC, whole seconds).</param>
public sealed record RevocationChange(byte[] Serial, RevokedEntry? Current, DateTimeOffset ChangedAt);

/// <summary>
/// The change feed of revocations that delta CRLs need (RFC 5280 §5.2.4): a per-issuer watermark (the last
/// revocation event id) and the changes after a watermark.
/// </summary>
public interface IRevocationChangeSource
{
    /// <summary>The id of the issuer's latest revocation event (revoke or release), 0 when none. Read it before building a full CRL.</summary>
    /// <param name="issuerKeyHash">20-octet SHA-1 issuerKeyHash.</param>
    long GetRevocationWatermark(byte[] issuerKeyHash);

    /// <summary>The certificates of the issuer whose revocation state changed after <paramref name="watermark"/>, ordered by serial octets, each once.</summary>
    /// <param name="issuerKeyHash">20-octet SHA-1 issuerKeyHash.</param>
    /// <param name="watermark">The watermark read before the base CRL was built.</param>
    IEnumerable<RevocationChange> EnumerateChangesSince(byte[] issuerKeyHash, long watermark);
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
