using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using OfflinePki.DeviceSimulator;
using OfflinePki.Keys;
using OfflinePki.Keys.Pkcs11;

var listen = new Option<string>("--listen") { Description = "TCP address:port to listen on (port 0: any free port; printed on stdout)", DefaultValueFactory = _ => "127.0.0.1:0" };
var deviceId = new Option<string>("--device-id") { Description = "the device ID (IEEE 802.1AR serial number) printed on its label", Required = true };
var mac = new Option<string?>("--mac") { Description = "primary MAC address, aa:bb:cc:dd:ee:ff" };
var firmware = new Option<string>("--firmware") { Description = "firmware version reported by info", DefaultValueFactory = _ => "sim-1.0.0" };
var tokenLabel = new Option<string>("--token-label") { Description = "PKCS#11 token standing in for the secure element", Required = true };
var keyLabel = new Option<string>("--key-label") { Description = "object label of the device key in the token", DefaultValueFactory = _ => "device-key" };
var altKeyLabel = new Option<string?>("--alt-key-label") { Description = "second key, used by --fault wrong-key-slot (default: KEY-LABEL-alt)" };
var pinFile = new Option<string>("--pin-file") { Description = "file holding the token user PIN (first line)", Required = true };
var module = new Option<string>("--module")
{
    Description = "PKCS#11 module (.so); SOFTHSM2_CONF selects SoftHSM2's token directory",
    DefaultValueFactory = _ => Environment.GetEnvironmentVariable("OFFLINEPKI_PKCS11_MODULE") ?? "/usr/lib/softhsm/libsofthsm2.so",
};
var fault = new Option<string>("--fault") { Description = "misbehave: none, wrong-key-slot, swapped-id, failed-write, refused-signature", DefaultValueFactory = _ => "none" };
fault.AcceptOnlyFromAmong("none", "wrong-key-slot", "swapped-id", "failed-write", "refused-signature");
var swappedId = new Option<string?>("--swapped-id") { Description = "the ID put in the CSR under --fault swapped-id (default: last two characters swapped)" };

var root = new RootCommand("OfflinePki device simulator: a device on the line, speaking the JSON-lines device protocol over TCP, its key in a PKCS#11 token");
foreach (var o in new Option[] { listen, deviceId, mac, firmware, tokenLabel, keyLabel, altKeyLabel, pinFile, module, fault, swappedId })
{
    root.Options.Add(o);
}

root.SetAction(async (parse, ct) =>
{
    if (!OperatingSystem.IsLinux())
    {
        await Console.Error.WriteLineAsync("device-sim: the PKCS#11 key is supported on Linux only").ConfigureAwait(false);
        return 2;
    }

    if (!IPEndPoint.TryParse(parse.GetValue(listen)!, out var endpoint))
    {
        await Console.Error.WriteLineAsync($"device-sim: --listen '{parse.GetValue(listen)}' is not ADDRESS:PORT").ConfigureAwait(false);
        return 2;
    }

    var faultMode = parse.GetValue(fault) switch
    {
        "wrong-key-slot" => DeviceFault.WrongKeySlot,
        "swapped-id" => DeviceFault.SwappedId,
        "failed-write" => DeviceFault.FailedWrite,
        "refused-signature" => DeviceFault.RefusedSignature,
        _ => DeviceFault.None,
    };
    string token = parse.GetValue(tokenLabel)!;
    string keyName = parse.GetValue(keyLabel)!;
    string pinPath = parse.GetValue(pinFile)!;
    string modulePath = parse.GetValue(module)!;
    byte[] ReadPin() => System.Text.Encoding.UTF8.GetBytes(File.ReadLines(pinPath).FirstOrDefault()?.TrimEnd('\r') ?? string.Empty);
    Pkcs11Key? key = null, alt = null;
    try
    {
        key = new Pkcs11Key("device-sim --key-label", $"pkcs11:token={token};object={keyName};type=private", modulePath, ReadPin);
        if (faultMode == DeviceFault.WrongKeySlot)
        {
            string altName = parse.GetValue(altKeyLabel) ?? keyName + "-alt";
            alt = new Pkcs11Key("device-sim --alt-key-label", $"pkcs11:token={token};object={altName};type=private", modulePath, ReadPin);
        }

        var device = new SimulatedDevice(parse.GetValue(deviceId)!, parse.GetValue(mac), parse.GetValue(firmware)!, key, alt, faultMode, parse.GetValue(swappedId));
        var server = new DeviceServer(device, Console.Error);
        string keyId = key.KeyId;
        await server.RunAsync(endpoint, bound =>
        {
            // The one line scripts and tests wait for.
            Console.Out.WriteLine($"device-sim: listening tcp:{bound} device {device.DeviceId} key {keyId} fault {parse.GetValue(fault)}");
            Console.Out.Flush();
        }, ct).ConfigureAwait(false);
        return 0;
    }
    catch (SigningKeyUnavailableException ex)
    {
        await Console.Error.WriteLineAsync("device-sim: secure element: " + ex.Message).ConfigureAwait(false);
        return 1;
    }
    catch (SocketException ex)
    {
        await Console.Error.WriteLineAsync($"device-sim: cannot listen on {endpoint}: {ex.Message}").ConfigureAwait(false);
        return 1;
    }
    finally
    {
        key?.Dispose();
        alt?.Dispose();
    }
});

return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
