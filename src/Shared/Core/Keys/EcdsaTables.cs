using System.Security.Cryptography;

namespace OfflinePki.Keys;

/// <summary>
/// An ECDSA verifier bound to one fixed public key, with a precomputed table for it (built by the OpenSsl project).
/// It owns native memory (the tables), released by <see cref="IDisposable.Dispose"/> (idempotent; a verify running
/// concurrently finishes first).
/// </summary>
internal interface IFixedKeyEcdsaVerifier : IDisposable
{
    /// <summary>Verifies a DER Ecdsa-Sig-Value (RFC 3279 §2.2.3) over <paramref name="data"/> hashed with <paramref name="hash"/>.</summary>
    /// <returns>False for a bad, malformed or non-canonical signature.</returns>
    /// <exception cref="ObjectDisposedException">The verifier has been disposed.</exception>
    bool Verify(ReadOnlySpan<byte> data, HashAlgorithmName hash, ReadOnlySpan<byte> derSignature);
}

/// <summary>
/// Where <see cref="SignatureCheckKey"/> gets a precomputed-table verifier for a fixed ECDSA key. Core has no native
/// calls: a host that wants the fast path installs <see cref="Factory"/> at start-up (the OpenSsl project's
/// <c>OpenSslAcceleration.Enable</c>); with none installed every check uses the runtime's verifier.
/// </summary>
internal static class EcdsaTables
{
    /// <summary>Builds a table for a public key, or returns null where it cannot (the runtime's verifier is used then).</summary>
    public static Func<ECDsa, IFixedKeyEcdsaVerifier?>? Factory { get; set; }

    /// <summary>A table for <paramref name="publicKey"/> from <see cref="Factory"/>, or null.</summary>
    public static IFixedKeyEcdsaVerifier? TryCreate(ECDsa publicKey) => Factory?.Invoke(publicKey);
}
