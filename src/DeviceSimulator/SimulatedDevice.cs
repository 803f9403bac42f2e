using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using OfflinePki.Keys;
using OfflinePki.Station;

namespace OfflinePki.DeviceSimulator;

/// <summary>A misbehaviour the simulator can be started with, so that the station's checks can be seen to catch it.</summary>
public enum DeviceFault
{
    /// <summary>Behaves.</summary>
    None,

    /// <summary>Signs the challenge with a second key (another slot of the secure element), not the CSR's key.</summary>
    WrongKeySlot,

    /// <summary>Reports the right device ID in <c>info</c> but puts another ID (a neighbour's label) in the CSR.</summary>
    SwappedId,

    /// <summary>Stores the certificate with one flipped bit, so the read-back differs from what was written.</summary>
    FailedWrite,

    /// <summary>Refuses to sign the challenge.</summary>
    RefusedSignature,
}

/// <summary>
/// The device logic of the simulator: answers <see cref="DeviceRequest"/>s with its secure-element key
/// (<see cref="ISigningKey"/>, a PKCS#11 key in practice) and an in-memory certificate store standing in for flash.
/// Thread safe (one request at a time).
/// </summary>
public sealed class SimulatedDevice
{
    private readonly Lock _gate = new();
    private readonly ISigningKey _key;
    private readonly ISigningKey? _altKey;
    private byte[]? _certificate;
    private List<byte[]> _chain = [];

    /// <summary>Creates the device.</summary>
    /// <param name="deviceId">The device ID (IEEE 802.1AR serial number), as on its label.</param>
    /// <param name="mac">MAC address "aa:bb:cc:dd:ee:ff", or null.</param>
    /// <param name="firmware">Firmware version text.</param>
    /// <param name="key">The device key (signs the CSR and, unless <see cref="DeviceFault.WrongKeySlot"/>, the challenge).</param>
    /// <param name="altKey">The second key, required for <see cref="DeviceFault.WrongKeySlot"/>.</param>
    /// <param name="fault">The misbehaviour.</param>
    /// <param name="swappedId">The ID put in the CSR under <see cref="DeviceFault.SwappedId"/> (default: <paramref name="deviceId"/> with its last two characters swapped, or "-B" appended).</param>
    /// <exception cref="ArgumentException">Empty device ID, or <see cref="DeviceFault.WrongKeySlot"/> without <paramref name="altKey"/>.</exception>
    public SimulatedDevice(string deviceId, string? mac, string firmware, ISigningKey key, ISigningKey? altKey, DeviceFault fault, string? swappedId = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(deviceId);
        ArgumentNullException.ThrowIfNull(key);
        if (fault == DeviceFault.WrongKeySlot && altKey is null)
        {
            throw new ArgumentException("the wrong-key-slot fault needs a second key", nameof(altKey));
        }

        DeviceId = deviceId;
        Mac = mac;
        Firmware = firmware;
        _key = key;
        _altKey = altKey;
        Fault = fault;
        CsrDeviceId = fault == DeviceFault.SwappedId ? swappedId ?? Swap(deviceId) : deviceId;
    }

    /// <summary>The device ID reported by <c>info</c>.</summary>
    public string DeviceId { get; }

    /// <summary>The device ID put in the CSR subject (differs only under <see cref="DeviceFault.SwappedId"/>).</summary>
    public string CsrDeviceId { get; }

    /// <summary>MAC address or null.</summary>
    public string? Mac { get; }

    /// <summary>Firmware version.</summary>
    public string Firmware { get; }

    /// <summary>The active fault.</summary>
    public DeviceFault Fault { get; }

    /// <summary>True once finalized (debug lock set).</summary>
    public bool Locked { get; private set; }

    /// <summary>Answers one request; never throws for bad input (answers ok:false instead).</summary>
    /// <param name="request">The request.</param>
    /// <returns>The response.</returns>
    public DeviceResponse Handle(DeviceRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        lock (_gate)
        {
            try
            {
                if (Locked && request.Op is not (DeviceProtocol.Ops.Info or DeviceProtocol.Ops.Read))
                {
                    return DeviceResponse.Fail($"device is locked (finalized): '{request.Op}' is no longer accepted");
                }

                return request.Op switch
                {
                    DeviceProtocol.Ops.Info => new DeviceResponse
                    {
                        Ok = true, DeviceId = DeviceId, Mac = Mac, Firmware = Firmware, Protocol = DeviceProtocol.Version, Locked = Locked,
                    },
                    DeviceProtocol.Ops.Csr => MakeCsr(),
                    DeviceProtocol.Ops.Write => Write(request),
                    DeviceProtocol.Ops.Read => Read(),
                    DeviceProtocol.Ops.Sign => Sign(request),
                    DeviceProtocol.Ops.Finalize => FinalizeDevice(),
                    _ => DeviceResponse.Fail($"unknown op '{request.Op}' (expected info, csr, write, read, sign or finalize)"),
                };
            }
            catch (DeviceProtocolException ex)
            {
                return DeviceResponse.Fail(ex.Message);
            }
            catch (SigningKeyUnavailableException ex)
            {
                return DeviceResponse.Fail("secure element unavailable: " + ex.Message);
            }
        }
    }

    private DeviceResponse MakeCsr()
    {
        var name = new X500DistinguishedNameBuilder();
        name.Add("2.5.4.5", CsrDeviceId, UniversalTagNumber.PrintableString); // serialNumber (X.520), the 802.1AR device serial
        name.AddCommonName(CsrDeviceId);
        var request = new CertificateRequest(name.Build(), _key.PublicKey, HashAlgorithmName.SHA256);
        byte[] der = request.CreateSigningRequest(new SigningKeySignatureGenerator(_key));
        return new DeviceResponse { Ok = true, Csr = Convert.ToBase64String(der) };
    }

    private DeviceResponse Write(DeviceRequest request)
    {
        byte[] certificate = DeviceProtocol.FromBase64("certificate", request.Certificate);
        var chainText = request.Chain ?? [];
        if (chainText.Count > DeviceProtocol.MaxChainCertificates)
        {
            return DeviceResponse.Fail($"chain has {chainText.Count} certificates; at most {DeviceProtocol.MaxChainCertificates} fit");
        }

        var chain = chainText.Select((c, i) => DeviceProtocol.FromBase64($"chain[{i}]", c)).ToList();
        try
        {
            using var cert = X509CertificateLoader.LoadCertificate(certificate);
            if (!cert.PublicKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(_key.PublicKey.ExportSubjectPublicKeyInfo()))
            {
                return DeviceResponse.Fail("certificate public key does not match the device key; not stored");
            }

            foreach (var c in chain)
            {
                X509CertificateLoader.LoadCertificate(c).Dispose();
            }
        }
        catch (CryptographicException ex)
        {
            return DeviceResponse.Fail("not a DER certificate: " + ex.Message);
        }

        _certificate = (byte[])certificate.Clone();
        _chain = chain;
        if (Fault == DeviceFault.FailedWrite)
        {
            _certificate[_certificate.Length / 2] ^= 0x04; // a flash bit error
        }

        return Read();
    }

    private DeviceResponse Read() => _certificate is null
        ? DeviceResponse.Fail("no certificate stored")
        : new DeviceResponse { Ok = true, Certificate = Convert.ToBase64String(_certificate), Chain = _chain.Select(Convert.ToBase64String).ToList() };

    private DeviceResponse Sign(DeviceRequest request)
    {
        byte[] challenge = DeviceProtocol.FromBase64("challenge", request.Challenge);
        if (challenge.Length is < DeviceProtocol.MinChallengeBytes or > DeviceProtocol.MaxChallengeBytes)
        {
            return DeviceResponse.Fail($"challenge must be {DeviceProtocol.MinChallengeBytes}..{DeviceProtocol.MaxChallengeBytes} bytes, got {challenge.Length}");
        }

        if (Fault == DeviceFault.RefusedSignature)
        {
            return DeviceResponse.Fail("signature refused by the secure element (CKR_FUNCTION_REJECTED)");
        }

        var key = Fault == DeviceFault.WrongKeySlot ? _altKey! : _key;
        return new DeviceResponse { Ok = true, Signature = Convert.ToBase64String(key.Sign(DeviceChallenge.Message(challenge))) };
    }

    private DeviceResponse FinalizeDevice()
    {
        if (_certificate is null)
        {
            return DeviceResponse.Fail("no certificate stored; write one before finalize");
        }

        Locked = true;
        return new DeviceResponse { Ok = true, Locked = true };
    }

    private static string Swap(string id) => id.Length >= 2 && id[^1] != id[^2]
        ? string.Concat(id.AsSpan(0, id.Length - 2), id[^1].ToString(), id[^2].ToString())
        : id + "-B";
}
