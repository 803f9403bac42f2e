using OfflinePki.Revocation;

namespace OfflinePki.Ocsp;

/// <summary>
/// RFC 6960 §2.2 and §4.4.8: a responder that answers "revoked" for a never-issued serial (revocationTime
/// 1970-01-01T00:00:00Z, reason certificateHold) MUST include the extended revoke extension.
/// </summary>
public sealed class OcspExtendedRevokeWhenNeverIssuedIsRevoked : IOcspLint
{
    /// <summary>The revocationTime of the RFC 6960 §2.2 never-issued answer.</summary>
    public static readonly DateTimeOffset NeverIssuedRevocationTime = DateTimeOffset.UnixEpoch;

    /// <inheritdoc />
    public string Name => "ocsp_extended_revoke_when_never_issued_revoked";
    /// <inheritdoc />
    public string Citation => "RFC 6960 §2.2, §4.4.8";
    /// <inheritdoc />
    public string? Check(OcspResponseDraft draft)
    {
        ArgumentNullException.ThrowIfNull(draft);
        foreach (var r in draft.Responses)
        {
            if (!r.NeverIssued || r.Status != OcspCertStatus.Revoked)
            {
                continue;
            }

            if (!draft.ExtendedRevoke)
            {
                return "a never-issued serial is answered revoked without id-pkix-ocsp-extended-revoke";
            }

            if (r.RevocationTime != NeverIssuedRevocationTime || r.Reason != CrlReason.CertificateHold)
            {
                return "a never-issued revoked answer must use revocationTime 1970-01-01T00:00:00Z and reason certificateHold";
            }
        }

        return null;
    }
}
