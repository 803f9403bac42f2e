namespace OfflinePki.Ocsp;

/// <summary>RFC 6960 §4.2.1: a successful response carries at least one SingleResponse, and one per Request (§4.2.2.3 rules aside).</summary>
public sealed class OcspResponsesNotEmpty : IOcspLint
{
    /// <inheritdoc />
    public string Name => "ocsp_responses_not_empty";
    /// <inheritdoc />
    public string Citation => "RFC 6960 §4.2.1";
    /// <inheritdoc />
    public string? Check(OcspResponseDraft draft) => draft?.Responses.Count > 0 ? null : "no SingleResponse";
}
