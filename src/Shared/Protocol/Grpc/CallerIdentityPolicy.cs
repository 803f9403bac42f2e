using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OfflinePki.Sync.Grpc;

/// <summary>A caller authenticated by its TLS client certificate and mapped by a <see cref="CallerIdentityPolicy"/>.</summary>
/// <param name="ClientName">The certificate's subject CN, e.g. "factory-F1-sync".</param>
/// <param name="Principal">What the policy maps that CN to for this service, e.g. the factory id "F1".</param>
public sealed record CallerIdentity(string ClientName, string Principal);

/// <summary>
/// Who may call one service: the one place where an mTLS client certificate becomes a caller identity
/// (conventions §9). The certificate must chain to the configured client CA (CustomRootTrust, no system store),
/// carry the clientAuth EKU, be valid now, and its subject CN must be listed for the service.
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
    /// <exception cref="GrpcException">
    /// <see cref="GrpcStatusCode.Unauthenticated"/>: no client certificate;
    /// <see cref="GrpcStatusCode.PermissionDenied"/>: it does not chain to the client CA (foreign, expired, no clientAuth EKU)
    /// or its CN is not allowed for this service.
    /// </exception>
    public CallerIdentity Authorize(X509Certificate2? clientCertificate)
    {
        if (clientCertificate is null)
        {
            throw new GrpcException(GrpcStatusCode.Unauthenticated,
                $"{ServiceName} requires mutual TLS: connect with a client certificate issued by the TLS CA '{_clientCa.Subject}'");
        }

        var cn = clientCertificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
        using (var chain = new X509Chain())
        {
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(_clientCa);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.ApplicationPolicy.Add(ClientAuth);
            chain.ChainPolicy.VerificationTime = _time.GetUtcNow().UtcDateTime;
            if (!chain.Build(clientCertificate))
            {
                var why = string.Join(", ", chain.ChainStatus.Select(s => s.Status.ToString()).Distinct());
                throw new GrpcException(GrpcStatusCode.PermissionDenied,
                    $"client certificate CN={cn} is not a valid client certificate of the TLS CA '{_clientCa.Subject}' ({why})");
            }
        }

        if (string.IsNullOrEmpty(cn) || !_allowed.TryGetValue(cn, out var principal))
        {
            throw new GrpcException(GrpcStatusCode.PermissionDenied,
                $"client CN={cn} is not allowed to call {ServiceName}; add it to the service's allowed clients");
        }

        return new CallerIdentity(cn, principal);
    }
}
