using System.Net;
using System.Net.Sockets;
using OfflinePki.Station;

namespace OfflinePki.DeviceSimulator;

/// <summary>
/// Serves a <see cref="SimulatedDevice"/> over TCP, one connection at a time (a device has one debug port). The
/// device state survives reconnects. Logs one line per request to <paramref name="log"/>: the op and the outcome,
/// never key material or the PIN.
/// </summary>
/// <param name="device">The device.</param>
/// <param name="log">Where to log (stderr in the CLI).</param>
public sealed class DeviceServer(SimulatedDevice device, TextWriter log)
{
    /// <summary>Listens on <paramref name="endpoint"/> (port 0: any free port) until cancelled.</summary>
    /// <param name="endpoint">Address and port.</param>
    /// <param name="listening">Called once with the bound endpoint, before the first accept.</param>
    /// <param name="cancellationToken">Stops the server.</param>
    /// <returns>Completes when cancelled.</returns>
    /// <exception cref="SocketException">The endpoint cannot be bound.</exception>
    public async Task RunAsync(IPEndPoint endpoint, Action<IPEndPoint> listening, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(listening);
        using var listener = new TcpListener(endpoint);
        listener.Start(backlog: 4);
        listening((IPEndPoint)listener.LocalEndpoint);
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                using var client = await listener.AcceptTcpClientAsync(cancellationToken).ConfigureAwait(false);
                client.NoDelay = true;
                await ServeAsync(client.GetStream(), cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Answers requests on one stream until the peer closes it or breaks the protocol.</summary>
    /// <param name="stream">The connection; owned (disposed) by this call.</param>
    /// <param name="cancellationToken">Stops serving.</param>
    /// <returns>Completes when the connection ends.</returns>
    public async Task ServeAsync(Stream stream, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        await using var channel = new JsonLineChannel(stream);
        try
        {
            while (true)
            {
                string? line = await channel.ReadLineAsync(cancellationToken).ConfigureAwait(false);
                if (line is null)
                {
                    return;
                }

                DeviceResponse response;
                string op = "?";
                try
                {
                    var request = DeviceProtocol.Decode<DeviceRequest>(line);
                    op = request.Op;
                    response = device.Handle(request);
                }
                catch (DeviceProtocolException ex)
                {
                    response = DeviceResponse.Fail("bad request: " + ex.Message);
                }

                await log.WriteLineAsync(response.Ok ? $"device-sim: {op}: ok" : $"device-sim: {op}: error: {response.Error}").ConfigureAwait(false);
                await log.FlushAsync(cancellationToken).ConfigureAwait(false);
                await channel.WriteLineAsync(DeviceProtocol.Encode(response), cancellationToken).ConfigureAwait(false);
            }
        }
        catch (DeviceProtocolException ex)
        {
            // Over-long or non-UTF-8 line: answer once, then drop the connection (the framing is lost).
            await log.WriteLineAsync("device-sim: closing connection: " + ex.Message).ConfigureAwait(false);
            try
            {
                await channel.WriteLineAsync(DeviceProtocol.Encode(DeviceResponse.Fail("bad request: " + ex.Message)), cancellationToken).ConfigureAwait(false);
            }
            catch (IOException)
            {
            }
        }
        catch (IOException ex)
        {
            await log.WriteLineAsync("device-sim: connection lost: " + ex.Message).ConfigureAwait(false);
        }
    }
}
