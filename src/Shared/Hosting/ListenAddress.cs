using System.Net;

namespace OfflinePki.Hosting;

/// <summary>Parses a configured listen URL ("https://127.0.0.1:8443", "http://[::1]:8080", "https://*:9443").</summary>
public static class ListenAddress
{
    /// <summary>Parses <paramref name="value"/>, which must use <paramref name="scheme"/> and name an IP address, localhost or *.</summary>
    /// <param name="value">The configured URL.</param>
    /// <param name="scheme">"http" or "https".</param>
    /// <param name="endpoint">The endpoint to bind (port 0 lets the OS choose).</param>
    /// <param name="error">Why it is refused, for a message that the caller prefixes with the config key.</param>
    /// <returns>True when <paramref name="value"/> is usable.</returns>
    public static bool TryParse(string? value, string scheme, out IPEndPoint? endpoint, out string? error)
    {
        endpoint = null;
        error = null;
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme != scheme)
        {
            error = $"'{value}' must be an {scheme} URL such as {scheme}://127.0.0.1:{(scheme == Uri.UriSchemeHttps ? 8443 : 8080)}";
            return false;
        }

        string host = uri.Host.Trim('[', ']');
        IPAddress? address = host switch
        {
            "*" or "0.0.0.0" => IPAddress.Any,
            "localhost" => IPAddress.Loopback,
            _ => IPAddress.TryParse(host, out var a) ? a : null,
        };
        if (address is null)
        {
            error = $"'{value}': host must be an IP address, localhost or *";
            return false;
        }

        endpoint = new IPEndPoint(address, uri.Port);
        return true;
    }
}
