namespace OfflinePki.Crl;

/// <summary>One rule a CRL must satisfy before it is signed. Each implementation checks one rule and cites its RFC section.</summary>
public interface ICrlLint
{
    /// <summary>Short rule name, e.g. "crl_next_update_after_this_update".</summary>
    string Name { get; }

    /// <summary>Where the rule comes from, e.g. "RFC 5280 §5.1.2.5".</summary>
    string Citation { get; }

    /// <summary>Checks the TBSCertList and yields one message per violation (nothing when it passes).</summary>
    /// <param name="tbs">The encoded TBSCertList about to be signed.</param>
    /// <param name="fullCrl">True for a full (non-delta) CRL.</param>
    IEnumerable<string> Check(TbsCertListView tbs, bool fullCrl);
}
