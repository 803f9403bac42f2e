namespace OfflinePki.Ocsp;

/// <summary>One rule an OCSP response must satisfy before it is signed; each cites its RFC section.</summary>
public interface IOcspLint
{
    /// <summary>Short rule name.</summary>
    string Name { get; }

    /// <summary>The RFC section, e.g. "RFC 6960 §4.4.1".</summary>
    string Citation { get; }

    /// <summary>The violation, or null when the draft passes.</summary>
    string? Check(OcspResponseDraft draft);
}
