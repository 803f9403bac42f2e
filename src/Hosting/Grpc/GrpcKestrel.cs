using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace OfflinePki.Hosting.Grpc;

/// <summary>Kestrel listener setup for gRPC over mTLS.</summary>
public static class GrpcKestrel
{
    /// <summary>
    /// Makes a listener speak HTTP/2 only over TLS 1.2/1.3 with <paramref name="serverCertificate"/>, and ask for a
    /// client certificate (<see cref="ClientCertificateMode.AllowCertificate"/>). The TLS layer accepts any client
    /// certificate; the application decides, in one place, with a <see cref="OfflinePki.Sync.Grpc.CallerIdentityPolicy"/>, so a
    /// rejected caller gets a gRPC status that says why instead of a failed handshake.
    /// </summary>
    /// <param name="listen">The listener.</param>
    /// <param name="serverCertificate">The TLS server certificate with its private key (serverAuth EKU).</param>
    /// <returns><paramref name="listen"/>.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The certificate has no private key.</exception>
    public static ListenOptions UseGrpcMutualTls(this ListenOptions listen, X509Certificate2 serverCertificate)
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
            ServerCertificate = serverCertificate,
            SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ClientCertificateMode = ClientCertificateMode.AllowCertificate,
            CheckCertificateRevocation = false,
            ClientCertificateValidation = static (_, _, _) => true,
        });
        return listen;
    }
}
