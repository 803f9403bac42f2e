using OfflinePki.Keys;

namespace OfflinePki.OpenSsl;

/// <summary>Installs this project's precomputed-table ECDSA verifier as Core's fast path (<see cref="EcdsaTables"/>).</summary>
public static class OpenSslAcceleration
{
    /// <summary>
    /// Turns the fast path on: <see cref="SignatureCheckKey"/> builds an OpenSSL precomputed table for a fixed ECDSA
    /// key where libcrypto 3 is present, and keeps the runtime's verifier where it is not. Idempotent.
    /// </summary>
    public static void Enable() => EcdsaTables.Factory = FixedKeyEcdsaVerifier.TryCreate;

    /// <summary>Turns the fast path off: every signature check uses the runtime's verifier.</summary>
    public static void Disable() => EcdsaTables.Factory = null;
}
