namespace OfflinePki.Issuance.Lints;

/// <summary>RFC 5280 §4.1.2.2: conforming CAs MUST NOT use serial numbers longer than 20 octets.</summary>
public sealed class SerialNumberLengthLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "serial_number_at_most_20_octets";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.1.2.2";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context) =>
        tbs.Serial.Length <= OfflinePki.Asn1.SerialNumber.MaxOctets ? null : $"serial number is {tbs.Serial.Length} octets";
}
