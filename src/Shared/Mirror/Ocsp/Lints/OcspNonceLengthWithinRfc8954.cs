namespace OfflinePki.Ocsp;

/// <summary>
/// RFC 8954 §2.1: the echoed nonce is an OCTET STRING of 1 to 32 octets (the extnValue holds its DER), so a response
/// never carries a nonce a conforming client must reject.
/// </summary>
public sealed class OcspNonceLengthWithinRfc8954 : IOcspLint
{
    /// <inheritdoc />
    public string Name => "ocsp_nonce_length_within_rfc8954";
    /// <inheritdoc />
    public string Citation => "RFC 6960 §4.4.1, RFC 8954 §2.1";
    /// <inheritdoc />
    public string? Check(OcspResponseDraft draft)
    {
        ArgumentNullException.ThrowIfNull(draft);
        if (draft.NonceExtensionValue is not { } value)
        {
            return null;
        }

        try
        {
            var r = new System.Formats.Asn1.AsnReader(value, System.Formats.Asn1.AsnEncodingRules.DER);
            var nonce = r.ReadOctetString();
            r.ThrowIfNotEmpty();
            return nonce.Length is >= 1 and <= OcspRequestParser.MaxNonceOctets ? null : $"the nonce is {nonce.Length} octets, not 1..{OcspRequestParser.MaxNonceOctets}";
        }
        catch (System.Formats.Asn1.AsnContentException)
        {
            return "the nonce extnValue is not a DER OCTET STRING";
        }
    }
}
