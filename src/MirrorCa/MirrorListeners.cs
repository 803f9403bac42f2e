using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace OfflinePki.MirrorCa;

/// <summary>The mirror's listeners: each API answers only on its own.</summary>
public enum MirrorListener
{
    /// <summary>MirrorCa:Http:Listen (plain HTTP): CRLs, CA certificates, OCSP, /health.</summary>
    Http,

    /// <summary>MirrorCa:Sync:Listen (gRPC over HTTP/2, mTLS): the journal sync service.</summary>
    Sync,

    /// <summary>MirrorCa:Admin:Listen (HTTPS, mTLS): /admin.</summary>
    Admin,
}

/// <summary>
/// Enforces, in one place, that each mirror API answers only on its own listener (issue 16 finding 2): /admin only on
/// the admin listener, with /metrics; gRPC services (paths "/package.Service/Method") only on the sync listener; and
/// the public CRL/CA/OCSP routes and the legacy /health only on the plain-HTTP listener. The liveness and readiness
/// probes (/health/live, /health/ready) answer on every listener: they carry no data. Anything else gets 404 naming
/// the listener to use.
/// The listener of a connection is known from a tag the admin listener sets on its connections and from TLS
/// (the public listener is plain HTTP, the sync listener is the other TLS one), never from the Host header.
/// </summary>
public static class MirrorListeners
{
    private static readonly object AdminTag = new();

    /// <summary>Tags every connection of <paramref name="listen"/> as the admin listener's (call before UseHttps).</summary>
    /// <param name="listen">The admin listener's options.</param>
    /// <exception cref="ArgumentNullException"><paramref name="listen"/> is null.</exception>
    public static void TagAdmin(ListenOptions listen)
    {
        ArgumentNullException.ThrowIfNull(listen);
        listen.Use(next => connection =>
        {
            connection.Items[AdminTag] = AdminTag;
            return next(connection);
        });
    }

    /// <summary>The listener a request arrived on.</summary>
    /// <param name="http">The request.</param>
    /// <exception cref="ArgumentNullException"><paramref name="http"/> is null.</exception>
    public static MirrorListener Of(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        if (http.Features.Get<IConnectionItemsFeature>()?.Items is { } items && items.ContainsKey(AdminTag))
        {
            return MirrorListener.Admin;
        }

        return http.Request.IsHttps ? MirrorListener.Sync : MirrorListener.Http;
    }

    /// <summary>The listener that serves <paramref name="path"/>.</summary>
    /// <param name="path">The request path.</param>
    public static MirrorListener For(PathString path)
    {
        if (path.StartsWithSegments("/admin", StringComparison.Ordinal) || path.StartsWithSegments("/metrics", StringComparison.Ordinal))
        {
            return MirrorListener.Admin;
        }

        // gRPC: "/{package}.{Service}/{Method}" (the public routes' first segments have no dot).
        var value = path.Value ?? string.Empty;
        int end = value.Length > 1 ? value.IndexOf('/', 1) : -1;
        var first = end < 0 ? value : value[..end];
        return first.Contains('.', StringComparison.Ordinal) ? MirrorListener.Sync : MirrorListener.Http;
    }

    /// <summary>Adds the middleware that answers 404 to a request on a listener that does not serve its path.</summary>
    /// <param name="app">The mirror application.</param>
    /// <exception cref="ArgumentNullException"><paramref name="app"/> is null.</exception>
    public static IApplicationBuilder UseMirrorListenerIsolation(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.Use((http, next) =>
        {
            var on = Of(http);
            var wanted = For(http.Request.Path);
            if (on == wanted || http.Request.Path.StartsWithSegments("/health/live", StringComparison.Ordinal)
                || http.Request.Path.StartsWithSegments("/health/ready", StringComparison.Ordinal))
            {
                return next(http);
            }

            http.Response.StatusCode = StatusCodes.Status404NotFound;
            http.Response.ContentType = "text/plain; charset=utf-8";
            return http.Response.WriteAsync(
                $"{http.Request.Path} is not served on the {on} listener; it is served on MirrorCa:{wanted}:Listen\n", http.RequestAborted);
        });
    }
}
