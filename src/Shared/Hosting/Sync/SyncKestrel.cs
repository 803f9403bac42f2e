using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace OfflinePki.Hosting.Sync;

/// <summary>Kestrel listener setup for gRPC over mTLS.</summary>
public static class SyncKestrel
{
    /// <summary>
    /// Makes a listener speak HTTP/2 only over TLS 1.2/1.3 with <paramref name="serverCertificate"/>, and ask for a
    /// client certificate (<see cref="ClientCertificateMode.AllowCertificate"/>). The TLS layer accepts any client
    /// certificate; the application decides, in one place, with a <see cref="CallerIdentityPolicy"/> (in the mirror's CallerAuthorizationInterceptor), so a
    /// rejected caller gets a gRPC status that says why instead of a failed handshake.
    /// </summary>
    /// <param name="listen">The listener.</param>
    /// <param name="serverCertificate">The TLS server certificate with its private key (serverAuth EKU).</param>
    /// <returns><paramref name="listen"/>.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The certificate has no private key.</exception>
    public static ListenOptions UseGrpcMutualTls(this ListenOptions listen, X509Certificate2 serverCertificate) =>
        UseGrpcMutualTls(listen, serverCertificate, null);

    /// <summary>
    /// As <see cref="UseGrpcMutualTls(ListenOptions, X509Certificate2)"/> with the certificate from <paramref name="tls"/>;
    /// a PKCS#11 key is chosen per handshake (<see cref="OfflinePki.Keys.TlsCertificateSource.Current"/>), which probes it and
    /// reopens it after a failure, so service resumes when the token returns (TLS resumption is off for such a key; see docs/hsm.md).
    /// </summary>
    /// <param name="listen">The listener.</param>
    /// <param name="tls">The server certificate and its key (file or PKCS#11).</param>
    /// <returns><paramref name="listen"/>.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static ListenOptions UseGrpcMutualTls(this ListenOptions listen, OfflinePki.Keys.TlsCertificateSource tls)
    {
        ArgumentNullException.ThrowIfNull(tls);
        return UseGrpcMutualTls(listen, tls.Current, tls.IsPkcs11 ? tls : null);
    }

    private static ListenOptions UseGrpcMutualTls(ListenOptions listen, X509Certificate2 serverCertificate, OfflinePki.Keys.TlsCertificateSource? perHandshake)
    {
        ArgumentNullException.ThrowIfNull(listen);
        ArgumentNullException.ThrowIfNull(serverCertificate);
        if (!serverCertificate.HasPrivateKey)
        {
            throw new ArgumentException($"The TLS server certificate {serverCertificate.Subject} has no private key.", nameof(serverCertificate));
        }

        listen.Protocols = HttpProtocols.Http2;
        listen.UseHttps(new HttpsConnectionAdapterOptions
        {
            ServerCertificate = perHandshake is null ? serverCertificate : null,
            ServerCertificateSelector = perHandshake is null ? null : (_, _) => perHandshake.Current,
            SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ClientCertificateMode = ClientCertificateMode.AllowCertificate,
            CheckCertificateRevocation = false,
            ClientCertificateValidation = static (_, _, _) => true,
            OnAuthenticate = (_, ssl) =>
            {
                // The handshake's own chain of the client certificate is built offline: a caller's AIA URL is never dialled
                // (the decision is the CallerIdentityPolicy's, which also builds offline).
                ssl.CertificateChainPolicy = new X509ChainPolicy { DisableCertificateDownloads = true, RevocationMode = X509RevocationMode.NoCheck };
                if (perHandshake is not null)
                {
                    // A PKCS#11 key: no TLS resumption, so .NET does not keep a cached SSL_CTX holding the engine key of before an outage.
                    ssl.AllowTlsResume = false;
                }
            },
        });
        return listen;
    }
}
