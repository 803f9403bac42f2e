using OfflinePki.Asn1;

namespace OfflinePki.Crl;

/// <summary>
/// RFC 5280 §5.2.4: "The referenced base CRL is a CRL that was explicitly issued as a CRL that is complete for a given
/// scope", by the same issuer with the same key. Checked: a base is given (the complete CRL this mirror issued); it carries
/// no deltaCRLIndicator; its cRLNumber equals the delta's BaseCRLNumber and is less than the delta's own cRLNumber; its
/// issuer Name and authorityKeyIdentifier equal the delta's; and its thisUpdate is not after the delta's (no delta whose
/// base is newer than itself).
/// </summary>
public sealed class CrlDeltaBaseIsIssuedCompleteCrl : IDeltaCrlLint
{
    /// <inheritdoc />
    public string Name => "crl_delta_base_is_issued_complete_crl";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.2.4";

    /// <inheritdoc />
    public IEnumerable<string> Check(TbsCertListView delta, TbsCertListView? baseCrl)
    {
        ArgumentNullException.ThrowIfNull(delta);
        var baseNumber = DeltaCrlLints.ReadInteger(delta.FindExtension(Oids.DeltaCrlIndicator));
        var ownNumber = DeltaCrlLints.ReadInteger(delta.FindExtension(Oids.CrlNumber));
        if (baseCrl is null)
        {
            yield return $"BaseCRLNumber {baseNumber?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"} names no complete CRL this mirror issued (no base CRL was given to check it against)";
            yield break;
        }

        if (baseCrl.FindExtension(Oids.DeltaCrlIndicator) is not null)
        {
            yield return "the base is itself a delta CRL; a delta's base must be a complete CRL";
        }

        var issuedNumber = DeltaCrlLints.ReadInteger(baseCrl.FindExtension(Oids.CrlNumber));
        if (issuedNumber is null)
        {
            yield return "the base CRL has no readable cRLNumber";
        }
        else if (baseNumber != issuedNumber)
        {
            yield return $"BaseCRLNumber {baseNumber?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"} does not name the issued complete CRL, whose cRLNumber is {issuedNumber}";
        }
        else if (ownNumber is { } own && issuedNumber >= own)
        {
            yield return $"the base CRL's number {issuedNumber} is not less than the delta's cRLNumber {own}";
        }

        if (!baseCrl.Issuer.Span.SequenceEqual(delta.Issuer.Span))
        {
            yield return "the base CRL has another issuer Name than the delta";
        }

        var baseAki = baseCrl.FindExtension(Oids.AuthorityKeyIdentifier)?.Value ?? ReadOnlyMemory<byte>.Empty;
        var deltaAki = delta.FindExtension(Oids.AuthorityKeyIdentifier)?.Value ?? ReadOnlyMemory<byte>.Empty;
        if (!baseAki.Span.SequenceEqual(deltaAki.Span))
        {
            yield return "the base CRL has another authorityKeyIdentifier than the delta (the same key must sign both)";
        }

        if (baseCrl.ThisUpdate > delta.ThisUpdate)
        {
            yield return $"the base CRL's thisUpdate {baseCrl.ThisUpdate:O} is after the delta's thisUpdate {delta.ThisUpdate:O}";
        }
    }
}
