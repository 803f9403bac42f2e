using System.Net.Sockets;

namespace OfflinePki.Station;

/// <summary>A step of the station flow failed; <see cref="Step"/> names it and the message says why (never a secret).</summary>
public sealed class StationStepException(string step, string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The step: connect, identify, csr, enroll, verify, write, challenge or finalize.</summary>
    public string Step { get; } = step;
}

/// <summary>
/// The station side of the device protocol: opens "tcp:HOST:PORT" or "serial:/dev/tty..." and sends one request
/// at a time, waiting at most <see cref="Timeout"/> for each answer.
/// </summary>
public sealed class DeviceLink : IAsyncDisposable
{
    private readonly JsonLineChannel _channel;

    private DeviceLink(JsonLineChannel channel, string endpoint, TimeSpan timeout)
    {
        _channel = channel;
        Endpoint = endpoint;
        Timeout = timeout;
    }

    /// <summary>The endpoint text as given.</summary>
    public string Endpoint { get; }

    /// <summary>Longest wait for one answer.</summary>
    public TimeSpan Timeout { get; }

    /// <summary>
    /// Opens the device. "tcp:HOST:PORT" connects a socket; "serial:PATH" (or a bare absolute PATH) opens a tty as a
    /// file. A real serial port must be set up first (e.g. <c>stty -F /dev/ttyUSB0 115200 raw -echo</c>).
    /// </summary>
    /// <param name="endpoint">The endpoint text.</param>
    /// <param name="timeout">Longest wait for the connection and for each answer.</param>
    /// <param name="cancellationToken">Cancels the connect.</param>
    /// <returns>The open link.</returns>
    /// <exception cref="StationStepException">Step "connect": bad endpoint text, refused or timed-out connection, unopenable tty.</exception>
    public static async Task<DeviceLink> OpenAsync(string endpoint, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(endpoint);
        Stream stream;
        if (endpoint.StartsWith("tcp:", StringComparison.Ordinal))
        {
            string hostPort = endpoint[4..];
            int colon = hostPort.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(hostPort[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int port)
                || port is < 1 or > 65535)
            {
                throw new StationStepException(StationSteps.Connect, $"--device '{endpoint}': expected tcp:HOST:PORT");
            }

            string host = hostPort[..colon].Trim('[', ']');
            var client = new TcpClient { NoDelay = true };
            try
            {
                await client.ConnectAsync(host, port, cancellationToken).AsTask().WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or TimeoutException)
            {
                client.Dispose();
                throw new StationStepException(StationSteps.Connect, $"cannot connect to device at {endpoint}: {ex.Message}", ex);
            }

            stream = client.GetStream(); // owns the socket
        }
        else if (endpoint.StartsWith("serial:", StringComparison.Ordinal) || endpoint.StartsWith('/'))
        {
            string path = endpoint.StartsWith('/') ? endpoint : endpoint[7..];
            try
            {
                // Unbuffered, so each line goes out when written.
                stream = new FileStream(path, new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.ReadWrite, Share = FileShare.ReadWrite, BufferSize = 0 });
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new StationStepException(StationSteps.Connect, $"cannot open serial port '{path}': {ex.Message}", ex);
            }
        }
        else
        {
            throw new StationStepException(StationSteps.Connect, $"--device '{endpoint}': expected tcp:HOST:PORT or serial:/dev/ttyX");
        }

        return new DeviceLink(new JsonLineChannel(stream), endpoint, timeout);
    }

    /// <summary>Sends <paramref name="request"/> and returns the device's successful answer.</summary>
    /// <param name="step">The step, for errors.</param>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the exchange.</param>
    /// <returns>The response, with <see cref="DeviceResponse.Ok"/> true.</returns>
    /// <exception cref="StationStepException">No answer in time, connection closed, protocol broken, or ok:false (the device's reason is quoted).</exception>
    public async Task<DeviceResponse> CallAsync(string step, DeviceRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        string? line;
        try
        {
            await _channel.WriteLineAsync(DeviceProtocol.Encode(request), cancellationToken).WaitAsync(Timeout, cancellationToken).ConfigureAwait(false);
            line = await _channel.ReadLineAsync(cancellationToken).WaitAsync(Timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException ex)
        {
            throw new StationStepException(step, $"device did not answer '{request.Op}' within {Timeout.TotalSeconds:0.###} s", ex);
        }
        catch (IOException ex)
        {
            throw new StationStepException(step, $"device connection lost during '{request.Op}': {ex.Message}", ex);
        }
        catch (DeviceProtocolException ex)
        {
            throw new StationStepException(step, $"device broke the protocol answering '{request.Op}': {ex.Message}", ex);
        }

        if (line is null)
        {
            throw new StationStepException(step, $"device closed the connection instead of answering '{request.Op}'");
        }

        DeviceResponse response;
        try
        {
            response = DeviceProtocol.Decode<DeviceResponse>(line);
        }
        catch (DeviceProtocolException ex)
        {
            throw new StationStepException(step, $"device answered '{request.Op}' with a malformed line: {ex.Message}", ex);
        }

        if (!response.Ok)
        {
            throw new StationStepException(step, $"device refused '{request.Op}': {DeviceText.Clean(response.Error ?? "(no reason given)")}");
        }

        return response;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _channel.DisposeAsync();
}
