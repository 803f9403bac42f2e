using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using OfflinePki.Enrollment;
using OfflinePki.Issuance;
using OfflinePki.Policy;
using OfflinePki.Factory;

namespace OfflinePki.FactoryCa;

/// <summary>
/// The EST front end (RFC 7030): §4.1 cacerts, §4.2.1 simpleenroll, §4.2.2 simplereenroll, §4.4 serverkeygen, §4.5
/// csrattrs, with optional labels (§3.2.2). Transport only; decisions are in src/Shared. Stations authenticate with
/// certificates from the RA CA; simplereenroll is authenticated by the device's current certificate from the
/// issuing CA (the TLS layer accepts both and each endpoint validates its own).
/// </summary>
public static class EstEndpoints
{
    /// <summary>Base path of the EST operations (RFC 7030 §3.2.2).</summary>
    public const string BasePath = "/.well-known/est";

    private const string Pkcs7Mime = "application/pkcs7-mime";
    private const string Pkcs7CertsOnly = "application/pkcs7-mime; smime-type=certs-only";

    /// <summary>Optional operator id header (≤ 64 printable ASCII characters), journaled.</summary>
    public const string OperatorIdHeader = "X-Operator-Id";

    /// <summary>Optional production order id header; the certificate consumes one unit of that order.</summary>
    public const string OrderIdHeader = "X-Order-Id";

    /// <summary>Optional issuance kind header: "initial" (default), "rework" or "refurb".</summary>
    public const string IssuanceKindHeader = "X-Issuance-Kind";

    /// <summary>Optional device MAC address header, journaled and reported per order.</summary>
    public const string DeviceMacHeader = "X-Device-Mac";

    /// <summary>Refurb with a new identity: the returned unit's old device ID, whose certificate the new one supersedes.</summary>
    public const string PreviousDeviceIdHeader = "X-Previous-Device-Id";

    /// <summary>The HTTP status for each refusal (RFC 7030 §4.2.3 leaves the choice of 4xx to the server).</summary>
    /// <param name="code">The refusal.</param>
    /// <returns>400, 403, 404, 409 or 429.</returns>
    public static int StatusFor(EnrollmentError code) => code switch
    {
        EnrollmentError.StationNotAuthorizedForProfile or EnrollmentError.StationSuspended or EnrollmentError.StationCertificateRevoked
            or EnrollmentError.StationNotAuthorizedForOrder or EnrollmentError.OrderNotValidNow
            or EnrollmentError.StationNotAuthorizedForServerKeyGen => StatusCodes.Status403Forbidden,
        EnrollmentError.ProfileUnknown => StatusCodes.Status404NotFound,
        EnrollmentError.OrderExhausted or EnrollmentError.DeviceAlreadyEnrolled or EnrollmentError.ReworkNotAllowed
            or EnrollmentError.DuplicatePublicKey => StatusCodes.Status409Conflict,
        EnrollmentError.StationRateLimited => StatusCodes.Status429TooManyRequests,
        _ => StatusCodes.Status400BadRequest,
    };

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    private static Journal.V1.IssuanceKind ParseKind(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "initial" => Journal.V1.IssuanceKind.Initial,
        "rework" => Journal.V1.IssuanceKind.Rework,
        "refurb" => Journal.V1.IssuanceKind.Refurb,
        _ => throw new EnrollmentRejectedException(EnrollmentError.NotSupported,
            $"{IssuanceKindHeader} must be initial, rework or refurb, got '{value}'"),
    };

    /// <summary>Content type of the csrattrs response (RFC 7030 §4.5.2).</summary>
    public const string CsrAttrsMime = "application/csrattrs";

    /// <summary>The EST operations that enroll, and how each authenticates.</summary>
    private enum Operation
    {
        SimpleEnroll,
        SimpleReenroll,
        ServerKeyGen,
    }

    /// <summary>
    /// Maps the EST operations (RFC 7030 §3.2.2) on /.well-known/est/&lt;op&gt; and /.well-known/est/&lt;label&gt;/&lt;op&gt;:
    /// GET cacerts and csrattrs; POST simpleenroll, simplereenroll and serverkeygen.
    /// </summary>
    public static IEndpointRouteBuilder MapEst(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        // EST answers only on its TLS listener (FactoryCa:Est:Listen), never on the control socket (issue 16 finding 2).
        var est = endpoints.MapGroup(string.Empty).AddEndpointFilter(async (ctx, next) => ctx.HttpContext.Request.IsHttps
            ? await next(ctx).ConfigureAwait(false)
            : Text(StatusCodes.Status404NotFound, "EST is served only on its TLS listener (FactoryCa:Est:Listen)"));
        foreach (var prefix in new[] { BasePath, BasePath + "/{label}" })
        {
            est.MapGet(prefix + "/cacerts", CaCerts);
            est.MapGet(prefix + "/csrattrs", CsrAttrs);
            est.MapPost(prefix + "/simpleenroll", (HttpContext http, CancellationToken ct) => EnrollAsync(http, Operation.SimpleEnroll, ct));
            est.MapPost(prefix + "/simplereenroll", (HttpContext http, CancellationToken ct) => EnrollAsync(http, Operation.SimpleReenroll, ct));
            est.MapPost(prefix + "/serverkeygen", (HttpContext http, CancellationToken ct) => EnrollAsync(http, Operation.ServerKeyGen, ct));
        }

        return endpoints;
    }

    /// <summary>The label of the request path and what it selects; an unknown label is a 404 (RFC 7030 §3.2.2).</summary>
    private static (string? Label, EstLabelOptions? Target, IResult? Error) ResolveLabel(HttpContext http, EstOptions est)
    {
        if (http.GetRouteValue("label") is not string label)
        {
            return (null, null, null);
        }

        return est.Labels.TryGetValue(label, out var target)
            ? (label, target, null)
            : (label, null, Text(StatusCodes.Status404NotFound,
                $"unknown EST label '{(label.Length > 64 ? label[..64] + "..." : label)}' (RFC 7030 §3.2.2): configured labels are {(est.Labels.Count == 0 ? "none" : string.Join(", ", est.Labels.Keys.Order(StringComparer.Ordinal)))} (FactoryCa:Est:Labels)"));
    }

    // RFC 7030 §4.1.3: certs-only CMS, base64, Content-Transfer-Encoding: base64.
    private static IResult CaCerts(HttpContext http, IssuingAuthority ca, IOptions<FactoryCaOptions> options)
    {
        if (ResolveLabel(http, options.Value.Est).Error is { } error)
        {
            return error;
        }

        var certs = new List<ReadOnlyMemory<byte>> { ca.Certificate.RawData };
        certs.AddRange(ca.ChainAboveIssuer.Select(c => (ReadOnlyMemory<byte>)c.RawData));
        return Base64Pkcs7(http, certs, Pkcs7Mime);
    }

    // RFC 7030 §4.5.2: base64 of DER CsrAttrs, Content-Type application/csrattrs.
    private static IResult CsrAttrs(HttpContext http, CertificateProfileSet profiles, IOptions<FactoryCaOptions> options)
    {
        var (_, target, error) = ResolveLabel(http, options.Value.Est);
        if (error is not null)
        {
            return error;
        }

        var profile = target is null ? profiles.Default : profiles.TryGet(target.Profile, out var p) ? p : profiles.Default;
        http.Response.Headers["Content-Transfer-Encoding"] = "base64";
        return Results.Text(Convert.ToBase64String(CsrAttributes.Encode(profile)) + "\n", CsrAttrsMime);
    }

    private static async Task<IResult> EnrollAsync(HttpContext http, Operation operation, CancellationToken cancellationToken)
    {
        var services = http.RequestServices;
        var est = services.GetRequiredService<IOptions<FactoryCaOptions>>().Value.Est;
        var (label, target, labelError) = ResolveLabel(http, est);
        if (labelError is not null)
        {
            return labelError;
        }

        StationIdentity station;
        X509Certificate2? current = null;
        string? currentProfile = null;
        try
        {
            var cert = await http.Connection.GetClientCertificateAsync(cancellationToken).ConfigureAwait(false);
            if (operation == Operation.SimpleReenroll)
            {
                // RFC 7030 §4.2.2: the device's current certificate, chained to the issuing CA (not the RA CA).
                (station, _, currentProfile) = services.GetRequiredService<DeviceCertificateAuthenticator>().Authenticate(cert);
                current = cert;
            }
            else
            {
                station = services.GetRequiredService<IStationAuthorizer>().Authorize(cert);
            }
        }
        catch (StationRejectedException ex)
        {
            return Text(ex.Code == StationError.NoCertificate ? StatusCodes.Status401Unauthorized : StatusCodes.Status403Forbidden, ex.Message);
        }

        var contentType = http.Request.ContentType?.Split(';')[0].Trim();
        if (!string.Equals(contentType, "application/pkcs10", StringComparison.OrdinalIgnoreCase))
        {
            return Text(StatusCodes.Status415UnsupportedMediaType,
                $"Content-Type must be application/pkcs10 (RFC 7030 §4.2.1), got '{http.Request.ContentType}'");
        }

        string tooBig = $"request body exceeds {est.MaxRequestBytes} bytes (FactoryCa:Est:MaxRequestBytes)";
        if (http.Request.ContentLength > est.MaxRequestBytes)
        {
            return Text(StatusCodes.Status413PayloadTooLarge, tooBig);
        }

        byte[] body;
        try
        {
            body = await ReadBoundedAsync(http.Request.Body, est.MaxRequestBytes, cancellationToken).ConfigureAwait(false);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return Text(StatusCodes.Status413PayloadTooLarge, tooBig);
        }
        catch (InvalidDataException)
        {
            return Text(StatusCodes.Status413PayloadTooLarge, tooBig);
        }

        EnrollmentRequest request;
        try
        {
            string? headerOrder = NullIfEmpty(http.Request.Headers[OrderIdHeader].FirstOrDefault());
            string? labelOrder = NullIfEmpty(target?.OrderId);
            if (labelOrder is not null && headerOrder is not null && !string.Equals(labelOrder, headerOrder, StringComparison.Ordinal))
            {
                throw new EnrollmentRejectedException(EnrollmentError.OrderUnknown,
                    $"{OrderIdHeader} '{headerOrder}' conflicts with order '{labelOrder}' of EST label '{label}' (FactoryCa:Est:Labels:{label}:OrderId)");
            }

            request = new EnrollmentRequest(station, body)
            {
                OperatorId = http.Request.Headers[OperatorIdHeader].FirstOrDefault(),
                OrderId = labelOrder ?? headerOrder,
                MacAddress = NullIfEmpty(http.Request.Headers[DeviceMacHeader].FirstOrDefault()),
                PreviousDeviceId = NullIfEmpty(http.Request.Headers[PreviousDeviceIdHeader].FirstOrDefault()),
                Kind = operation == Operation.SimpleReenroll ? Journal.V1.IssuanceKind.Reenroll : ParseKind(http.Request.Headers[IssuanceKindHeader].FirstOrDefault()),
                Label = label,
                // A label names the profile; a re-enrollment without one renews under the current certificate's profile.
                ProfileName = NullIfEmpty(target?.Profile) ?? currentProfile,
                CurrentCertificate = current,
                ServerGeneratedKey = operation == Operation.ServerKeyGen,
            };
        }
        catch (EnrollmentRejectedException ex)
        {
            return Text(StatusFor(ex.Code), ex.Message);
        }

        try
        {
            var result = await services.GetRequiredService<IEnrollmentService>().EnrollAsync(request, cancellationToken).ConfigureAwait(false);
            if (result.PrivateKeyPkcs8 is { } key)
            {
                try
                {
                    await WriteServerKeyGenAsync(http, key, result.Certificate, cancellationToken).ConfigureAwait(false);
                    return Results.Empty;
                }
                finally
                {
                    System.Security.Cryptography.CryptographicOperations.ZeroMemory(key);
                }
            }

            return Base64Pkcs7(http, [result.Certificate], Pkcs7CertsOnly);
        }
        catch (EnrollmentRejectedException ex)
        {
            if (ex.Code == EnrollmentError.StationRateLimited || ex.RetryAfter is not null)
            {
                http.Response.Headers.RetryAfter = ((int)Math.Max(1, Math.Ceiling((ex.RetryAfter ?? TimeSpan.FromSeconds(1)).TotalSeconds)))
                    .ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            return Text(StatusFor(ex.Code), ex.Message);
        }
        catch (EnrollmentUnavailableException ex)
        {
            http.Response.Headers.RetryAfter = ((int)Math.Ceiling(est.RetryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return Text(StatusCodes.Status503ServiceUnavailable, "service unavailable, nothing issued: " + ex.Message);
        }
        catch (CertificateLintException ex)
        {
            return Text(StatusCodes.Status500InternalServerError, "internal issuance error, nothing issued: " + ex.Message);
        }
    }

    /// <summary>
    /// RFC 7030 §4.4.2: multipart/mixed with the private key first (application/pkcs8, unencrypted PKCS#8 protected by
    /// TLS) and the certificate second (application/pkcs7-mime certs-only), both base64. The body is built in a byte
    /// buffer that is cleared after the write; the key is never logged.
    /// </summary>
    private static async Task WriteServerKeyGenAsync(HttpContext http, byte[] pkcs8, byte[] certificate, CancellationToken cancellationToken)
    {
        string boundary = "est-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12));
        var ascii = System.Text.Encoding.ASCII;
        byte[] keyPart = Base64Lines(pkcs8);
        byte[] certPart = Base64Lines(CertsOnlyPkcs7.Encode([certificate]));
        byte[] head1 = ascii.GetBytes($"--{boundary}\r\nContent-Type: application/pkcs8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
        byte[] head2 = ascii.GetBytes($"--{boundary}\r\nContent-Type: {Pkcs7CertsOnly}\r\nContent-Transfer-Encoding: base64\r\n\r\n");
        byte[] tail = ascii.GetBytes($"--{boundary}--\r\n");
        byte[] all = [.. head1, .. keyPart, .. head2, .. certPart, .. tail];
        try
        {
            http.Response.StatusCode = StatusCodes.Status200OK;
            http.Response.ContentType = $"multipart/mixed; boundary={boundary}";
            http.Response.ContentLength = all.Length;
            await http.Response.Body.WriteAsync(all, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(keyPart);
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(all);
        }
    }

    /// <summary>Base64 in 64-character lines, each ended by CRLF, as bytes (no intermediate string).</summary>
    private static byte[] Base64Lines(byte[] data)
    {
        int len = System.Buffers.Text.Base64.GetMaxEncodedToUtf8Length(data.Length);
        byte[] flat = new byte[len];
        System.Buffers.Text.Base64.EncodeToUtf8(data, flat, out _, out int written);
        int lines = (written + 63) / 64;
        byte[] outBuf = new byte[written + (lines * 2)];
        int o = 0;
        for (int i = 0; i < written; i += 64)
        {
            int n = Math.Min(64, written - i);
            Array.Copy(flat, i, outBuf, o, n);
            o += n;
            outBuf[o++] = (byte)'\r';
            outBuf[o++] = (byte)'\n';
        }

        System.Security.Cryptography.CryptographicOperations.ZeroMemory(flat);
        return outBuf;
    }

    /// <summary>Reads at most <paramref name="max"/> bytes; throws <see cref="InvalidDataException"/> when there are more.</summary>
    private static async Task<byte[]> ReadBoundedAsync(Stream body, long max, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[4096];
        int n;
        while ((n = await body.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > max)
            {
                throw new InvalidDataException("body too large");
            }

            buffer.Write(chunk, 0, n);
        }

        return buffer.ToArray();
    }

    private static IResult Base64Pkcs7(HttpContext http, IReadOnlyList<ReadOnlyMemory<byte>> certificates, string contentType)
    {
        byte[] pkcs7 = CertsOnlyPkcs7.Encode(certificates);
        http.Response.Headers["Content-Transfer-Encoding"] = "base64";
        // 76-character lines (RFC 2045 §6.8) ended by LF, which both EST libraries and coreutils `base64 -d` accept.
        string text = Convert.ToBase64String(pkcs7, Base64FormattingOptions.InsertLineBreaks).Replace("\r\n", "\n", StringComparison.Ordinal) + "\n";
        return Results.Text(text, contentType);
    }

    private static IResult Text(int status, string message) => Results.Text(message + "\n", "text/plain; charset=utf-8", statusCode: status);

}
