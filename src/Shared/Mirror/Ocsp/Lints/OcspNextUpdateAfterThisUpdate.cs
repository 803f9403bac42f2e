namespace OfflinePki.Ocsp;

/// <summary>RFC 6960 §4.2.2.1 (and RFC 5019 §2.2.4): nextUpdate, when set, is after thisUpdate.</summary>
public sealed class OcspNextUpdateAfterThisUpdate : IOcspLint
{
    /// <inheritdoc />
    public string Name => "ocsp_next_update_after_this_update";
    /// <inheritdoc />
    public string Citation => "RFC 6960 §4.2.2.1";
    /// <inheritdoc />
    public string? Check(OcspResponseDraft draft)
    {
        ArgumentNullException.ThrowIfNull(draft);
        var bad = draft.Responses.FirstOrDefault(r => r.NextUpdate <= r.ThisUpdate);
        return bad is null ? null : $"nextUpdate {bad.NextUpdate:O} is not after thisUpdate {bad.ThisUpdate:O}";
    }
}
