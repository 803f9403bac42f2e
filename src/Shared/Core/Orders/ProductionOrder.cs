using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace OfflinePki.Orders;

/// <summary>Why a production order was refused.</summary>
public enum OrderFault
{
    /// <summary>The file is not a DER CMS SignedData (RFC 5652 §5) with embedded id-data content, or has not exactly one signer.</summary>
    Malformed,
    /// <summary>The CMS signature does not verify (RFC 5652 §5.6), or the signer certificate is not in the CMS.</summary>
    BadSignature,
    /// <summary>The signer certificate does not chain to the OEM root.</summary>
    UntrustedSigner,
    /// <summary>The signer certificate lacks the order-signing EKU (<see cref="Asn1.Oids.OrderSignerEku"/>).</summary>
    WrongEku,
    /// <summary>The signer certificate is outside its validity period.</summary>
    SignerNotValidNow,
    /// <summary>The content is not UTF-8 JSON of the order schema; the message names the field.</summary>
    Schema,
    /// <summary>The order names another factory (factoryId).</summary>
    WrongFactory,
    /// <summary>The order's validity window has ended (notAfter is in the past).</summary>
    Expired,
    /// <summary>Another order with the same orderId but different content was already accepted.</summary>
    Conflict,
}

/// <summary>A production order was refused. Nothing was stored or journaled. The message says what is wrong.</summary>
public sealed class OrderRejectedException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="fault">What is wrong.</param>
    /// <param name="message">A human-readable reason naming the field or the check; no secrets.</param>
    public OrderRejectedException(OrderFault fault, string message) : base(message) => Fault = fault;

    /// <summary>What is wrong.</summary>
    public OrderFault Fault { get; }
}

/// <summary>
/// Which device IDs an order covers: a regular expression that must match the whole ID, or an inclusive range
/// <c>from</c>..<c>to</c> of IDs of the same length, compared ordinally (for equal-length digit strings this is numeric order).
/// </summary>
public sealed class DeviceIdRule
{
    private readonly Regex? _regex;

    private DeviceIdRule(string? pattern, string? from, string? to)
    {
        Pattern = pattern;
        From = from;
        To = to;
        if (pattern is not null)
        {
            _regex = new Regex("^(?:" + pattern + ")$", RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
        }
    }

    /// <summary>The regular expression (.NET syntax, matched against the whole ID), or null for a range.</summary>
    public string? Pattern { get; }

    /// <summary>First ID of the range (inclusive), or null for a pattern.</summary>
    public string? From { get; }

    /// <summary>Last ID of the range (inclusive), or null for a pattern.</summary>
    public string? To { get; }

    /// <summary>A pattern rule.</summary>
    /// <param name="pattern">A .NET regular expression; it must match the whole device ID.</param>
    /// <exception cref="ArgumentException">The pattern does not compile.</exception>
    public static DeviceIdRule ForPattern(string pattern) => new(pattern, null, null);

    /// <summary>A range rule.</summary>
    /// <param name="from">First ID (inclusive).</param>
    /// <param name="to">Last ID (inclusive), same length as <paramref name="from"/>, not ordinally below it.</param>
    /// <exception cref="ArgumentException">The bounds differ in length, are empty, or are reversed.</exception>
    public static DeviceIdRule ForRange(string from, string to)
    {
        ArgumentException.ThrowIfNullOrEmpty(from);
        ArgumentException.ThrowIfNullOrEmpty(to);
        if (from.Length != to.Length)
        {
            throw new ArgumentException($"'from' ({from}) and 'to' ({to}) must have the same length", nameof(to));
        }

        if (string.CompareOrdinal(from, to) > 0)
        {
            throw new ArgumentException($"'from' ({from}) sorts after 'to' ({to})", nameof(to));
        }

        return new DeviceIdRule(null, from, to);
    }

    /// <summary>True when <paramref name="deviceId"/> is covered by the rule.</summary>
    /// <param name="deviceId">The device serial from the CSR.</param>
    public bool Contains(string deviceId)
    {
        ArgumentNullException.ThrowIfNull(deviceId);
        if (_regex is not null)
        {
            try
            {
                return _regex.IsMatch(deviceId);
            }
            catch (RegexMatchTimeoutException)
            {
                return false;
            }
        }

        return deviceId.Length == From!.Length && string.CompareOrdinal(deviceId, From) >= 0 && string.CompareOrdinal(deviceId, To) <= 0;
    }

    /// <inheritdoc />
    public override string ToString() => Pattern is not null ? $"pattern {Pattern}" : $"range {From}..{To}";
}

/// <summary>
/// An OEM production order: the signed file (a DER CMS SignedData, RFC 5652, with the JSON embedded as id-data
/// content) and its decoded fields. Obtain one from <see cref="ProductionOrderVerifier.Verify"/> (full trust checks) or
/// <see cref="ParseSigned"/> (content only, for orders already accepted into the journal).
/// </summary>
/// <remarks>
/// The JSON schema (UTF-8, one object, unknown members refused):
/// <code>
/// { "orderId": "PO-2026-0042",            // 1-64 of [A-Za-z0-9._-]
///   "sku": "GW-100",                      // 1-64 printable ASCII characters
///   "profile": "idevid",                  // the certificate profile the order may issue under
///   "quantity": 5000,                     // 1..1000000000 certificates
///   "deviceIds": { "pattern": "GW100-[0-9]{6}" } | { "from": "GW100-000001", "to": "GW100-005000" },
///   "notBefore": "2026-11-01T00:00:00Z",  // RFC 3339, UTC ("Z")
///   "notAfter":  "2027-02-01T00:00:00Z",  // after notBefore
///   "factoryId": "F1",                    // optional: only this factory may accept it
///   "reworkWindowHours": 72 }             // optional: 0..8760
/// </code>
/// </remarks>
public sealed class ProductionOrder
{
    /// <summary>True when a certificate of <paramref name="kind"/> consumes a unit of its order (initial and refurb do; rework and reenroll do not).</summary>
    /// <param name="kind">The issuance kind.</param>
    public static bool Consumes(Journal.V1.IssuanceKind kind) => kind is not (Journal.V1.IssuanceKind.Rework or Journal.V1.IssuanceKind.Reenroll);

    /// <summary>Largest quantity an order may carry.</summary>
    public const long MaxQuantity = 1_000_000_000;

    /// <summary>Largest signed order file accepted, in bytes.</summary>
    public const int MaxSignedBytes = 64 * 1024;

    private static readonly Regex OrderIdSyntax = new("^[A-Za-z0-9._-]{1,64}$", RegexOptions.CultureInvariant);
    private static readonly Regex FactoryIdSyntax = new("^[A-Za-z0-9_-]{1,32}$", RegexOptions.CultureInvariant);
    private static readonly HashSet<string> KnownFields = new(StringComparer.Ordinal)
    {
        "orderId", "sku", "profile", "quantity", "deviceIds", "notBefore", "notAfter", "factoryId", "reworkWindowHours",
    };

    private ProductionOrder() { }

    /// <summary>The order id (1-64 of [A-Za-z0-9._-]); journaled as CertificateIssued.batch_id.</summary>
    public string OrderId { get; private init; } = string.Empty;

    /// <summary>The product SKU.</summary>
    public string Sku { get; private init; } = string.Empty;

    /// <summary>The certificate profile name the order issues under.</summary>
    public string Profile { get; private init; } = string.Empty;

    /// <summary>How many certificates (initial or refurb) the order authorises.</summary>
    public long Quantity { get; private init; }

    /// <summary>The device IDs the order covers.</summary>
    public DeviceIdRule DeviceIds { get; private init; } = null!;

    /// <summary>Start of the validity window (inclusive), UTC.</summary>
    public DateTimeOffset NotBefore { get; private init; }

    /// <summary>End of the validity window (inclusive), UTC.</summary>
    public DateTimeOffset NotAfter { get; private init; }

    /// <summary>The only factory that may accept the order, or null for any factory.</summary>
    public string? FactoryId { get; private init; }

    /// <summary>How long after a device's certificate a rework re-issue is allowed, or null when the order does not say.</summary>
    public TimeSpan? ReworkWindow { get; private init; }

    /// <summary>The signed order file (DER CMS SignedData) exactly as the OEM produced it.</summary>
    public byte[] SignedBytes { get; private init; } = [];

    /// <summary>SHA-256 of <see cref="SignedBytes"/> (32 bytes).</summary>
    public byte[] Sha256 { get; private init; } = [];

    /// <summary>The embedded JSON content (UTF-8).</summary>
    public byte[] Json { get; private init; } = [];

    /// <summary>True when <paramref name="at"/> is inside [<see cref="NotBefore"/>, <see cref="NotAfter"/>].</summary>
    /// <param name="at">The instant to test.</param>
    public bool IsValidAt(DateTimeOffset at) => at >= NotBefore && at <= NotAfter;

    /// <summary>True when <paramref name="orderId"/> has the syntax of an order id (1-64 of [A-Za-z0-9._-]).</summary>
    /// <param name="orderId">The candidate.</param>
    public static bool IsValidOrderId(string? orderId) => orderId is not null && OrderIdSyntax.IsMatch(orderId);

    /// <summary>
    /// Decodes a signed order file and parses its JSON, without checking the signature or trust. For orders that are
    /// already trusted (read back from the factory journal or the mirror registry).
    /// </summary>
    /// <param name="signedOrder">DER CMS SignedData with embedded content.</param>
    /// <returns>The order.</returns>
    /// <exception cref="OrderRejectedException"><see cref="OrderFault.Malformed"/> or <see cref="OrderFault.Schema"/>.</exception>
    public static ProductionOrder ParseSigned(byte[] signedOrder)
    {
        var cms = DecodeCms(signedOrder);
        return Parse(cms.ContentInfo.Content, signedOrder);
    }

    /// <summary>Decodes the CMS envelope: DER SignedData, id-data content embedded, exactly one signer.</summary>
    internal static SignedCms DecodeCms(byte[] signedOrder)
    {
        ArgumentNullException.ThrowIfNull(signedOrder);
        if (signedOrder.Length == 0 || signedOrder.Length > MaxSignedBytes)
        {
            throw new OrderRejectedException(OrderFault.Malformed, $"an order file must be 1..{MaxSignedBytes} bytes of DER CMS SignedData (got {signedOrder.Length})");
        }

        var cms = new SignedCms();
        try
        {
            cms.Decode(signedOrder);
        }
        catch (CryptographicException ex)
        {
            throw new OrderRejectedException(OrderFault.Malformed,
                "the order is not a DER CMS SignedData (RFC 5652 §5.1); sign it with 'openssl cms -sign -nodetach -binary -outform DER' (ops/sign-order.sh): " + ex.Message);
        }

        if (cms.Detached || cms.ContentInfo.Content.Length == 0)
        {
            throw new OrderRejectedException(OrderFault.Malformed, "the order's CMS SignedData carries no embedded content (sign with -nodetach)");
        }

        if (cms.ContentInfo.ContentType.Value != "1.2.840.113549.1.7.1")
        {
            throw new OrderRejectedException(OrderFault.Malformed, $"the order's CMS content type is {cms.ContentInfo.ContentType.Value}, expected id-data (1.2.840.113549.1.7.1)");
        }

        int signers;
        try
        {
            // SignerInfos are decoded on first use, not by Decode: a malformed SignerInfo (e.g. its signed attributes) throws
            // here (found by fuzzing, fuzz/crashes/order-cms).
            signers = cms.SignerInfos.Count;
        }
        catch (CryptographicException ex)
        {
            throw new OrderRejectedException(OrderFault.Malformed, "the order's CMS SignerInfo does not decode (RFC 5652 §5.3): " + ex.Message);
        }

        if (signers != 1)
        {
            throw new OrderRejectedException(OrderFault.Malformed, $"the order must have exactly one signer, it has {signers}");
        }

        return cms;
    }

    /// <summary>Parses and validates the JSON content; every failure names its field.</summary>
    /// <param name="json">UTF-8 JSON.</param>
    /// <param name="signedOrder">The signed file it came from.</param>
    /// <returns>The order.</returns>
    /// <exception cref="OrderRejectedException"><see cref="OrderFault.Schema"/>: the message names the field.</exception>
    internal static ProductionOrder Parse(byte[] json, byte[] signedOrder)
    {
        JsonDocument doc;
        try
        {
            // Strict UTF-8: invalid sequences are an error, not a replacement character.
            _ = new UTF8Encoding(false, true).GetCharCount(json);
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 8 });
        }
        catch (Exception ex) when (ex is JsonException or DecoderFallbackException)
        {
            throw Schema("the order content is not UTF-8 JSON: " + ex.Message);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Schema("the order content must be a JSON object");
            }

            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in root.EnumerateObject())
            {
                if (!KnownFields.Contains(p.Name))
                {
                    throw Schema($"field '{p.Name}': unknown (allowed: {string.Join(", ", KnownFields)})");
                }

                if (!seen.Add(p.Name))
                {
                    throw Schema($"field '{p.Name}': given twice");
                }
            }

            string orderId = RequiredString(root, "orderId");
            if (!OrderIdSyntax.IsMatch(orderId))
            {
                throw Schema($"field 'orderId': '{orderId}' must be 1-64 of [A-Za-z0-9._-]");
            }

            string sku = RequiredString(root, "sku");
            if (sku.Length > 64 || sku.Any(c => c is < (char)0x20 or > (char)0x7E))
            {
                throw Schema("field 'sku': must be 1-64 printable ASCII characters");
            }

            string profile = RequiredString(root, "profile");
            if (profile.Length > 64 || profile.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
            {
                throw Schema($"field 'profile': '{profile}' must be 1-64 of [A-Za-z0-9._-]");
            }

            if (!root.TryGetProperty("quantity", out var q))
            {
                throw Schema("field 'quantity': required");
            }

            if (q.ValueKind != JsonValueKind.Number || !q.TryGetInt64(out long quantity) || quantity < 1 || quantity > MaxQuantity)
            {
                throw Schema($"field 'quantity': must be an integer 1..{MaxQuantity}");
            }

            var deviceIds = ParseDeviceIds(root);
            var notBefore = RequiredTime(root, "notBefore");
            var notAfter = RequiredTime(root, "notAfter");
            if (notAfter <= notBefore)
            {
                throw Schema($"field 'notAfter': {notAfter:O} must be after notBefore {notBefore:O}");
            }

            string? factoryId = null;
            if (root.TryGetProperty("factoryId", out var f))
            {
                if (f.ValueKind != JsonValueKind.String || !FactoryIdSyntax.IsMatch(f.GetString()!))
                {
                    throw Schema("field 'factoryId': must be a string of 1-32 of [A-Za-z0-9_-]");
                }

                factoryId = f.GetString();
            }

            TimeSpan? rework = null;
            if (root.TryGetProperty("reworkWindowHours", out var rw))
            {
                if (rw.ValueKind != JsonValueKind.Number || !rw.TryGetInt32(out int hours) || hours < 0 || hours > 8760)
                {
                    throw Schema("field 'reworkWindowHours': must be an integer 0..8760");
                }

                rework = TimeSpan.FromHours(hours);
            }

            return new ProductionOrder
            {
                OrderId = orderId,
                Sku = sku,
                Profile = profile,
                Quantity = quantity,
                DeviceIds = deviceIds,
                NotBefore = notBefore,
                NotAfter = notAfter,
                FactoryId = factoryId,
                ReworkWindow = rework,
                SignedBytes = signedOrder,
                Sha256 = SHA256.HashData(signedOrder),
                Json = json,
            };
        }
    }

    private static DeviceIdRule ParseDeviceIds(JsonElement root)
    {
        if (!root.TryGetProperty("deviceIds", out var d))
        {
            throw Schema("field 'deviceIds': required ({\"pattern\": regex} or {\"from\", \"to\"})");
        }

        if (d.ValueKind != JsonValueKind.Object)
        {
            throw Schema("field 'deviceIds': must be an object {\"pattern\": regex} or {\"from\", \"to\"}");
        }

        var names = d.EnumerateObject().Select(p => p.Name).ToList();
        if (names.Any(n => n is not ("pattern" or "from" or "to")) || names.Count != names.Distinct(StringComparer.Ordinal).Count())
        {
            throw Schema($"field 'deviceIds': members must be either 'pattern' or 'from' and 'to' (got {string.Join(", ", names)})");
        }

        if (names.Contains("pattern"))
        {
            if (names.Count != 1)
            {
                throw Schema("field 'deviceIds': give either 'pattern' or 'from' and 'to', not both");
            }

            var pattern = d.GetProperty("pattern");
            if (pattern.ValueKind != JsonValueKind.String || pattern.GetString() is not { Length: > 0 and <= 256 } text)
            {
                throw Schema("field 'deviceIds.pattern': must be a non-empty string of at most 256 characters");
            }

            try
            {
                return DeviceIdRule.ForPattern(text);
            }
            catch (ArgumentException ex)
            {
                throw Schema($"field 'deviceIds.pattern': not a valid regular expression: {ex.Message}");
            }
        }

        if (!names.Contains("from") || !names.Contains("to"))
        {
            throw Schema("field 'deviceIds': a range needs both 'from' and 'to'");
        }

        string from = DeviceIdBound(d, "from"), to = DeviceIdBound(d, "to");
        if (from.Length != to.Length)
        {
            throw Schema($"field 'deviceIds.to': '{to}' must have the same length as 'from' '{from}'");
        }

        if (string.CompareOrdinal(from, to) > 0)
        {
            throw Schema($"field 'deviceIds.to': '{to}' sorts before 'from' '{from}'");
        }

        return DeviceIdRule.ForRange(from, to);
    }

    private static string DeviceIdBound(JsonElement d, string name)
    {
        var e = d.GetProperty(name);
        if (e.ValueKind != JsonValueKind.String || e.GetString() is not { Length: > 0 and <= 64 } s || s.Any(c => c is < (char)0x21 or > (char)0x7E))
        {
            throw Schema($"field 'deviceIds.{name}': must be 1-64 printable ASCII characters without spaces");
        }

        return s;
    }

    private static string RequiredString(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var e))
        {
            throw Schema($"field '{name}': required");
        }

        if (e.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(e.GetString()))
        {
            throw Schema($"field '{name}': must be a non-empty string");
        }

        return e.GetString()!;
    }

    private static DateTimeOffset RequiredTime(JsonElement root, string name)
    {
        string text = RequiredString(root, name);
        // RFC 3339 §5.6 date-time in UTC: "2026-11-01T00:00:00Z", optional fraction.
        string[] formats = ["yyyy-MM-dd'T'HH:mm:ss'Z'", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'"];
        if (!DateTimeOffset.TryParseExact(text, formats, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
        {
            throw Schema($"field '{name}': '{text}' is not an RFC 3339 UTC time like 2026-11-01T00:00:00Z");
        }

        return t;
    }

    private static OrderRejectedException Schema(string message) => new(OrderFault.Schema, message);
}
