using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using OfflinePki.Tests.Factory;

namespace OfflinePki.Tests.Support;

/// <summary>
/// A slow "AIA server" on 127.0.0.1: it accepts TCP connections, counts them and never answers. A client certificate
/// whose authorityInfoAccess caIssuers URL points here shows whether a TLS peer downloads it while validating.
/// </summary>
internal sealed class AiaTrap : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly List<TcpClient> _held = [];
    private int _connections;

    public AiaTrap()
    {
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = AcceptLoopAsync();
    }

    /// <summary>The port the trap listens on.</summary>
    public int Port { get; }

    /// <summary>Connections accepted so far.</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>
    /// A P-256 TLS client certificate (CN=<paramref name="cn"/>, clientAuth) issued by a fresh rogue CA, with
    /// authorityInfoAccess caIssuers pointing at this trap, so that a chain builder allowed to download fetches it.
    /// </summary>
    public (string Crt, string Key) ClientCertificate(string cn)
    {
        var rogue = Peers.RogueCa();
        string crt = Peers.NewPath($"-aia-{cn}.crt"), key = Peers.NewPath($"-aia-{cn}.key"), csr = Peers.NewPath(".csr"), ext = Peers.NewPath(".cnf");
        File.WriteAllText(ext, "basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
            + $"authorityInfoAccess=caIssuers;URI:http://127.0.0.1:{Port}/issuer.crt\n");
        Tool.OpenSsl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", $"/CN={cn}",
            "-keyout", key, "-out", csr).EnsureSuccess("aia client csr");
        Tool.OpenSsl("x509", "-req", "-in", csr, "-CA", rogue.Crt, "-CAkey", rogue.Key, "-set_serial", "0x" + Convert.ToHexString(Guid.NewGuid().ToByteArray()),
            "-days", "30", "-sha256", "-extfile", ext, "-out", crt).EnsureSuccess("aia client cert");
        return (crt, key);
    }

    /// <summary>Runs curl with the certificate against <paramref name="url"/>; returns the HTTP status (0 when none) and the time taken.</summary>
    public static (int Status, TimeSpan Elapsed, string Body) Curl(string url, (string Crt, string Key) client, string caCert, params string[] extra)
    {
        string outFile = Peers.NewPath(".out");
        var args = new List<string> { "-s", "--max-time", "20", "--cacert", caCert, "--cert", client.Crt, "--key", client.Key, "-o", outFile, "-w", "%{http_code}" };
        args.AddRange(extra);
        args.Add(url);
        var sw = Stopwatch.StartNew();
        var r = Tool.Run("curl", args);
        sw.Stop();
        int.TryParse(r.StdOut.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int status);
        return (status, sw.Elapsed, File.Exists(outFile) ? File.ReadAllText(outFile) : string.Empty);
    }

    public void Dispose()
    {
        _listener.Stop();
        lock (_held)
        {
            foreach (var c in _held)
            {
                c.Dispose();
            }
        }
    }

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync().ConfigureAwait(false);
                Interlocked.Increment(ref _connections);
                lock (_held)
                {
                    _held.Add(client); // held open, never answered: a slow AIA server
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
    }
}
