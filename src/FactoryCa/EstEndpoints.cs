using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using OfflinePki.Enrollment;
using OfflinePki.Issuance;
using OfflinePki.Policy;

namespace OfflinePki.FactoryCa;

/// <summary>The EST front end (RFC 7030 §4.1 cacerts, §4.2 simpleenroll). Transport only; decisions are in src/Shared.</summary>
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
            or EnrollmentError.StationNotAuthorizedForOrder or EnrollmentError.OrderNotValidNow => StatusCodes.Status403Forbidden,
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

    /// <summary>Maps GET cacerts and POST simpleenroll.</summary>
    public static IEndpointRouteBuilder MapEst(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        endpoints.MapGet(BasePath + "/cacerts", CaCerts);
        endpoints.MapPost(BasePath + "/simpleenroll", SimpleEnroll);
        return endpoints;
    }

    // RFC 7030 §4.1.3: certs-only CMS, base64, Content-Transfer-Encoding: base64.
    private static IResult CaCerts(HttpContext http, IssuingAuthority ca)
    {
        var certs = new List<ReadOnlyMemory<byte>> { ca.Certificate.RawData };
        certs.AddRange(ca.ChainAboveIssuer.Select(c => (ReadOnlyMemory<byte>)c.RawData));
        return Base64Pkcs7(http, certs, Pkcs7Mime);
    }

    private static async Task<IResult> SimpleEnroll(HttpContext http, IStationAuthorizer stations, IEnrollmentService enrollment,
        IOptions<FactoryCaOptions> options, CancellationToken cancellationToken)
    {
        var est = options.Value.Est;
        StationIdentity station;
        try
        {
            var cert = await http.Connection.GetClientCertificateAsync(cancellationToken).ConfigureAwait(false);
            station = stations.Authorize(cert);
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
            request = new EnrollmentRequest(station, body)
            {
                OperatorId = http.Request.Headers[OperatorIdHeader].FirstOrDefault(),
                OrderId = NullIfEmpty(http.Request.Headers[OrderIdHeader].FirstOrDefault()),
                MacAddress = NullIfEmpty(http.Request.Headers[DeviceMacHeader].FirstOrDefault()),
                PreviousDeviceId = NullIfEmpty(http.Request.Headers[PreviousDeviceIdHeader].FirstOrDefault()),
                Kind = ParseKind(http.Request.Headers[IssuanceKindHeader].FirstOrDefault()),
            };
        }
        catch (EnrollmentRejectedException ex)
        {
            return Text(StatusFor(ex.Code), ex.Message);
        }

        try
        {
            var result = await enrollment.EnrollAsync(request, cancellationToken).ConfigureAwait(false);
            return Base64Pkcs7(http, [result.Certificate], Pkcs7CertsOnly);
        }
        catch (EnrollmentRejectedException ex)
        {
            if (ex.Code == EnrollmentError.StationRateLimited)
            {
                http.Response.Headers.RetryAfter = "1";
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
