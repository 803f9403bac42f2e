using System.Formats.Asn1;
using OfflinePki.Asn1;

namespace OfflinePki.Issuance.Lints;

/// <summary>
/// Matter Core Specification §6.2.2 with RFC 5280 §4.1.2.5 (matter-dac profile): a DAC has no well-defined
/// expiration, notAfter is the GeneralizedTime 99991231235959Z.
/// </summary>
public sealed class MatterNotAfterNoExpirationLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "matter_dac_not_after_99991231235959Z";
    /// <inheritdoc />
    public string Citation => "Matter Core Specification §6.2.2; RFC 5280 §4.1.2.5";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context) =>
        tbs.NotAfter == DerTime.NoWellDefinedExpiration && tbs.ValidityTags.NotAfter == UniversalTagNumber.GeneralizedTime
            ? null : $"notAfter is {tbs.NotAfter:O}, expected GeneralizedTime 99991231235959Z";
}
