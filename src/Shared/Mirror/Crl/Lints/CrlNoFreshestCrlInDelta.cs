using OfflinePki.Asn1;

namespace OfflinePki.Crl;

/// <summary>RFC 5280 §5.2.6: freshestCRL "MUST NOT appear in delta CRLs".</summary>
public sealed class CrlNoFreshestCrlInDelta : ICrlLint
{
    /// <inheritdoc />
    public string Name => "crl_no_freshest_crl_in_delta";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.2.6";

    /// <inheritdoc />
    public IEnumerable<string> Check(TbsCertListView tbs, bool fullCrl)
    {
        ArgumentNullException.ThrowIfNull(tbs);
        if (!fullCrl && tbs.FindExtension(Oids.FreshestCrl) is not null)
        {
            yield return "a delta CRL carries freshestCRL";
        }
    }
}
