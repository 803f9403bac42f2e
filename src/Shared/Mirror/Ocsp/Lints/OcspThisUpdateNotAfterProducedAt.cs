namespace OfflinePki.Ocsp;

/// <summary>RFC 6960 §4.2.2.1: thisUpdate is when the status was known correct, so not after producedAt.</summary>
public sealed class OcspThisUpdateNotAfterProducedAt : IOcspLint
{
    /// <inheritdoc />
    public string Name => "ocsp_this_update_not_after_produced_at";
    /// <inheritdoc />
    public string Citation => "RFC 6960 §4.2.2.1";
    /// <inheritdoc />
    public string? Check(OcspResponseDraft draft)
    {
        ArgumentNullException.ThrowIfNull(draft);
        var bad = draft.Responses.FirstOrDefault(r => r.ThisUpdate > draft.ProducedAt);
        return bad is null ? null : $"thisUpdate {bad.ThisUpdate:O} is after producedAt {draft.ProducedAt:O}";
    }
}
