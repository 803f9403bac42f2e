using OfflinePki.Station;

namespace OfflinePki.Fuzz;

/// <summary>
/// The device JSON-lines protocol: the input is a byte stream read by <see cref="JsonLineChannel"/>; every line is decoded
/// as a request and as a response, and a response's base64 fields are decoded.
/// </summary>
internal sealed class DeviceLinesTarget : FuzzTarget
{
    public override string Name => "device-lines";

    public override void Run(byte[] data)
    {
        var channel = new JsonLineChannel(new MemoryStream(data), 4096);
        while (true)
        {
            string? line;
            try
            {
                line = channel.ReadLineAsync(CancellationToken.None).GetAwaiter().GetResult();
            }
            catch (DeviceProtocolException)
            {
                return;
            }

            if (line is null)
            {
                return;
            }

            try
            {
                _ = DeviceProtocol.Decode<DeviceRequest>(line);
            }
            catch (DeviceProtocolException)
            {
            }

            try
            {
                var response = DeviceProtocol.Decode<DeviceResponse>(line);
                _ = DeviceProtocol.FromBase64("csr", response.Csr);
                _ = DeviceProtocol.FromBase64("certificate", response.Certificate);
                _ = DeviceProtocol.FromBase64("signature", response.Signature);
            }
            catch (DeviceProtocolException)
            {
            }
        }
    }
}
