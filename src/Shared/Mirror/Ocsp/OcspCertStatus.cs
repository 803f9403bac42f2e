namespace OfflinePki.Ocsp;

/// <summary>The certStatus of one SingleResponse (RFC 6960 §4.2.1).</summary>
public enum OcspCertStatus
{
    /// <summary>good [0] IMPLICIT NULL.</summary>
    Good,
    /// <summary>revoked [1] IMPLICIT RevokedInfo.</summary>
    Revoked,
    /// <summary>unknown [2] IMPLICIT UnknownInfo.</summary>
    Unknown,
}
