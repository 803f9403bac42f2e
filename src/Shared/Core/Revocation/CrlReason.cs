namespace OfflinePki.Revocation;

/// <summary>
/// The CRL reason code (RFC 5280 §5.3.1), also used as the OCSP revocationReason (RFC 6960 §4.2.1).
/// <code>
/// CRLReason ::= ENUMERATED {
///      unspecified             (0),
///      keyCompromise           (1),
///      cACompromise            (2),
///      affiliationChanged      (3),
///      superseded              (4),
///      cessationOfOperation    (5),
///      certificateHold         (6),
///           -- value 7 is not used
///      removeFromCRL           (8),
///      privilegeWithdrawn      (9),
///      aACompromise           (10) }
/// </code>
/// </summary>
public enum CrlReason
{
    /// <summary>unspecified (0); RFC 5280 §5.3.1 says to omit the reasonCode extension rather than encode it.</summary>
    Unspecified = 0,
    /// <summary>keyCompromise (1).</summary>
    KeyCompromise = 1,
    /// <summary>cACompromise (2).</summary>
    CACompromise = 2,
    /// <summary>affiliationChanged (3).</summary>
    AffiliationChanged = 3,
    /// <summary>superseded (4).</summary>
    Superseded = 4,
    /// <summary>cessationOfOperation (5).</summary>
    CessationOfOperation = 5,
    /// <summary>certificateHold (6); also the reason of the RFC 6960 §2.2 "never issued" revoked answer.</summary>
    CertificateHold = 6,
    /// <summary>removeFromCRL (8); only meaningful in delta CRLs (RFC 5280 §5.3.1), never stored for a revocation.</summary>
    RemoveFromCrl = 8,
    /// <summary>privilegeWithdrawn (9).</summary>
    PrivilegeWithdrawn = 9,
    /// <summary>aACompromise (10).</summary>
    AACompromise = 10,
}

/// <summary>Parses and names <see cref="CrlReason"/> values the way RFC 5280 §5.3.1 spells them.</summary>
public static class CrlReasons
{
    private static readonly (string Name, CrlReason Value)[] Names =
    [
        ("unspecified", CrlReason.Unspecified),
        ("keyCompromise", CrlReason.KeyCompromise),
        ("cACompromise", CrlReason.CACompromise),
        ("affiliationChanged", CrlReason.AffiliationChanged),
        ("superseded", CrlReason.Superseded),
        ("cessationOfOperation", CrlReason.CessationOfOperation),
        ("certificateHold", CrlReason.CertificateHold),
        ("removeFromCRL", CrlReason.RemoveFromCrl),
        ("privilegeWithdrawn", CrlReason.PrivilegeWithdrawn),
        ("aACompromise", CrlReason.AACompromise),
    ];

    /// <summary>The RFC 5280 §5.3.1 name of <paramref name="reason"/>, e.g. "keyCompromise".</summary>
    public static string Name(CrlReason reason)
    {
        foreach (var (name, value) in Names)
        {
            if (value == reason)
            {
                return name;
            }
        }

        return ((int)reason).ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>True when <paramref name="value"/> is an assigned RFC 5280 §5.3.1 code (0-6, 8-10).</summary>
    public static bool IsDefined(CrlReason value) => value is >= CrlReason.Unspecified and <= CrlReason.CertificateHold
        or >= CrlReason.RemoveFromCrl and <= CrlReason.AACompromise;

    /// <summary>
    /// Parses an RFC 5280 §5.3.1 reason name (case-insensitive, e.g. "keyCompromise") for a revocation.
    /// removeFromCRL is refused: it is a delta-CRL marker, not a reason to revoke.
    /// </summary>
    /// <param name="text">The name as typed by an operator.</param>
    /// <param name="reason">The parsed reason.</param>
    /// <param name="error">Why parsing failed, listing the accepted names; null on success.</param>
    /// <returns>True when <paramref name="text"/> names a reason an operator may revoke with.</returns>
    public static bool TryParseForRevocation(string? text, out CrlReason reason, out string? error)
    {
        reason = CrlReason.Unspecified;
        foreach (var (name, value) in Names)
        {
            if (string.Equals(name, text?.Trim(), StringComparison.OrdinalIgnoreCase) && value != CrlReason.RemoveFromCrl)
            {
                reason = value;
                error = null;
                return true;
            }
        }

        error = $"unknown revocation reason '{text}'; use one of: "
            + string.Join(", ", Names.Where(n => n.Value != CrlReason.RemoveFromCrl).Select(n => n.Name)) + " (RFC 5280 §5.3.1)";
        return false;
    }
}
