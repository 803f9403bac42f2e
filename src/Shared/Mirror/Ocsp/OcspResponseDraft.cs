namespace OfflinePki.Ocsp;

/// <summary>A BasicOCSPResponse's ResponseData before encoding (RFC 6960 §4.2.1).</summary>
/// <param name="ResponderKeyHash">ResponderID byKey: SHA-1 of the responder's subjectPublicKey.</param>
/// <param name="ProducedAt">producedAt.</param>
/// <param name="Responses">SingleResponses, one per request.</param>
/// <param name="NonceExtensionValue">The nonce extnValue to echo, or null.</param>
/// <param name="RequestHadNonce">True when the request asked for a nonce.</param>
/// <param name="ExtendedRevoke">True to include id-pkix-ocsp-extended-revoke (RFC 6960 §4.4.8).</param>
/// <param name="ResponderNotBefore">notBefore of the responder certificate that will be sent.</param>
/// <param name="ResponderNotAfter">notAfter of the responder certificate that will be sent.</param>
public sealed record OcspResponseDraft(byte[] ResponderKeyHash, DateTimeOffset ProducedAt, IReadOnlyList<SingleResponseDraft> Responses,
    byte[]? NonceExtensionValue, bool RequestHadNonce, bool ExtendedRevoke, DateTimeOffset ResponderNotBefore, DateTimeOffset ResponderNotAfter);
