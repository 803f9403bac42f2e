namespace OfflinePki.Ocsp;

/// <summary>An OCSP response failed a lint and was not signed; answered with internalError.</summary>
public sealed class OcspLintException : Exception
{
    /// <summary>Creates the exception from the failures ("name (citation): message").</summary>
    public OcspLintException(IReadOnlyList<string> failures) : base("OCSP response refused before signing: " + string.Join("; ", failures))
    {
        Failures = failures;
    }

    /// <summary>Each failure.</summary>
    public IReadOnlyList<string> Failures { get; }
}
