using OfflinePki.Asn1;

namespace OfflinePki.Issuance.Lints;

/// <summary>Matter Core Specification §6.2.2 (matter-dac profile, as profiled here): a DAC carries no extendedKeyUsage.</summary>
public sealed class MatterNoExtendedKeyUsageLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "matter_no_extended_key_usage";
    /// <inheritdoc />
    public string Citation => "Matter Core Specification §6.2.2";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context) =>
        tbs.Find(Oids.ExtendedKeyUsage) is null ? null : "extendedKeyUsage is present in a Matter DAC";
}
