namespace OfflinePki.Ocsp;

/// <summary>
/// RFC 6960 §4.2.2.2 (a client accepts a delegated responder's signature only through a certificate valid now, RFC 5280
/// §6.1.3): the responder certificate is valid at producedAt. A responder whose certificate has lapsed must stop signing.
/// </summary>
public sealed class OcspResponderCertificateValidAtProducedAt : IOcspLint
{
    /// <inheritdoc />
    public string Name => "ocsp_responder_certificate_valid_at_produced_at";
    /// <inheritdoc />
    public string Citation => "RFC 6960 §4.2.2.2";
    /// <inheritdoc />
    public string? Check(OcspResponseDraft draft)
    {
        ArgumentNullException.ThrowIfNull(draft);
        return draft.ProducedAt < draft.ResponderNotBefore || draft.ProducedAt > draft.ResponderNotAfter
            ? $"the responder certificate is valid {draft.ResponderNotBefore:O}..{draft.ResponderNotAfter:O}, not at producedAt {draft.ProducedAt:O}; renew it"
            : null;
    }
}
