using System.Formats.Asn1;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace OfflinePki.Station;

/// <summary>EST answered with an error status (RFC 7030 §4.2.3); the server's text is kept for the operator.</summary>
public sealed class EstRefusedException(int status, string message) : Exception(message)
{
    /// <summary>The HTTP status.</summary>
    public int Status { get; } = status;
}

/// <summary>
/// A minimal RFC 7030 client for a station: GET cacerts (§4.1) and POST simpleenroll (§4.2) over mTLS, the server
/// authenticated against an explicit TLS trust anchor (the TLS/RA CA) with its host name checked.
/// </summary>
public sealed class EstClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly Uri _base;
    private readonly Uri _unlabelled;

    /// <summary>Creates the client.</summary>
    /// <param name="server">e.g. https://factory:8443 (the EST path is appended) or a full .../.well-known/est URL.</param>
    /// <param name="label">EST label (RFC 7030 §3.2.2), or null.</param>
    /// <param name="clientCertificate">The station certificate with its private key.</param>
    /// <param name="tlsTrustAnchors">CA certificates the server's TLS certificate must chain to.</param>
    /// <param name="timeout">Per-request timeout.</param>
    /// <exception cref="ArgumentException">The URL is not https or the label is malformed.</exception>
    public EstClient(Uri server, string? label, X509Certificate2 clientCertificate, X509Certificate2Collection tlsTrustAnchors, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(clientCertificate);
        ArgumentNullException.ThrowIfNull(tlsTrustAnchors);
        if (server.Scheme != Uri.UriSchemeHttps)
        {
            throw new ArgumentException($"--est '{server}': EST needs https (RFC 7030 §3.3)", nameof(server));
        }

        if (label is not null && (label.Length is 0 or > 64 || !label.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
        {
            throw new ArgumentException($"--est-label '{label}': 1-64 of [A-Za-z0-9._-]", nameof(label));
        }

        string root = server.AbsoluteUri.TrimEnd('/');
        if (!root.EndsWith("/.well-known/est", StringComparison.Ordinal))
        {
            root += "/.well-known/est";
        }

        _unlabelled = new Uri(root + "/");
        _base = new Uri(label is null ? root + "/" : $"{root}/{label}/");
        var handler = new SocketsHttpHandler();
        handler.SslOptions.ClientCertificates = [clientCertificate];
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, errors) =>
        {
            if ((errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None || cert is not X509Certificate2 c)
            {
                return false; // no certificate, or the host name does not match
            }

            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(tlsTrustAnchors);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return chain.Build(c);
        };
        _http = new HttpClient(handler) { Timeout = timeout };
    }

    /// <summary>Headers sent with simpleenroll (X-Order-Id, X-Operator-Id, X-Device-Mac); null values are left out.</summary>
    public IDictionary<string, string?> EnrollHeaders { get; } = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);

    /// <summary>GET cacerts: the issuing CA and the certificates above it. A labelled path that answers 404 falls back to the unlabelled one.</summary>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <returns>The certificates.</returns>
    /// <exception cref="EstRefusedException">Non-success status.</exception>
    /// <exception cref="HttpRequestException">Network or TLS failure.</exception>
    /// <exception cref="CryptographicException">The body is not a certs-only PKCS#7.</exception>
    public async Task<X509Certificate2Collection> GetCaCertsAsync(CancellationToken cancellationToken)
    {
        using var response = await _http.GetAsync(new Uri(_base, "cacerts"), cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound && _base != _unlabelled)
        {
            using var fallback = await _http.GetAsync(new Uri(_unlabelled, "cacerts"), cancellationToken).ConfigureAwait(false);
            return await ReadCertsAsync(fallback, cancellationToken).ConfigureAwait(false);
        }

        return await ReadCertsAsync(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>POST simpleenroll with the base64 CSR; returns the issued certificate.</summary>
    /// <param name="csrDer">DER PKCS#10.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <returns>The first certificate of the answer.</returns>
    /// <exception cref="EstRefusedException">Non-success status (the server's text is the message).</exception>
    /// <exception cref="HttpRequestException">Network or TLS failure.</exception>
    /// <exception cref="CryptographicException">The body is not a certs-only PKCS#7 with a certificate.</exception>
    public async Task<X509Certificate2> SimpleEnrollAsync(byte[] csrDer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(csrDer);
        using var content = new StringContent(Convert.ToBase64String(csrDer, Base64FormattingOptions.InsertLineBreaks), Encoding.ASCII);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/pkcs10");
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_base, "simpleenroll")) { Content = content };
        foreach (var (name, value) in EnrollHeaders)
        {
            if (!string.IsNullOrEmpty(value))
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
        }

        using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        var certs = await ReadCertsAsync(response, cancellationToken).ConfigureAwait(false);
        if (certs.Count == 0)
        {
            throw new CryptographicException("simpleenroll answer holds no certificate");
        }

        return certs[0];
    }

    /// <summary>Decodes an RFC 5652 certs-only SignedData (base64 or DER) into its certificates, in order.</summary>
    /// <param name="body">The body (base64 text with line breaks, or DER).</param>
    /// <returns>The certificates.</returns>
    /// <exception cref="CryptographicException">Not a certs-only SignedData.</exception>
    public static X509Certificate2Collection DecodeCertsOnly(byte[] body)
    {
        ArgumentNullException.ThrowIfNull(body);
        byte[] der = body;
        if (body.Length > 0 && body[0] != 0x30)
        {
            try
            {
                der = Convert.FromBase64String(Encoding.ASCII.GetString(body));
            }
            catch (FormatException)
            {
                throw new CryptographicException("EST answer is neither base64 nor DER");
            }
        }

        var result = new X509Certificate2Collection();
        try
        {
            // ContentInfo ::= SEQUENCE { contentType OBJECT IDENTIFIER (id-signedData), content [0] EXPLICIT SignedData }
            // SignedData ::= SEQUENCE { version, digestAlgorithms SET, encapContentInfo SEQUENCE,
            //   certificates [0] IMPLICIT CertificateSet OPTIONAL, crls [1] IMPLICIT OPTIONAL, signerInfos SET }
            var top = new AsnReader(der, AsnEncodingRules.BER);
            var contentInfo = top.ReadSequence();
            if (contentInfo.ReadObjectIdentifier() != "1.2.840.113549.1.7.2")
            {
                throw new CryptographicException("EST answer is not a CMS SignedData (RFC 7030 §4.1.3)");
            }

            var signedData = contentInfo.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 0)).ReadSequence();
            _ = signedData.ReadEncodedValue(); // version
            _ = signedData.ReadEncodedValue(); // digestAlgorithms
            _ = signedData.ReadEncodedValue(); // encapContentInfo
            if (signedData.HasData && signedData.PeekTag().HasSameClassAndValue(new Asn1Tag(TagClass.ContextSpecific, 0)))
            {
                var set = signedData.ReadSetOf(skipSortOrderValidation: true, new Asn1Tag(TagClass.ContextSpecific, 0));
                while (set.HasData)
                {
                    result.Add(X509CertificateLoader.LoadCertificate(set.ReadEncodedValue().ToArray()));
                }
            }
        }
        catch (AsnContentException ex)
        {
            throw new CryptographicException("EST answer is not a certs-only PKCS#7: " + ex.Message, ex);
        }

        return result;
    }

    /// <inheritdoc />
    public void Dispose() => _http.Dispose();

    private static async Task<X509Certificate2Collection> ReadCertsAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        byte[] body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            string text = Encoding.UTF8.GetString(body.AsSpan(0, Math.Min(body.Length, 1024))).Trim();
            throw new EstRefusedException((int)response.StatusCode, string.IsNullOrEmpty(text) ? response.ReasonPhrase ?? "no reason given" : text);
        }

        return DecodeCertsOnly(body);
    }
}
