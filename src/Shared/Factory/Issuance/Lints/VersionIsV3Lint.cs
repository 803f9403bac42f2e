namespace OfflinePki.Issuance.Lints;

/// <summary>RFC 5280 §4.1.2.1 / IEEE 802.1AR §8.1: a certificate with extensions is v3 (Version value 2).</summary>
public sealed class VersionIsV3Lint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "version_is_v3";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.1.2.1; IEEE 802.1AR §8.1";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context) =>
        tbs.Version == 2 ? null : $"version is {tbs.Version}, expected 2 (v3)";
}
