using System.Net;
using System.Net.Sockets;

namespace OfflinePki.Tests.Resilience;

/// <summary>
/// A loopback TCP proxy that forwards bytes both ways to a target port and, when armed, cuts every connection once
/// <see cref="CutAfterBytes"/> bytes (both directions together) have passed through it.
/// </summary>
internal sealed class CuttingProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accept;
    private long _forwarded;

    public CuttingProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener.Start();
        _accept = Task.Run(AcceptLoop);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Cut after this many forwarded bytes, counted from <see cref="Arm"/>; null forwards without limit.</summary>
    public long? CutAfterBytes { get; private set; }

    /// <summary>How many connections were cut.</summary>
    public int Cuts;

    /// <summary>Bytes forwarded since the last <see cref="Arm"/>.</summary>
    public long Forwarded => Interlocked.Read(ref _forwarded);

    public void Arm(long? cutAfterBytes)
    {
        Interlocked.Exchange(ref _forwarded, 0);
        CutAfterBytes = cutAfterBytes;
    }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }

            _ = Task.Run(() => Serve(client));
        }
    }

    private async Task Serve(Socket client)
    {
        using var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using (client)
        {
            try
            {
                await server.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
            }
            catch (Exception)
            {
                return;
            }

            using var cut = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            var a = Pump(client, server, cut);
            var b = Pump(server, client, cut);
            await Task.WhenAny(a, b);
            await cut.CancelAsync();
            client.Close(0);
            server.Close(0);
            await Task.WhenAll(a, b);
        }
    }

    private async Task Pump(Socket from, Socket to, CancellationTokenSource cut)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (!cut.IsCancellationRequested)
            {
                int n = await from.ReceiveAsync(buffer, SocketFlags.None, cut.Token);
                if (n == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }

                int send = n;
                bool cutNow = false;
                if (CutAfterBytes is { } limit)
                {
                    long before = Interlocked.Add(ref _forwarded, n) - n;
                    if (before + n >= limit)
                    {
                        send = (int)Math.Max(0, limit - before);
                        cutNow = true;
                    }
                }

                if (send > 0)
                {
                    await to.SendAsync(buffer.AsMemory(0, send), SocketFlags.None, cut.Token);
                }

                if (cutNow)
                {
                    Interlocked.Increment(ref Cuts);
                    return;
                }
            }
        }
        catch (Exception)
        {
            // A closed socket or a cut: the other pump ends too.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _accept;
        }
        catch (Exception)
        {
        }

        _stop.Dispose();
    }
}
