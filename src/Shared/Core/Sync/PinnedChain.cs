using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OfflinePki.Sync;

/// <summary>The chain builder of the sync link's mTLS checks (both ends): one private trust anchor, nothing fetched.</summary>
public static class PinnedChain
{
    /// <summary>
    /// A chain builder that trusts only <paramref name="anchor"/> (CustomRootTrust, no system store), requires
    /// <paramref name="extendedKeyUsage"/>, checks validity at <paramref name="at"/>, does no revocation check, and never
    /// downloads anything (<see cref="X509ChainPolicy.DisableCertificateDownloads"/>: a peer's AIA URL is never dialled).
    /// The caller disposes it.
    /// </summary>
    /// <param name="anchor">The only trusted root.</param>
    /// <param name="extendedKeyUsage">The EKU the leaf must carry, e.g. serverAuth 1.3.6.1.5.5.7.3.1 or clientAuth 1.3.6.1.5.5.7.3.2.</param>
    /// <param name="at">The verification time.</param>
    /// <returns>The chain builder.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="anchor"/> or <paramref name="extendedKeyUsage"/> is null.</exception>
    public static X509Chain Create(X509Certificate2 anchor, Oid extendedKeyUsage, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(anchor);
        ArgumentNullException.ThrowIfNull(extendedKeyUsage);
        var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(anchor);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.ApplicationPolicy.Add(extendedKeyUsage);
        chain.ChainPolicy.VerificationTime = at.UtcDateTime;
        return chain;
    }
}
