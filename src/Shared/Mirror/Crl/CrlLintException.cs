namespace OfflinePki.Crl;

/// <summary>A CRL failed a lint; it was not signed. The message lists every failed rule with its citation.</summary>
public sealed class CrlLintException : Exception
{
    /// <summary>Creates the exception from the failures ("name (citation): message").</summary>
    public CrlLintException(IReadOnlyList<string> failures)
        : base("CRL refused before signing: " + string.Join("; ", failures))
    {
        Failures = failures;
    }

    /// <summary>Each failure, "name (citation): message".</summary>
    public IReadOnlyList<string> Failures { get; }
}
