using System.Formats.Asn1;

namespace OfflinePki.Issuance.Lints;

/// <summary>
/// RFC 5280 §4.1.2.5: dates through 2049 MUST be UTCTime, dates in 2050 or later MUST be GeneralizedTime
/// (which includes 99991231235959Z, IEEE 802.1AR §8.5).
/// </summary>
public sealed class ValidityTimeEncodingLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "validity_time_encoding";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.1.2.5; IEEE 802.1AR §8.5";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        static bool Ok(DateTimeOffset t, UniversalTagNumber tag) =>
            t.UtcDateTime.Year < 2050 ? tag == UniversalTagNumber.UtcTime : tag == UniversalTagNumber.GeneralizedTime;
        return Ok(tbs.NotBefore, tbs.ValidityTags.NotBefore) && Ok(tbs.NotAfter, tbs.ValidityTags.NotAfter)
            ? null : "a validity time uses the wrong type (UTCTime through 2049, GeneralizedTime from 2050)";
    }
}
