using System.Globalization;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using OfflinePki.Crl;
using OfflinePki.Keys;
using OfflinePki.Ocsp;

namespace OfflinePki.MirrorCa;

/// <summary>The mirror's plain-HTTP endpoints: CRLs, CA certificates and OCSP (RFC 5019 / RFC 6960 Appendix A).</summary>
public static class MirrorCaEndpoints
{
    private const string OcspResponseType = "application/ocsp-response";

    /// <summary>
    /// Maps <c>GET /crl/{factoryId}.crl</c> (and <c>/crl/{factoryId}-delta.crl</c> when deltas are enabled), <c>GET /ca/{factoryId}.crt</c>, <c>POST /ocsp</c>, <c>GET /ocsp/{base64}</c> and <c>GET /health</c>.
    /// </summary>
    public static IEndpointRouteBuilder MapMirrorCaHttp(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGet("/crl/{file}", GetCrl);
        app.MapGet("/ca/{file}", GetCa);
        app.MapPost("/ocsp", PostOcsp);
        app.MapGet("/ocsp/{**request}", GetOcsp);
        app.MapGet("/health", Health);
        app.MapMirrorMonitoring();
        return app;
    }

    /// <summary>
    /// GET /health: 200 when every signing and TLS key signs its probe now, else 503; the body lists each key by its
    /// configuration key with the reason it is unavailable (module, token, PIN state; never a PIN) and each CRL refresh
    /// skipped while the previous CRL is still served.
    /// </summary>
    private static IResult Health(KeyHealthBoard board, MirrorFactories factories)
    {
        var keys = board.Check();
        bool ready = keys.All(k => k.Available);
        var body = new
        {
            ready,
            keys = keys.Select(k => new { configKey = k.ConfigKey, backend = k.Backend, location = k.Location, available = k.Available, reason = k.Reason }),
            crl = factories.All.Select(f => new { factoryId = f.FactoryId, refreshSkipped = f.Crl.LastRefreshFailure }),
        };
        return Results.Json(body, statusCode: ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
    }

    private static IResult GetCrl(string file, HttpContext http, MirrorFactories factories, TimeProvider time, ILoggerFactory logs)
    {
        var name = file.EndsWith(".crl", StringComparison.Ordinal) ? file[..^4] : null;
        var factory = name is null ? null : factories.Find(name);
        bool delta = false;
        CrlPublisher? partition = null;
        if (factory is null && name is not null && PartitionOf(name, factories) is { } part)
        {
            (factory, partition) = part;
        }

        if (factory is null && name is not null && name.EndsWith("-delta", StringComparison.Ordinal)
            && factories.Find(name[..^6]) is { Crl.DeltasEnabled: true } withDelta)
        {
            factory = withDelta;
            delta = true;
        }

        if (factory is null)
        {
            return Results.NotFound($"no CRL '{file}'; known: {string.Join(", ", factories.All.SelectMany(f => f.Crl.DeltasEnabled ? new[] { f.FactoryId + ".crl", f.FactoryId + "-delta.crl" } : [f.FactoryId + ".crl"]))}");
        }

        SignedCrl crl;
        try
        {
            crl = partition is not null ? partition.GetCurrent() : delta ? factory.Crl.GetCurrentDelta() : factory.Crl.GetCurrent();
        }
        catch (Exception ex) when (ex is CrlLintException or SigningKeyUnavailableException or Microsoft.Data.Sqlite.SqliteException)
        {
            logs.CreateLogger("OfflinePki.MirrorCa.Crl").LogError(ex, "CRL for factory {FactoryId} could not be built", factory.FactoryId);
            return Results.Problem($"the CRL for {factory.FactoryId} cannot be built now; retry later", statusCode: StatusCodes.Status503ServiceUnavailable);
        }

        var etag = "\"crl-" + crl.CrlNumber.ToString(CultureInfo.InvariantCulture) + "\"";
        var headers = http.Response.Headers;
        headers.ETag = etag;
        headers.LastModified = crl.ThisUpdate.ToString("R", CultureInfo.InvariantCulture);
        headers.Expires = crl.NextUpdate.ToString("R", CultureInfo.InvariantCulture);
        headers.CacheControl = "public, no-transform, max-age=" + MaxAge(crl.NextUpdate, time);
        if (http.Request.Headers.IfNoneMatch.Contains(etag))
        {
            return Results.StatusCode(StatusCodes.Status304NotModified);
        }

        return Results.Bytes(crl.Der, "application/pkix-crl");
    }

    // "{factory}-p{k}" names partition k of a partitioned factory.
    private static (LoadedFactory, CrlPublisher)? PartitionOf(string name, MirrorFactories factories)
    {
        int dash = name.LastIndexOf("-p", StringComparison.Ordinal);
        if (dash <= 0 || !int.TryParse(name.AsSpan(dash + 2), NumberStyles.None, CultureInfo.InvariantCulture, out int k)
            || factories.Find(name[..dash]) is not { } f || k >= f.Partitions.Count)
        {
            return null;
        }

        return (f, f.Partitions[k]);
    }

    private static IResult GetCa(string file, MirrorFactories factories)
    {
        if (!file.EndsWith(".crt", StringComparison.Ordinal) || factories.Find(file[..^4]) is not { } factory)
        {
            return Results.NotFound($"no CA certificate '{file}'");
        }

        return Results.Bytes(factory.IssuingCa.RawData, "application/pkix-cert");
    }

    private static async Task<IResult> PostOcsp(HttpContext http, IOcspResponseSource responder, IOptions<MirrorCaOptions> options)
    {
        if (!string.Equals(http.Request.ContentType?.Split(';')[0].Trim(), "application/ocsp-request", StringComparison.OrdinalIgnoreCase))
        {
            return Results.Text("POST /ocsp needs Content-Type: application/ocsp-request (RFC 6960 Appendix A.1)", statusCode: StatusCodes.Status415UnsupportedMediaType);
        }

        int limit = options.Value.Http.MaxRequestBytes;
        if (http.Request.ContentLength > limit)
        {
            return Results.Text($"request body over {limit} bytes", statusCode: StatusCodes.Status413PayloadTooLarge);
        }

        if (http.Request.ContentLength is long known and > 0)
        {
            var body = new byte[known];
            try
            {
                await http.Request.Body.ReadExactlyAsync(body, http.RequestAborted).ConfigureAwait(false);
            }
            catch (EndOfStreamException)
            {
                return Results.Bytes(OcspResponder.ErrorResponse(OcspResponseStatus.MalformedRequest), OcspResponseType);
            }

            var quick = responder.Respond(body);
            http.Response.Headers.CacheControl = "no-store";
            return Results.Bytes(quick.Der, OcspResponseType);
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        while ((read = await http.Request.Body.ReadAsync(chunk, http.RequestAborted).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + read > limit)
            {
                return Results.Text($"request body over {limit} bytes", statusCode: StatusCodes.Status413PayloadTooLarge);
            }

            buffer.Write(chunk, 0, read);
        }

        var answer = responder.Respond(buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
        http.Response.Headers.CacheControl = "no-store";
        return Results.Bytes(answer.Der, OcspResponseType);
    }

    private static IResult GetOcsp(HttpContext http, IOcspResponseSource responder, IOptions<MirrorCaOptions> options, TimeProvider time)
    {
        // RFC 6960 Appendix A.1: GET {url}/{url-encoding of base-64 encoding of the DER encoding of the OCSPRequest}
        var raw = http.Features.Get<IHttpRequestFeature>()?.RawTarget ?? http.Request.Path.Value ?? string.Empty;
        int q = raw.IndexOf('?', StringComparison.Ordinal);
        if (q >= 0)
        {
            raw = raw[..q];
        }

        int start = raw.IndexOf("/ocsp/", StringComparison.Ordinal);
        var encoded = start < 0 ? string.Empty : raw[(start + 6)..];
        if (encoded.Length > options.Value.Http.MaxRequestBytes * 2)
        {
            return Results.Text("request URL too long", statusCode: StatusCodes.Status414UriTooLong);
        }

        byte[] der;
        try
        {
            der = OcspRequestParser.DecodeGetPath(encoded);
        }
        catch (OcspMalformedRequestException)
        {
            return Results.Bytes(OcspResponder.ErrorResponse(OcspResponseStatus.MalformedRequest), OcspResponseType);
        }

        var answer = responder.Respond(der);
        if (answer.Status == OcspResponseStatus.Successful && !answer.HasNonce && answer.ProducedAt is { } produced && answer.NextUpdate is { } next)
        {
            // RFC 5019 §6.2 caching headers.
            var h = http.Response.Headers;
            h.LastModified = produced.ToString("R", CultureInfo.InvariantCulture);
            h.Expires = next.ToString("R", CultureInfo.InvariantCulture);
            // RFC 5019 §6.2: ETag is a hash of the response (SHA-1 here); a matching If-None-Match gets 304.
            var etag = "\"" + Convert.ToHexStringLower(SHA1.HashData(answer.Der)) + "\"";
            h.ETag = etag;
            h.CacheControl = "public, no-transform, must-revalidate, max-age=" + MaxAge(next, time);
            if (http.Request.Headers.IfNoneMatch.Contains(etag))
            {
                return Results.StatusCode(StatusCodes.Status304NotModified);
            }
        }
        else
        {
            http.Response.Headers.CacheControl = "no-store";
        }

        return Results.Bytes(answer.Der, OcspResponseType);
    }

    private static string MaxAge(DateTimeOffset until, TimeProvider time) =>
        ((long)Math.Max(0, (until - time.GetUtcNow()).TotalSeconds)).ToString(CultureInfo.InvariantCulture);
}
