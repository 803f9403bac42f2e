using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;

namespace OfflinePki.Sync.Grpc;

/// <summary>Limits of a <see cref="GrpcClient"/>.</summary>
public sealed class GrpcClientOptions
{
    /// <summary>Largest message the client sends, in bytes (default 4 MiB).</summary>
    public int MaxSendMessageBytes { get; set; } = GrpcProtocol.DefaultMaxMessageBytes;

    /// <summary>Largest message the client accepts, in bytes (default 4 MiB).</summary>
    public int MaxReceiveMessageBytes { get; set; } = GrpcProtocol.DefaultMaxMessageBytes;

    /// <summary>TCP connect timeout (default 10 s).</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// A minimal gRPC client over HTTP/2 (gRPC over HTTP/2, PROTOCOL-HTTP2.md): unary and client-streaming calls
/// of protobuf messages, no compression, mTLS with a client certificate and a private server trust anchor.
/// Thread-safe; calls share one HTTP/2 connection. Every failure surfaces as <see cref="GrpcException"/>.
/// </summary>
public sealed class GrpcClient : IDisposable
{
    private readonly HttpMessageInvoker _invoker;
    private readonly Uri _baseAddress;
    private readonly GrpcClientOptions _options;
    private readonly TimeProvider _time;

    /// <summary>Creates a client that dials <paramref name="baseAddress"/> over TLS with mutual authentication.</summary>
    /// <param name="baseAddress">"https://host:port/" of the server; the host is checked against the server certificate's SAN.</param>
    /// <param name="clientCertificate">Our TLS client certificate, with its private key (clientAuth EKU).</param>
    /// <param name="serverTrustAnchor">The only root trusted for the server certificate (the TLS CA); the system store is not used.</param>
    /// <param name="options">Limits; defaults when null.</param>
    /// <param name="timeProvider">Clock for deadlines and certificate validity; <see cref="TimeProvider.System"/> when null.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="baseAddress"/> is not https, or the client certificate has no private key.</exception>
    public GrpcClient(Uri baseAddress, X509Certificate2 clientCertificate, X509Certificate2 serverTrustAnchor,
        GrpcClientOptions? options = null, TimeProvider? timeProvider = null)
        : this(baseAddress, CreateTlsHandler(baseAddress, clientCertificate, serverTrustAnchor, options ?? new GrpcClientOptions(), timeProvider ?? TimeProvider.System),
            options, timeProvider)
    {
    }

    /// <summary>Creates a client over a caller-supplied handler (e.g. h2c for tests). The client disposes the handler.</summary>
    /// <param name="baseAddress">"https://host:port/" or "http://host:port/" (HTTP/2 with prior knowledge).</param>
    /// <param name="handler">The HTTP handler; must speak HTTP/2.</param>
    /// <param name="options">Limits; defaults when null.</param>
    /// <param name="timeProvider">Clock for deadlines; <see cref="TimeProvider.System"/> when null.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public GrpcClient(Uri baseAddress, HttpMessageHandler handler, GrpcClientOptions? options = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(baseAddress);
        ArgumentNullException.ThrowIfNull(handler);
        _baseAddress = baseAddress;
        _options = options ?? new GrpcClientOptions();
        _time = timeProvider ?? TimeProvider.System;
        _invoker = new HttpMessageInvoker(handler, disposeHandler: true);
    }

    /// <summary>
    /// The TLS handler used by the mTLS constructor: HTTP/2 over TLS 1.2/1.3 (ALPN h2), our client certificate,
    /// and server validation that requires the host name to match and the chain to end at
    /// <paramref name="serverTrustAnchor"/> (CustomRootTrust, serverAuth EKU, no revocation check).
    /// </summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">Not https, or the client certificate has no private key.</exception>
    public static SocketsHttpHandler CreateTlsHandler(Uri baseAddress, X509Certificate2 clientCertificate, X509Certificate2 serverTrustAnchor,
        GrpcClientOptions options, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(baseAddress);
        ArgumentNullException.ThrowIfNull(clientCertificate);
        ArgumentNullException.ThrowIfNull(serverTrustAnchor);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        if (baseAddress.Scheme != Uri.UriSchemeHttps)
        {
            throw new ArgumentException($"The mirror URL must be https (got {baseAddress.Scheme}).", nameof(baseAddress));
        }

        if (!clientCertificate.HasPrivateKey)
        {
            throw new ArgumentException($"The client certificate {clientCertificate.Subject} has no private key.", nameof(clientCertificate));
        }

        var anchor = serverTrustAnchor;
        return new SocketsHttpHandler
        {
            ConnectTimeout = options.ConnectTimeout,
            EnableMultipleHttp2Connections = false,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2),
            AutomaticDecompression = DecompressionMethods.None,
            UseProxy = false,
            SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificates = [clientCertificate],
                EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                RemoteCertificateValidationCallback = (_, cert, presented, errors) =>
                    ValidateServerCertificate(cert, presented, errors, anchor, timeProvider),
            },
        };
    }

    /// <summary>
    /// Validates a server certificate against one trust anchor: host name must match (SslPolicyErrors without
    /// RemoteCertificateNameMismatch/NotAvailable), and the chain must build to <paramref name="anchor"/> with
    /// CustomRootTrust and the serverAuth EKU at the current time of <paramref name="timeProvider"/>.
    /// </summary>
    public static bool ValidateServerCertificate(X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors,
        X509Certificate2 anchor, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(anchor);
        ArgumentNullException.ThrowIfNull(timeProvider);
        if (certificate is null
            || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
        {
            return false;
        }

        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(anchor);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.1"));
        chain.ChainPolicy.VerificationTime = timeProvider.GetUtcNow().UtcDateTime;
        if (presented is not null)
        {
            foreach (var element in presented.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        return chain.Build(leaf);
    }

    /// <summary>Calls a unary method.</summary>
    /// <typeparam name="TReq">Request message type.</typeparam>
    /// <typeparam name="TResp">Response message type.</typeparam>
    /// <param name="path">Method path, "/package.Service/Method".</param>
    /// <param name="request">The request.</param>
    /// <param name="deadline">Time allowed for the whole call; sent as <c>grpc-timeout</c>. Must be positive.</param>
    /// <param name="cancellationToken">Cancels the call (status CANCELLED).</param>
    /// <returns>The response message.</returns>
    /// <exception cref="GrpcException">
    /// The server's non-OK status; <see cref="GrpcStatusCode.Unavailable"/> for connection/TLS failures;
    /// <see cref="GrpcStatusCode.DeadlineExceeded"/> when <paramref name="deadline"/> passes;
    /// <see cref="GrpcStatusCode.Cancelled"/> when <paramref name="cancellationToken"/> fires;
    /// <see cref="GrpcStatusCode.Internal"/> for protocol violations (no message, bad content type).
    /// </exception>
    public Task<TResp> UnaryAsync<TReq, TResp>(string path, TReq request, TimeSpan deadline, CancellationToken cancellationToken = default)
        where TReq : IMessage
        where TResp : IMessage<TResp>, new()
    {
        ArgumentNullException.ThrowIfNull(request);
        var frame = GrpcFraming.Encode(request, _options.MaxSendMessageBytes);
        return CallAsync<TResp>(path, new FramedContent(async (s, ct) =>
        {
            await s.WriteAsync(frame, ct).ConfigureAwait(false);
        }), deadline, cancellationToken);
    }

    /// <summary>
    /// Calls a client-streaming method. Requests are framed and written as <paramref name="requests"/> yields them
    /// (flushed per message); the stream is never buffered whole.
    /// </summary>
    /// <param name="path">Method path, "/package.Service/Method".</param>
    /// <param name="requests">The request messages, in order.</param>
    /// <param name="deadline">Time allowed for the whole call; sent as <c>grpc-timeout</c>. Must be positive.</param>
    /// <param name="cancellationToken">Cancels the call (status CANCELLED); also passed to the enumerator.</param>
    /// <returns>The single response message.</returns>
    /// <exception cref="GrpcException">As <see cref="UnaryAsync{TReq, TResp}"/>; <see cref="GrpcStatusCode.ResourceExhausted"/> if a request exceeds the send limit.</exception>
    public Task<TResp> ClientStreamingAsync<TReq, TResp>(string path, IAsyncEnumerable<TReq> requests, TimeSpan deadline, CancellationToken cancellationToken = default)
        where TReq : IMessage
        where TResp : IMessage<TResp>, new()
    {
        ArgumentNullException.ThrowIfNull(requests);
        var max = _options.MaxSendMessageBytes;
        return CallAsync<TResp>(path, new FramedContent(async (s, ct) =>
        {
            await foreach (var r in requests.WithCancellation(ct).ConfigureAwait(false))
            {
                await GrpcFraming.WriteMessageAsync(s, r, max, ct).ConfigureAwait(false);
                await s.FlushAsync(ct).ConfigureAwait(false);
            }
        }), deadline, cancellationToken);
    }

    private async Task<TResp> CallAsync<TResp>(string path, FramedContent content, TimeSpan deadline, CancellationToken cancellationToken)
        where TResp : IMessage<TResp>, new()
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!path.StartsWith('/'))
        {
            throw new ArgumentException("A gRPC method path starts with '/' (\"/package.Service/Method\").", nameof(path));
        }

        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(deadline, TimeSpan.Zero);
        using var deadlineCts = new CancellationTokenSource(deadline, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadlineCts.Token, cancellationToken);
        var ct = linked.Token;
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_baseAddress, path))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        request.Headers.TE.Add(new TransferCodingWithQualityHeaderValue("trailers"));
        request.Headers.TryAddWithoutValidation("user-agent", GrpcProtocol.UserAgent);
        request.Headers.TryAddWithoutValidation(GrpcProtocol.TimeoutHeader, GrpcTimeout.Format(deadline));
        request.Headers.TryAddWithoutValidation(GrpcProtocol.AcceptEncodingHeader, "identity");

        try
        {
            using var response = await _invoker.SendAsync(request, ct).ConfigureAwait(false);
            return await ReadResponseAsync<TResp>(response, path, ct).ConfigureAwait(false);
        }
        catch (GrpcException)
        {
            throw;
        }
        catch (Exception) when (content.WriterFault is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(content.WriterFault).Throw();
            throw;
        }
        catch (OperationCanceledException ex) when (deadlineCts.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new GrpcException(GrpcStatusCode.DeadlineExceeded, $"{path}: deadline of {deadline} exceeded", ex);
        }
        catch (OperationCanceledException ex) when (cancellationToken.IsCancellationRequested)
        {
            throw new GrpcException(GrpcStatusCode.Cancelled, $"{path}: call cancelled", ex);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException)
        {
            throw new GrpcException(GrpcStatusCode.Unavailable, $"{path}: cannot reach {_baseAddress.Authority}: {Flatten(ex)}", ex);
        }
    }

    private async Task<TResp> ReadResponseAsync<TResp>(HttpResponseMessage response, string path, CancellationToken ct)
        where TResp : IMessage<TResp>, new()
    {
        if (response.StatusCode != HttpStatusCode.OK)
        {
            var code = GrpcStatus.FromHttpStatus((int)response.StatusCode);
            throw new GrpcException(code, $"{path}: HTTP status {(int)response.StatusCode} from {_baseAddress.Authority}");
        }

        // Trailers-only response: grpc-status arrives in the headers.
        if (TryGetStatus(response.Headers, out var headerCode, out var headerMessage))
        {
            if (headerCode == GrpcStatusCode.OK)
            {
                throw new GrpcException(GrpcStatusCode.Internal, $"{path}: server returned OK without a response message");
            }

            throw new GrpcException(headerCode, headerMessage);
        }

        if (!GrpcProtocol.IsGrpcContentType(response.Content.Headers.ContentType?.MediaType))
        {
            throw new GrpcException(GrpcStatusCode.Unknown,
                $"{path}: response content type is '{response.Content.Headers.ContentType}', not {GrpcProtocol.ContentType}");
        }

        var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            byte[]? message = null;
            GrpcException? frameError = null;
            try
            {
                message = await GrpcFraming.ReadMessageAsync(stream, _options.MaxReceiveMessageBytes, ct).ConfigureAwait(false);
                if (message is not null && await GrpcFraming.ReadMessageAsync(stream, _options.MaxReceiveMessageBytes, ct).ConfigureAwait(false) is not null)
                {
                    frameError = new GrpcException(GrpcStatusCode.Internal, $"{path}: server sent more than one response message to a unary/client-streaming call");
                }
            }
            catch (GrpcException ex)
            {
                frameError = ex;
            }

            if (frameError is not null)
            {
                throw frameError;
            }

            if (!TryGetStatus(response.TrailingHeaders, out var code, out var detail))
            {
                throw new GrpcException(GrpcStatusCode.Internal, $"{path}: response ended without a grpc-status trailer");
            }

            if (code != GrpcStatusCode.OK)
            {
                throw new GrpcException(code, detail);
            }

            if (message is null)
            {
                throw new GrpcException(GrpcStatusCode.Internal, $"{path}: server returned OK without a response message");
            }

            return GrpcFraming.Parse(new MessageParser<TResp>(() => new TResp()), message, GrpcStatusCode.Internal);
        }
    }

    private static bool TryGetStatus(HttpHeaders headers, out GrpcStatusCode code, out string message)
    {
        code = GrpcStatusCode.Unknown;
        message = string.Empty;
        if (!headers.TryGetValues(GrpcProtocol.StatusHeader, out var statusValues))
        {
            return false;
        }

        code = GrpcStatus.Parse(statusValues.FirstOrDefault());
        if (headers.TryGetValues(GrpcProtocol.MessageHeader, out var messageValues))
        {
            message = GrpcMessageEncoding.Decode(messageValues.FirstOrDefault());
        }

        return true;
    }

    private static string Flatten(Exception ex)
    {
        var parts = new List<string>();
        for (var e = ex; e is not null && parts.Count < 4; e = e.InnerException)
        {
            parts.Add(e.Message);
        }

        return string.Join(" -> ", parts);
    }

    /// <inheritdoc />
    public void Dispose() => _invoker.Dispose();

    /// <summary>Request body that writes frames as they come (no length, never buffered whole).</summary>
    private sealed class FramedContent : HttpContent
    {
        private readonly Func<Stream, CancellationToken, Task> _writer;

        public FramedContent(Func<Stream, CancellationToken, Task> writer)
        {
            _writer = writer;
            Headers.ContentType = new MediaTypeHeaderValue(GrpcProtocol.ContentType);
        }

        public Exception? WriterFault { get; private set; }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            try
            {
                await _writer(stream, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not (IOException or OperationCanceledException or HttpRequestException))
            {
                // A fault of the request source (not of the transport): surfaced as-is to the caller.
                WriterFault = ex;
                throw;
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = -1;
            return false;
        }
    }
}
