using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

using OfflinePki.Sync;

namespace OfflinePki.Hosting.Sync;

/// <summary>A caller was refused by a <see cref="CallerIdentityPolicy"/>. The message says what to do and carries no secrets.</summary>
public sealed class CallerRejectedException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="noCertificate">True when no client certificate was presented (unauthenticated), false when it was refused.</param>
    /// <param name="message">Why, and what to do.</param>
    public CallerRejectedException(bool noCertificate, string message) : base(message) => NoCertificate = noCertificate;

    /// <summary>True: no client certificate (gRPC UNAUTHENTICATED, HTTP 401); false: refused (PERMISSION_DENIED, HTTP 403).</summary>
    public bool NoCertificate { get; }
}

/// <summary>
/// Who may call one service: the one place where an mTLS client certificate becomes a caller identity
/// (conventions §9). The certificate must chain to the configured client CA (CustomRootTrust, no system store),
/// carry the clientAuth EKU, be valid now, and its subject CN must be listed for the service. The chain is built from
/// the presented certificate and the client CA only: no AIA fetching (<see cref="X509ChainPolicy.DisableCertificateDownloads"/>),
/// so a caller cannot make the server dial a URL of its choosing.
/// </summary>
public sealed class CallerIdentityPolicy
{
    private static readonly Oid ClientAuth = new("1.3.6.1.5.5.7.3.2");
    private readonly X509Certificate2 _clientCa;
    private readonly FrozenDictionary<string, string> _allowed;
    private readonly TimeProvider _time;

    /// <summary>Creates the policy.</summary>
    /// <param name="serviceName">The service name used in messages, e.g. "offlinepki.sync.v1.JournalSync".</param>
    /// <param name="clientCa">The only root trusted for client certificates (the TLS/RA CA).</param>
    /// <param name="allowedClients">Subject CN → principal (e.g. "factory-F1-sync" → "F1"). CNs compare ordinally.</param>
    /// <param name="timeProvider">Clock for certificate validity; <see cref="TimeProvider.System"/> when null.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="serviceName"/> is empty, or a CN or principal is empty.</exception>
    public CallerIdentityPolicy(string serviceName, X509Certificate2 clientCa, IReadOnlyDictionary<string, string> allowedClients,
        TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        ArgumentNullException.ThrowIfNull(clientCa);
        ArgumentNullException.ThrowIfNull(allowedClients);
        foreach (var (cn, principal) in allowedClients)
        {
            if (string.IsNullOrWhiteSpace(cn) || string.IsNullOrWhiteSpace(principal))
            {
                throw new ArgumentException($"{serviceName}: allowed client entries need a non-empty CN and principal.", nameof(allowedClients));
            }
        }

        ServiceName = serviceName;
        _clientCa = clientCa;
        _allowed = allowedClients.ToFrozenDictionary(StringComparer.Ordinal);
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>The service this policy guards.</summary>
    public string ServiceName { get; }

    /// <summary>Authenticates and authorises a caller.</summary>
    /// <param name="clientCertificate">The certificate the client presented in the TLS handshake, or null.</param>
    /// <returns>The caller's identity.</returns>
    /// <exception cref="CallerRejectedException">
    /// <see cref="CallerRejectedException.NoCertificate"/> true: no client certificate; false: it does not chain to the client CA
    /// (foreign, expired, no clientAuth EKU) or its CN is not allowed for this service.
    /// </exception>
    public CallerIdentity Authorize(X509Certificate2? clientCertificate)
    {
        if (clientCertificate is null)
        {
            throw new CallerRejectedException(true,
                $"{ServiceName} requires mutual TLS: connect with a client certificate issued by the TLS CA '{_clientCa.Subject}'");
        }

        var cn = clientCertificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
        using (var chain = PinnedChain.Create(_clientCa, ClientAuth, _time.GetUtcNow()))
        {
            if (!chain.Build(clientCertificate))
            {
                var why = string.Join(", ", chain.ChainStatus.Select(s => s.Status.ToString()).Distinct());
                throw new CallerRejectedException(false,
                    $"client certificate CN={cn} is not a valid client certificate of the TLS CA '{_clientCa.Subject}' ({why})");
            }
        }

        if (string.IsNullOrEmpty(cn) || !_allowed.TryGetValue(cn, out var principal))
        {
            throw new CallerRejectedException(false,
                $"client CN={cn} is not allowed to call {ServiceName}; add it to the service's allowed clients");
        }

        return new CallerIdentity(cn, principal);
    }
}
