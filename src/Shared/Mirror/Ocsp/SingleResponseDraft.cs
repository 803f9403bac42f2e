using OfflinePki.Revocation;

namespace OfflinePki.Ocsp;

/// <summary>One SingleResponse before encoding (RFC 6960 §4.2.1).</summary>
/// <param name="CertId">The request's CertID DER, echoed.</param>
/// <param name="Status">certStatus.</param>
/// <param name="RevocationTime">RevokedInfo.revocationTime when revoked.</param>
/// <param name="Reason">RevokedInfo.revocationReason; null or unspecified to omit.</param>
/// <param name="ThisUpdate">thisUpdate.</param>
/// <param name="NextUpdate">nextUpdate.</param>
/// <param name="NeverIssued">True when this "revoked" is the RFC 6960 §2.2 extended answer for a never-issued serial.</param>
public sealed record SingleResponseDraft(byte[] CertId, OcspCertStatus Status, DateTimeOffset? RevocationTime, CrlReason? Reason,
    DateTimeOffset ThisUpdate, DateTimeOffset NextUpdate, bool NeverIssued);
