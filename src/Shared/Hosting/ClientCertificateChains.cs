using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace OfflinePki.Hosting;

/// <summary>
/// How a TLS listener builds the chain of a client certificate during the handshake: offline. The runtime's default
/// chain policy downloads a certificate's authorityInfoAccess caIssuers URL (RFC 5280 §4.2.2.1) to find a missing
/// issuer, so any client could make a listener fetch a URL of its choosing (and wait on it) before the application
/// sees the certificate. Every Kestrel listener that requests a client certificate sets this policy; the application
/// then validates the certificate against its own trust anchor (also with downloads disabled).
/// </summary>
public static class ClientCertificateChains
{
    /// <summary>A new chain policy for the TLS handshake: no certificate downloads, no revocation fetching.</summary>
    /// <returns>A fresh <see cref="X509ChainPolicy"/> (policies are mutable, so one per handshake).</returns>
    public static X509ChainPolicy OfflinePolicy() => new()
    {
        DisableCertificateDownloads = true,
        RevocationMode = X509RevocationMode.NoCheck,
    };

    /// <summary>Sets <see cref="OfflinePolicy"/> on a server handshake's options (a Kestrel <c>OnAuthenticate</c> step).</summary>
    /// <param name="options">The handshake's options.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    public static void ApplyOffline(SslServerAuthenticationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.CertificateChainPolicy = OfflinePolicy();
    }

    /// <summary>
    /// True when <paramref name="certificate"/> chains to <paramref name="root"/> at <paramref name="now"/> with nothing
    /// downloaded (no AIA, no revocation fetch) and carries clientAuth (RFC 5280 §4.2.1.12).
    /// </summary>
    /// <param name="certificate">The client certificate.</param>
    /// <param name="root">The only trust anchor.</param>
    /// <param name="now">The verification time.</param>
    /// <param name="why">The chain statuses when false, else empty.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static bool ChainsOffline(X509Certificate2 certificate, X509Certificate2 root, DateTimeOffset now, out string why)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(root);
        using var chain = new X509Chain();
        chain.ChainPolicy = OfflinePolicy();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.2"));
        chain.ChainPolicy.VerificationTime = now.UtcDateTime;
        bool ok = chain.Build(certificate);
        why = ok ? string.Empty : string.Join(", ", chain.ChainStatus.Select(s => s.Status.ToString()).Distinct());
        return ok;
    }
}
