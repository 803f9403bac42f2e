namespace OfflinePki.Ocsp;

/// <summary>RFC 6960 §4.2.1 RevokedInfo: a revoked answer has a revocationTime, and it is not after thisUpdate.</summary>
public sealed class OcspRevocationTimeNotAfterThisUpdate : IOcspLint
{
    /// <inheritdoc />
    public string Name => "ocsp_revocation_time_not_after_this_update";
    /// <inheritdoc />
    public string Citation => "RFC 6960 §4.2.1";
    /// <inheritdoc />
    public string? Check(OcspResponseDraft draft)
    {
        ArgumentNullException.ThrowIfNull(draft);
        foreach (var r in draft.Responses)
        {
            if (r.Status == OcspCertStatus.Revoked && (r.RevocationTime is null || r.RevocationTime > r.ThisUpdate))
            {
                return $"revoked answer with revocationTime {r.RevocationTime:O} missing or after thisUpdate {r.ThisUpdate:O}";
            }
        }

        return null;
    }
}
