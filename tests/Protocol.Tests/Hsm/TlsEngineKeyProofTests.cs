using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using NUnit.Framework;
using OfflinePki.Keys;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Hsm;

/// <summary>
/// The premise of TLS keys in the token: SslStream on Linux (OpenSSL underneath) serves TLS with a certificate
/// whose private key is an OpenSSL pkcs11-engine key (ECDsaOpenSsl over SafeEvpPKeyHandle), checked with openssl s_client.
/// </summary>
[NonParallelizable]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class TlsEngineKeyProofTests
{
    [Test]
    public async Task SslStream_serves_TLS_with_an_engine_key_seen_by_openssl_s_client()
    {
        string token = SoftHsm.TakeToken();
        var (handle, _) = Pkcs11Engine.Open("proof", SoftHsm.TlsModule, $"pkcs11:token={token};object=signer;type=private",
            System.Text.Encoding.UTF8.GetBytes(SoftHsm.Pin), afterReset: false);
        using var ecdsa = new ECDsaOpenSsl(handle);
        handle.Dispose();
        // A certificate for the token's public key, signed by a throwaway software CA, then joined to the engine key.
        using var ca = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var now = DateTimeOffset.UtcNow;
        var caReq = new CertificateRequest("CN=proof CA", ca, HashAlgorithmName.SHA256);
        caReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var caCert = caReq.CreateSelfSigned(now.AddMinutes(-1), now.AddHours(1));
        using var pub = ECDsa.Create(ecdsa.ExportParameters(false));
        var req = new CertificateRequest("CN=127.0.0.1", pub, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        req.CertificateExtensions.Add(san.Build());
        using var leaf = req.Create(caCert, now.AddMinutes(-1), now.AddHours(1), [1, 2, 3]);
        using var tlsCert = leaf.CopyWithPrivateKey(ecdsa);
        Assert.That(tlsCert.HasPrivateKey, Is.True);
        var context = SslStreamCertificateContext.Create(tlsCert, additionalCertificates: null, offline: true);

        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var server = Task.Run(async () =>
        {
            using var tcp = await listener.AcceptTcpClientAsync();
            using var ssl = new SslStream(tcp.GetStream());
            await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificateContext = context });
            await ssl.WriteAsync("hello from the token\n"u8.ToArray());
            await ssl.FlushAsync();
            await ssl.ShutdownAsync();
        });
        try
        {
            string caPem = Path.Combine(SoftHsm.Directory, "proof-ca.pem");
            File.WriteAllText(caPem, caCert.ExportCertificatePem());
            var r = Tool.Run("openssl", ["s_client", "-connect", $"127.0.0.1:{port}", "-CAfile", caPem, "-verify_return_error", "-brief", "-ign_eof"],
                stdin: [], timeout: TimeSpan.FromSeconds(20));
            await server.WaitAsync(TimeSpan.FromSeconds(20));
            TestContext.Out.WriteLine(r.StdErr);
            Assert.That(r.ExitCode, Is.Zero, r.StdErr);
            Assert.That(r.StdOut, Does.Contain("hello from the token"));
            Assert.That(r.StdErr, Does.Contain("Verification: OK"));
        }
        finally
        {
            listener.Stop();
        }
    }
}
