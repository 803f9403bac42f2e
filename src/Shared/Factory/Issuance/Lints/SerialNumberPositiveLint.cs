using System.Numerics;

namespace OfflinePki.Issuance.Lints;

/// <summary>RFC 5280 §4.1.2.2: the serial number MUST be a positive integer.</summary>
public sealed class SerialNumberPositiveLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "serial_number_positive";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.1.2.2";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context) =>
        new BigInteger(tbs.Serial, isUnsigned: false, isBigEndian: true).Sign > 0 ? null : "serial number is zero or negative";
}
