namespace OfflinePki.Crl;

/// <summary>
/// RFC 5280 §5.2.4: the base plus the delta "is equivalent to a complete CRL ... at the time of publication of the delta",
/// so the delta carries only what changed after the base was built. Checked, by a linear walk of both entry lists: every
/// delta entry absent from the base has a revocationDate (for removeFromCRL, the release time) not before the base's
/// thisUpdate (an older revocation missing from the base means the base was not complete, or is not this delta's base);
/// and a delta entry also listed in the base is not older than the base's entry. The mirror makes this exact: a revocation
/// takes its time under the registry's write lock, and a full CRL reads its thisUpdate before it takes that lock to read
/// the change watermark.
/// </summary>
public sealed class CrlDeltaNoEntryOlderThanBase : IDeltaCrlLint
{
    /// <inheritdoc />
    public string Name => "crl_delta_no_entry_older_than_base";
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

        foreach (var (d, b) in DeltaCrlLints.Pair(delta, baseCrl))
        {
            var when = d.RevocationDate;
            if (b is null && when < baseCrl.ThisUpdate)
            {
                yield return $"serial {Convert.ToHexString(d.Serial.Span)} changed at {when:O}, before the base's thisUpdate {baseCrl.ThisUpdate:O}, but the base does not list it (the base was not complete, or is not this delta's base)";
            }
            else if (b is not null && when < b.RevocationDate)
            {
                yield return $"serial {Convert.ToHexString(d.Serial.Span)} has revocationDate {when:O}, older than the base's entry {b.RevocationDate:O}";
            }
        }
    }
}
