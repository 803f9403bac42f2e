namespace OfflinePki.Ocsp;

/// <summary>RFC 6960 §4.2.1: KeyHash is the SHA-1 hash of the responder's public key (20 octets).</summary>
public sealed class OcspResponderIdIsSha1KeyHash : IOcspLint
{
    /// <inheritdoc />
    public string Name => "ocsp_responder_id_sha1_key_hash";
    /// <inheritdoc />
    public string Citation => "RFC 6960 §4.2.1";
    /// <inheritdoc />
    public string? Check(OcspResponseDraft draft) => draft?.ResponderKeyHash.Length == 20 ? null : "ResponderID byKey is not a 20-octet SHA-1 hash";
}
