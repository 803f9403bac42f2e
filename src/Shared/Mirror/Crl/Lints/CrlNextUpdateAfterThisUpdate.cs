namespace OfflinePki.Crl;

/// <summary>RFC 5280 §5.1.2.5: conforming issuers MUST include nextUpdate, and it is later than thisUpdate.</summary>
public sealed class CrlNextUpdateAfterThisUpdate : ICrlLint
{
    /// <inheritdoc />
    public string Name => "crl_next_update_after_this_update";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.1.2.5";

    /// <inheritdoc />
    public IEnumerable<string> Check(TbsCertListView tbs, bool fullCrl)
    {
        ArgumentNullException.ThrowIfNull(tbs);
        if (tbs.NextUpdate is not { } next)
        {
            yield return "nextUpdate is absent";
        }
        else if (next <= tbs.ThisUpdate)
        {
            yield return $"nextUpdate {next:O} is not after thisUpdate {tbs.ThisUpdate:O}";
        }
    }
}
