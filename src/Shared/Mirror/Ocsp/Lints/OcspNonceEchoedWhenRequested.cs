namespace OfflinePki.Ocsp;

/// <summary>RFC 6960 §4.4.1: when the request carries a nonce, the response echoes the same nonce.</summary>
public sealed class OcspNonceEchoedWhenRequested : IOcspLint
{
    /// <inheritdoc />
    public string Name => "ocsp_nonce_echoed_when_requested";
    /// <inheritdoc />
    public string Citation => "RFC 6960 §4.4.1";
    /// <inheritdoc />
    public string? Check(OcspResponseDraft draft)
    {
        ArgumentNullException.ThrowIfNull(draft);
        if (draft.RequestHadNonce && draft.NonceExtensionValue is null)
        {
            return "the request asked for a nonce but the response does not echo one";
        }

        return !draft.RequestHadNonce && draft.NonceExtensionValue is not null ? "the response carries a nonce nobody asked for" : null;
    }
}
