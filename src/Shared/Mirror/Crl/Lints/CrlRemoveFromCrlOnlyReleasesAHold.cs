using OfflinePki.Revocation;

namespace OfflinePki.Crl;

/// <summary>
/// RFC 5280 §5.3.1: removeFromCRL "is for use with delta CRLs ... only and indicates that an existing CRL entry should now
/// be removed owing to certificate expiration or hold release". A delta that lists removeFromCRL for a serial its base
/// lists with a final reason (anything but certificateHold) would un-revoke a certificate: refused. (A full CRL never
/// carries removeFromCRL: <see cref="CrlNoRemoveFromCrlInFullCrl"/>.)
/// </summary>
public sealed class CrlRemoveFromCrlOnlyReleasesAHold : IDeltaCrlLint
{
    /// <inheritdoc />
    public string Name => "crl_remove_from_crl_only_releases_a_hold";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.3.1";

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
            if (b is null || DeltaCrlLints.ReasonOf(d) != CrlReason.RemoveFromCrl)
            {
                continue;
            }

            var baseReason = DeltaCrlLints.ReasonOf(b);
            if (baseReason != CrlReason.CertificateHold)
            {
                yield return $"serial {Convert.ToHexString(d.Serial.Span)} is removeFromCRL in the delta but the base lists it as {(baseReason is { } r ? CrlReasons.Name(r) : "an undecodable reason")}, which is final; only certificateHold can be released";
            }
        }
    }
}
