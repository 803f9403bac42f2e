using System.Net;
using System.Net.Sockets;

namespace OfflinePki.Tests.Support;

/// <summary>Free loopback TCP ports for listeners a test configures by port.</summary>
internal static class Ports
{
    /// <summary>A port that was free on 127.0.0.1 a moment ago (bound to port 0, then released).</summary>
    public static int FreeLoopback()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}
