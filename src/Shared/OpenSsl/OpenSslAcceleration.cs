using OfflinePki.Keys;

namespace OfflinePki.OpenSsl;

/// <summary>Installs this project's precomputed-table ECDSA verifier as Core's fast path (<see cref="EcdsaTables"/>).</summary>
public static class OpenSslAcceleration
{
    /// <summary>
    /// Turns the fast path on: <see cref="SignatureCheckKey"/> builds an OpenSSL precomputed table for a fixed ECDSA
    /// key where libcrypto 3 is present, and keeps the runtime's verifier where it is not. Idempotent.
    /// Only P-256 keys get a table: measured with <c>bench ecdsaverify</c> (issue 16 finding 4), the table beats the
    /// runtime on P-256 (1.86x) but loses on P-384 (0.58x), so P-384 keys keep the runtime's verifier.
    /// </summary>
    public static void Enable() => EcdsaTables.Factory = static key => key.KeySize == 256 ? FixedKeyEcdsaVerifier.TryCreate(key) : null;

    /// <summary>Turns the fast path off: every signature check uses the runtime's verifier.</summary>
    public static void Disable() => EcdsaTables.Factory = null;
}
