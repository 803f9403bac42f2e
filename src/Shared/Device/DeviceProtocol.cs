using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace OfflinePki.Station;

/// <summary>
/// The station ↔ device line protocol ("JSON lines"): one UTF-8 JSON object per line, ended by LF (a CR before
/// the LF is tolerated), over TCP or a serial port. The station sends one <see cref="DeviceRequest"/>, the device
/// answers with exactly one <see cref="DeviceResponse"/>, in order; there is no pipelining. Binary fields are
/// standard base64 (RFC 4648 §4) without line breaks. The full specification is docs/device-protocol.md.
/// </summary>
public static class DeviceProtocol
{
    /// <summary>Protocol version reported by <c>info</c> as <see cref="DeviceResponse.Protocol"/>.</summary>
    public const int Version = 1;

    /// <summary>Longest line either side accepts, in bytes, excluding the LF (64 KiB). Longer lines are refused.</summary>
    public const int MaxLineBytes = 64 * 1024;

    /// <summary>Fewest challenge bytes a device signs.</summary>
    public const int MinChallengeBytes = 16;

    /// <summary>Most challenge bytes a device signs.</summary>
    public const int MaxChallengeBytes = 64;

    /// <summary>Challenge length the station sends (32 bytes, from a CSPRNG).</summary>
    public const int ChallengeBytes = 32;

    /// <summary>Most certificates in a <c>write</c> chain.</summary>
    public const int MaxChainCertificates = 4;

    /// <summary>Operation names (the <c>op</c> field).</summary>
    public static class Ops
    {
        /// <summary>Identity: device ID, MAC, firmware, lock state.</summary>
        public const string Info = "info";

        /// <summary>Make a PKCS#10 request with the device key.</summary>
        public const string Csr = "csr";

        /// <summary>Store the certificate and chain; the answer carries what the device reads back from storage.</summary>
        public const string Write = "write";

        /// <summary>Read the stored certificate and chain.</summary>
        public const string Read = "read";

        /// <summary>Sign a challenge (see <see cref="DeviceChallenge"/>).</summary>
        public const string Sign = "sign";

        /// <summary>Set the debug-lock flag; afterwards only <c>info</c> and <c>read</c> are answered.</summary>
        public const string Finalize = "finalize";
    }

    /// <summary>Serializer options of the wire format: camelCase names, null fields omitted, no HTML escaping.</summary>
    public static JsonSerializerOptions JsonOptions { get; } = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = false,
        // Not HTML: keep '+' and quotes readable on a serial console.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Encodes a message as one line of JSON (no LF).</summary>
    /// <typeparam name="T"><see cref="DeviceRequest"/> or <see cref="DeviceResponse"/>.</typeparam>
    /// <param name="message">The message.</param>
    /// <returns>The JSON text.</returns>
    public static string Encode<T>(T message) => JsonSerializer.Serialize(message, JsonOptions);

    /// <summary>Decodes one line.</summary>
    /// <typeparam name="T"><see cref="DeviceRequest"/> or <see cref="DeviceResponse"/>.</typeparam>
    /// <param name="line">The line without its LF.</param>
    /// <returns>The message.</returns>
    /// <exception cref="DeviceProtocolException">The line is not a JSON object of that shape.</exception>
    public static T Decode<T>(string line)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(line);
        try
        {
            return JsonSerializer.Deserialize<T>(line, JsonOptions) ?? throw new DeviceProtocolException("line is JSON null, expected an object");
        }
        catch (JsonException ex)
        {
            throw new DeviceProtocolException($"line is not a valid JSON object: {ex.Message}", ex);
        }
    }

    /// <summary>Decodes a base64 field, naming it in the error.</summary>
    /// <param name="field">Field name for the message.</param>
    /// <param name="value">The base64 text.</param>
    /// <returns>The bytes.</returns>
    /// <exception cref="DeviceProtocolException">Missing or not base64.</exception>
    public static byte[] FromBase64(string field, string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw new DeviceProtocolException($"field '{field}' is missing");
        }

        try
        {
            return Convert.FromBase64String(value);
        }
        catch (FormatException)
        {
            throw new DeviceProtocolException($"field '{field}' is not base64");
        }
    }
}

/// <summary>A station → device request. Only <see cref="Op"/> is always present; the rest depends on the op.</summary>
public sealed record DeviceRequest
{
    /// <summary>The operation, one of <see cref="DeviceProtocol.Ops"/>.</summary>
    public string Op { get; init; } = string.Empty;

    /// <summary><c>csr</c>: the profile (or EST label) the certificate is for, e.g. "idevid"; informative to the device.</summary>
    public string? Profile { get; init; }

    /// <summary><c>write</c>: base64 DER of the device certificate.</summary>
    public string? Certificate { get; init; }

    /// <summary><c>write</c>: base64 DER of the CA certificates above it, issuer first (at most <see cref="DeviceProtocol.MaxChainCertificates"/>).</summary>
    public IReadOnlyList<string>? Chain { get; init; }

    /// <summary><c>sign</c>: base64 of the challenge (<see cref="DeviceProtocol.MinChallengeBytes"/>..<see cref="DeviceProtocol.MaxChallengeBytes"/> bytes).</summary>
    public string? Challenge { get; init; }
}

/// <summary>A device → station response. <see cref="Ok"/> false carries <see cref="Error"/> and nothing else.</summary>
public sealed record DeviceResponse
{
    /// <summary>True when the operation succeeded.</summary>
    public bool Ok { get; init; }

    /// <summary>Why the operation failed (when <see cref="Ok"/> is false); never secret.</summary>
    public string? Error { get; init; }

    /// <summary><c>info</c>: the device ID (IEEE 802.1AR serial number) the device holds.</summary>
    public string? DeviceId { get; init; }

    /// <summary><c>info</c>: the primary MAC address, "aa:bb:cc:dd:ee:ff", or null.</summary>
    public string? Mac { get; init; }

    /// <summary><c>info</c>: firmware version text.</summary>
    public string? Firmware { get; init; }

    /// <summary><c>info</c>: <see cref="DeviceProtocol.Version"/> spoken by the device.</summary>
    public int? Protocol { get; init; }

    /// <summary><c>info</c>, <c>finalize</c>: true once the debug-lock flag is set.</summary>
    public bool? Locked { get; init; }

    /// <summary><c>csr</c>: base64 DER PKCS#10 request (RFC 2986), signed with the device key.</summary>
    public string? Csr { get; init; }

    /// <summary><c>write</c>, <c>read</c>: base64 DER of the certificate as read back from storage.</summary>
    public string? Certificate { get; init; }

    /// <summary><c>write</c>, <c>read</c>: base64 DER chain as read back from storage.</summary>
    public IReadOnlyList<string>? Chain { get; init; }

    /// <summary><c>sign</c>: base64 DER ECDSA-Sig-Value (RFC 5480 §2.2) or PKCS#1 v1.5 signature over <see cref="DeviceChallenge.Message"/>.</summary>
    public string? Signature { get; init; }

    /// <summary>A failure response.</summary>
    /// <param name="error">The reason.</param>
    public static DeviceResponse Fail(string error) => new() { Ok = false, Error = error };
}

/// <summary>The device sent something that breaks the protocol (bad JSON, over-long line, missing field, no answer in time).</summary>
public sealed class DeviceProtocolException : Exception
{
    /// <summary>Creates the exception.</summary>
    public DeviceProtocolException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>
/// What the device signs for a challenge: the ASCII context <see cref="Context"/>, one zero byte, then the
/// challenge. The context keeps the device key from being used, through this protocol, as an oracle that signs
/// arbitrary data (a TLS handshake transcript, another CSR). The hash is SHA-256 for P-256 and RSA keys and
/// SHA-384 for P-384 keys, as <c>AsymmetricSigningKey</c> signs.
/// </summary>
public static class DeviceChallenge
{
    /// <summary>Domain-separation prefix.</summary>
    public const string Context = "OfflinePki station challenge v1";

    /// <summary>The bytes signed for <paramref name="challenge"/>.</summary>
    /// <param name="challenge">The challenge bytes.</param>
    /// <returns>Context ‖ 0x00 ‖ challenge.</returns>
    public static byte[] Message(ReadOnlySpan<byte> challenge)
    {
        byte[] context = Encoding.ASCII.GetBytes(Context);
        byte[] m = new byte[context.Length + 1 + challenge.Length];
        context.CopyTo(m, 0);
        challenge.CopyTo(m.AsSpan(context.Length + 1));
        return m;
    }

    /// <summary>Verifies a device's challenge signature with a certificate's public key.</summary>
    /// <param name="certificate">The device certificate (EC P-256/P-384 or RSA key).</param>
    /// <param name="challenge">The challenge sent.</param>
    /// <param name="signature">The signature returned.</param>
    /// <returns>True when it verifies.</returns>
    /// <exception cref="NotSupportedException">The certificate's key is neither EC nor RSA.</exception>
    public static bool Verify(X509Certificate2 certificate, ReadOnlySpan<byte> challenge, byte[] signature)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(signature);
        byte[] message = Message(challenge);
        using (var ec = certificate.GetECDsaPublicKey())
        {
            if (ec is not null)
            {
                var hash = ec.KeySize >= 384 ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA256;
                return ec.VerifyData(message, signature, hash, DSASignatureFormat.Rfc3279DerSequence);
            }
        }

        using var rsa = certificate.GetRSAPublicKey() ?? throw new NotSupportedException("the certificate key is neither EC nor RSA");
        return rsa.VerifyData(message, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
    }
}
