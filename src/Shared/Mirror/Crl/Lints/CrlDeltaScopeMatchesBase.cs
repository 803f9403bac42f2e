using OfflinePki.Asn1;

namespace OfflinePki.Crl;

/// <summary>
/// RFC 5280 §5.2.4: "the scope of the delta CRL MUST be the same as the scope of the complete CRL referenced as the base.
/// The referenced base CRL and the delta CRL MUST omit the issuing distribution point extension or contain identical
/// issuing distribution point extensions."
/// </summary>
public sealed class CrlDeltaScopeMatchesBase : IDeltaCrlLint
{
    /// <inheritdoc />
    public string Name => "crl_delta_scope_matches_base";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.2.4";

    /// <inheritdoc />
    public IEnumerable<string> Check(TbsCertListView delta, TbsCertListView? baseCrl)
    {
        ArgumentNullException.ThrowIfNull(delta);
        if (baseCrl is null)
        {
            yield break;
        }

        var d = delta.FindExtension(Oids.IssuingDistributionPoint);
        var b = baseCrl.FindExtension(Oids.IssuingDistributionPoint);
        if (d is null && b is null)
        {
            yield break;
        }

        if (d is null || b is null)
        {
            yield return d is null
                ? "the base CRL is partitioned (issuingDistributionPoint) but the delta is not"
                : "the delta carries an issuingDistributionPoint but its base CRL has none";
        }
        else if (d.Critical != b.Critical || !d.Value.Span.SequenceEqual(b.Value.Span))
        {
            yield return "the delta's issuingDistributionPoint differs from its base CRL's (another partition)";
        }
    }
}
