using System.Globalization;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OfflinePki.Asn1;
using OfflinePki.Registry;
using OfflinePki.Revocation;
using OfflinePki.Hosting.Sync;
using OfflinePki.Sync;

namespace OfflinePki.MirrorCa;

/// <summary>Admin roles ("MirrorCa:Admin:Clients[i]:Role").</summary>
public enum AdminRole
{
    /// <summary>Read-only: status, certificate lookups, the audit log.</summary>
    Auditor,
    /// <summary>Everything an auditor may do, plus revoke and release-hold.</summary>
    Revoker,
}

/// <summary>The admin HTTPS API ("MirrorCa:Admin"): its own mTLS listener; client certificates of the TLS CA; roles by CN.</summary>
public sealed class AdminOptions
{
    /// <summary>https listen address (e.g. "https://127.0.0.1:9444"); empty disables the admin API.</summary>
    public string Listen { get; set; } = string.Empty;

    /// <summary>PEM TLS server certificate (serverAuth).</summary>
    public string ServerCertificate { get; set; } = string.Empty;

    /// <summary>Key of <see cref="ServerCertificate"/>: a PEM key file path (string) or a key section with a PKCS#11 URI (see <see cref="Keys.TlsKeyOptions"/>).</summary>
    public Keys.TlsKeyOptions ServerKey { get; set; } = new();

    /// <summary>The CA that issues admin client certificates (the TLS CA).</summary>
    public string ClientCaCertificate { get; set; } = string.Empty;

    /// <summary>Allowed admin clients: subject CN and role.</summary>
    public List<AdminClientOptions> Clients { get; set; } = [];
}

/// <summary>One allowed admin client.</summary>
public sealed class AdminClientOptions
{
    /// <summary>The client certificate's subject CN, e.g. "admin-revoker".</summary>
    public string SubjectCn { get; set; } = string.Empty;

    /// <summary>Auditor (read-only) or Revoker.</summary>
    public AdminRole Role { get; set; } = AdminRole.Auditor;
}

/// <summary>A revoke request to <c>POST /admin/revoke</c>: a serial, or a selector (device, station, batch, all) with an optional window.</summary>
/// <param name="Serial">Hex serial, or null for a bulk revocation.</param>
/// <param name="Device">Device id selector.</param>
/// <param name="Station">Station selector.</param>
/// <param name="Batch">Batch selector.</param>
/// <param name="All">Every certificate of <paramref name="Factory"/>.</param>
/// <param name="From">Issued at or after (ISO 8601).</param>
/// <param name="To">Issued at or before (ISO 8601).</param>
/// <param name="Factory">Factory id (needed for <paramref name="All"/> or an ambiguous serial).</param>
/// <param name="Reason">RFC 5280 §5.3.1 reason name.</param>
/// <param name="InvalidityDate">RFC 5280 §5.3.2 invalidity date (ISO 8601), optional.</param>
public sealed record AdminRevokeRequest(string? Serial, string? Device, string? Station, string? Batch, bool All, DateTimeOffset? From, DateTimeOffset? To,
    string? Factory, string? Reason, DateTimeOffset? InvalidityDate);

/// <summary>A release request to <c>POST /admin/release-hold</c>.</summary>
/// <param name="Serial">Hex serial.</param>
/// <param name="Factory">Factory id, optional.</param>
public sealed record AdminReleaseRequest(string? Serial, string? Factory);

/// <summary>
/// The admin HTTPS API: <c>GET /admin/status</c>, <c>GET /admin/certificates/{serial}</c>, <c>GET /admin/audit</c>
/// (auditors and revokers), <c>POST /admin/revoke</c> and <c>POST /admin/release-hold</c> (revokers only). Every call
/// needs a client certificate of the TLS CA whose CN is listed in MirrorCa:Admin:Clients: none gives 401, an unknown
/// CN or a missing role 403. Revocations are recorded with actor "admin:{CN}".
/// </summary>
public static class MirrorAdminApi
{
    /// <summary>True when MirrorCa:Admin:Listen is set.</summary>
    public static bool Enabled(MirrorCaOptions options) => !string.IsNullOrWhiteSpace(options?.Admin.Listen);

    /// <summary>Registers the admin listener (TLS 1.2/1.3, HTTP/1.1, client certificate requested) and the caller policy.</summary>
    public static IServiceCollection AddMirrorAdmin(this IServiceCollection services)
    {
        services.TryAddSingleton<Keys.KeyHealthBoard>();
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<MirrorCaOptions>, Keys.KeyHealthBoard>((kestrel, mirror, health) =>
        {
            var o = mirror.Value;
            if (Enabled(o) && OfflinePki.Hosting.ListenAddress.TryParse(o.Admin.Listen, Uri.UriSchemeHttps, out var endpoint, out _))
            {
                var tls = Keys.TlsCertificateSource.Load($"{MirrorCaOptions.SectionName}:Admin:ServerKey", o.Admin.ServerCertificate, o.Admin.ServerKey);
                health.Track($"{MirrorCaOptions.SectionName}:Admin:ServerKey", tls, o.Admin.ServerKey);
                kestrel.Listen(endpoint!, l =>
                {
                    l.Protocols = HttpProtocols.Http1;
                    MirrorListeners.TagAdmin(l);
                    l.UseHttps(new HttpsConnectionAdapterOptions
                    {
                        ServerCertificate = tls.IsPkcs11 ? null : tls.Current,
                        ServerCertificateSelector = tls.IsPkcs11 ? (_, _) => tls.Current : null,
                        SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                        ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                        CheckCertificateRevocation = false,
                        // The application decides, in one place (AdminPolicy), so a refused caller gets a 401/403 that says why.
                        ClientCertificateValidation = static (_, _, _) => true,
                        // The handshake builds the client's chain offline (no AIA download); a PKCS#11 key: no TLS
                        // resumption (a cached SSL_CTX would keep the engine key of before an outage).
                        OnAuthenticate = (_, ssl) =>
                        {
                            OfflinePki.Hosting.ClientCertificateChains.ApplyOffline(ssl);
                            if (tls.IsPkcs11)
                            {
                                ssl.AllowTlsResume = false;
                            }
                        },
                    });
                });
            }
        });
        services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<MirrorCaOptions>>().Value;
            if (!Enabled(o))
            {
                return new AdminPolicy(null, null);
            }

            var clientCa = X509CertificateLoader.LoadCertificateFromFile(o.Admin.ClientCaCertificate);
            var allowed = o.Admin.Clients.ToDictionary(c => c.SubjectCn, c => c.Role.ToString(), StringComparer.Ordinal);
            return new AdminPolicy(new CallerIdentityPolicy("mirror admin API", clientCa, allowed, sp.GetRequiredService<TimeProvider>()), clientCa);
        });
        return services;
    }

    /// <summary>Maps the admin endpoints when the admin API is enabled.</summary>
    public static WebApplication MapMirrorAdmin(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        if (!Enabled(app.Services.GetRequiredService<IOptions<MirrorCaOptions>>().Value))
        {
            return app;
        }

        var admin = app.MapGroup("/admin");
        admin.MapGet("/status", (MirrorRegistry registry) => Results.Json(registry.GetSummary())).AddEndpointFilter(Require(AdminRole.Auditor));
        admin.MapGet("/certificates/{serial}", GetCertificate).AddEndpointFilter(Require(AdminRole.Auditor));
        admin.MapGet("/audit", (MirrorRegistry registry, long? fromSeq, int? max) =>
        {
            var verification = registry.VerifyAudit();
            var records = registry.ReadAudit(fromSeq ?? 1, Math.Clamp(max ?? 100, 1, 10_000)).Select(r => new
            {
                r.Seq, At = r.At.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture), r.Actor, r.Action, r.Detail,
                Hash = Convert.ToHexStringLower(r.Hash),
            });
            return Results.Json(new { ChainOk = verification.Ok, verification.Records, verification.Error, Entries = records });
        }).AddEndpointFilter(Require(AdminRole.Auditor));
        admin.MapPost("/revoke", Revoke).AddEndpointFilter(Require(AdminRole.Revoker));
        admin.MapPost("/release-hold", ReleaseHold).AddEndpointFilter(Require(AdminRole.Revoker));
        return app;
    }

    internal static Func<EndpointFilterInvocationContext, EndpointFilterDelegate, ValueTask<object?>> Require(AdminRole role) => async (ctx, next) =>
    {
        var http = ctx.HttpContext;
        var policy = http.RequestServices.GetRequiredService<AdminPolicy>();
        if (MirrorListeners.Of(http) != MirrorListener.Admin || policy.Callers is null)
        {
            return Results.Problem("the admin API is only served on its mTLS listener (MirrorCa:Admin:Listen)", statusCode: StatusCodes.Status404NotFound);
        }

        var cert = await http.Connection.GetClientCertificateAsync(http.RequestAborted).ConfigureAwait(false);
        // Offline first (issue 16 finding 1): a certificate that does not chain to the TLS CA without downloads is
        // refused here, before any chain build that could fetch its AIA URL.
        if (cert is not null && !OfflinePki.Hosting.ClientCertificateChains.ChainsOffline(cert, policy.ClientCa!, http.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow(), out var why))
        {
            return Results.Problem($"client certificate CN={cert.GetNameInfo(X509NameType.SimpleName, false)} does not chain to the admin TLS CA '{policy.ClientCa!.Subject}' ({why}); no certificate is downloaded", statusCode: StatusCodes.Status403Forbidden);
        }

        CallerIdentity caller;
        try
        {
            caller = policy.Callers.Authorize(cert);
        }
        catch (CallerRejectedException ex)
        {
            return Results.Problem(ex.Message, statusCode: ex.NoCertificate ? StatusCodes.Status401Unauthorized : StatusCodes.Status403Forbidden);
        }

        var granted = Enum.Parse<AdminRole>(caller.Principal);
        if (granted < role)
        {
            return Results.Problem($"client CN={caller.ClientName} has role {granted}; {http.Request.Method} {http.Request.Path} needs {role}", statusCode: StatusCodes.Status403Forbidden);
        }

        http.Items[typeof(CallerIdentity)] = caller;
        return await next(ctx).ConfigureAwait(false);
    };

    private static string Actor(HttpContext http) => "admin:" + ((CallerIdentity)http.Items[typeof(CallerIdentity)]!).ClientName;

    private static IResult GetCertificate(string serial, string? factory, MirrorRegistry registry, MirrorFactories factories)
    {
        byte[] bytes;
        try
        {
            bytes = SerialNumber.FromHex(serial);
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            return Results.Problem($"serial '{serial}' is not a positive hex serial: {ex.Message}", statusCode: StatusCodes.Status400BadRequest);
        }

        var answers = factories.All.Where(f => factory is null || f.FactoryId == factory).Select(f =>
        {
            var status = registry.GetStatus(IssuerHashes.KeyHash(f.IssuingCa), bytes);
            return new
            {
                Factory = f.FactoryId, Serial = SerialNumber.ToHex(bytes), State = status.State.ToString(),
                Reason = status.Revocation is { } r ? CrlReasons.Name(r.Reason) : null,
                RevokedAt = status.Revocation?.RevocationTime.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
                InvalidityDate = status.Revocation?.InvalidityDate?.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            };
        }).ToList();
        return Results.Json(answers);
    }

    private static IResult Revoke(AdminRevokeRequest request, HttpContext http, MirrorRegistry registry, MirrorFactories factories)
    {
        if (!CrlReasons.TryParseForRevocation(request.Reason, out var reason, out var reasonError))
        {
            return Results.Problem(reasonError, statusCode: StatusCodes.Status400BadRequest);
        }

        var selector = new RevocationSelector(request.Device, request.Station, request.Batch, request.From, request.To, request.All);
        if ((request.Serial is null) == selector.IsEmpty)
        {
            return Results.Problem("give either serial, or one or more of device, station, batch, all", statusCode: StatusCodes.Status400BadRequest);
        }

        var issuer = IssuerOf(request.Factory, factories);
        try
        {
            if (request.Serial is { } serialText)
            {
                var result = registry.Revoke(issuer, SerialNumber.FromHex(serialText), reason, request.InvalidityDate, Actor(http));
                return Results.Json(new
                {
                    Outcome = result.Outcome.ToString(), result.FactoryId, Serial = SerialNumber.ToHex(result.Entry.Serial), result.DeviceId,
                    Reason = CrlReasons.Name(result.Entry.Reason),
                    RevokedAt = result.Entry.RevocationTime.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
                });
            }

            var bulk = registry.RevokeMatching(issuer, selector, reason, request.InvalidityDate, Actor(http));
            return Results.Json(new { Outcome = "Revoked", Selector = selector.ToString(), bulk.Matched, bulk.NewlyRevoked, bulk.AlreadyRevoked, Reason = CrlReasons.Name(reason) });
        }
        catch (RevocationException ex)
        {
            return Results.Problem(ex.Message, statusCode: StatusCodes.Status404NotFound);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException)
        {
            return Results.Problem(ex.Message, statusCode: StatusCodes.Status400BadRequest);
        }
    }

    private static IResult ReleaseHold(AdminReleaseRequest request, HttpContext http, MirrorRegistry registry, MirrorFactories factories)
    {
        try
        {
            var result = registry.ReleaseHold(IssuerOf(request.Factory, factories), SerialNumber.FromHex(request.Serial ?? string.Empty), Actor(http));
            return Results.Json(new
            {
                Outcome = "Released", result.FactoryId, Serial = SerialNumber.ToHex(result.Serial), result.DeviceId,
                ReleasedAt = result.ReleasedAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            });
        }
        catch (RevocationException ex)
        {
            return Results.Problem(ex.Message, statusCode: StatusCodes.Status409Conflict);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException)
        {
            return Results.Problem(ex.Message, statusCode: StatusCodes.Status400BadRequest);
        }
    }

    private static string? IssuerOf(string? factory, MirrorFactories factories) =>
        factory is not null && factories.Find(factory) is { } f ? Convert.ToHexString(IssuerHashes.KeyHash(f.IssuingCa)) : factory;
}

/// <summary>The admin caller policy (null when the admin API is disabled).</summary>
/// <param name="Callers">CN → role, checked against the TLS CA.</param>
/// <param name="ClientCa">The TLS CA admin client certificates chain to (offline), or null when disabled.</param>
public sealed record AdminPolicy(CallerIdentityPolicy? Callers, X509Certificate2? ClientCa);
