namespace OfflinePki.Crl;

/// <summary>RFC 5280 §5.1.2.1: when extensions are used, the version MUST be present and be v2 (INTEGER 1).</summary>
public sealed class CrlVersionIsV2WhenExtensionsPresent : ICrlLint
{
    /// <inheritdoc />
    public string Name => "crl_version_v2_when_extensions";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.1.2.1";

    /// <inheritdoc />
    public IEnumerable<string> Check(TbsCertListView tbs, bool fullCrl)
    {
        ArgumentNullException.ThrowIfNull(tbs);
        // Entry extensions only matter when there are no CRL extensions (a scan of every entry otherwise skipped).
        if ((tbs.Extensions.Count > 0 || tbs.Entries().Any(e => e.Extensions.Count > 0)) && tbs.Version != 1)
        {
            yield return $"extensions are present but version is {(tbs.Version?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "absent")}, not v2 (1)";
        }
        else if (tbs.Version is not null and not 1)
        {
            yield return $"version {tbs.Version} is present but is not v2 (1)";
        }
    }
}
