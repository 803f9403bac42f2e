namespace OfflinePki.Crl;

/// <summary>
/// One rule a delta CRL must satisfy against the complete CRL it names as its base (RFC 5280 §5.2.4), checked before
/// the delta is signed. Each implementation checks one rule and cites its RFC section.
/// </summary>
public interface IDeltaCrlLint
{
    /// <summary>Short rule name, e.g. "crl_delta_scope_matches_base".</summary>
    string Name { get; }

    /// <summary>Where the rule comes from, e.g. "RFC 5280 §5.2.4".</summary>
    string Citation { get; }

    /// <summary>Checks the delta's TBSCertList against its base and yields one message per violation (nothing when it passes).</summary>
    /// <param name="delta">The encoded delta TBSCertList about to be signed.</param>
    /// <param name="baseCrl">
    /// The TBSCertList of the complete CRL the mirror issued and that the delta names as its base; null when the caller
    /// gave none (or it could not be parsed), which <see cref="CrlDeltaBaseIsIssuedCompleteCrl"/> refuses and the other
    /// rules skip.
    /// </param>
    IEnumerable<string> Check(TbsCertListView delta, TbsCertListView? baseCrl);
}
