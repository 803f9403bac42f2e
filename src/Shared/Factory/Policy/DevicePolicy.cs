using System.Buffers.Binary;
using System.Globalization;
using Google.Protobuf;
using OfflinePki.Asn1;
using OfflinePki.Enrollment;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Factory;

namespace OfflinePki.Policy;

/// <summary>What a returning (refurbished) unit gets (FactoryCa:Refurb:Mode).</summary>
public enum RefurbMode
{
    /// <summary>The same device ID with a new key pair; the new certificate supersedes the old one.</summary>
    RotateKey,

    /// <summary>A new device ID (and key); the station names the old ID in X-Previous-Device-Id, whose certificate is superseded.</summary>
    NewIdentity,
}

/// <summary>The device rules' settings: FactoryCa:Rework and FactoryCa:Refurb.</summary>
public sealed class DevicePolicyOptions
{
    /// <summary>FactoryCa:Rework.</summary>
    public ReworkOptions Rework { get; set; } = new();

    /// <summary>FactoryCa:Refurb.</summary>
    public RefurbOptions Refurb { get; set; } = new();

    /// <summary>Checks the settings; each message names its key under <paramref name="section"/> (e.g. "FactoryCa").</summary>
    /// <param name="section">The configuration section the options were bound from.</param>
    /// <returns>The errors; empty when valid.</returns>
    public IReadOnlyList<string> Validate(string section)
    {
        var errors = new List<string>();
        if (Rework.Window <= TimeSpan.Zero || Rework.Window > TimeSpan.FromDays(3650))
        {
            errors.Add($"{section}:Rework:Window: {Rework.Window} must be positive and at most 3650.00:00:00");
        }

        if (!Enum.TryParse<RefurbMode>(Refurb.Mode, ignoreCase: true, out var mode) || !Enum.IsDefined(mode) || int.TryParse(Refurb.Mode, out _))
        {
            errors.Add($"{section}:Refurb:Mode: '{Refurb.Mode}' must be RotateKey or NewIdentity");
        }

        return errors;
    }
}

/// <summary>FactoryCa:Rework: re-issue to a device of the same order, superseding its certificate.</summary>
public sealed class ReworkOptions
{
    /// <summary>How long after a device's first issuance under its order a rework is allowed (default 72 hours).</summary>
    public TimeSpan Window { get; set; } = TimeSpan.FromHours(72);
}

/// <summary>FactoryCa:Refurb: returning units.</summary>
public sealed class RefurbOptions
{
    /// <summary>"RotateKey" (default) or "NewIdentity" (case-insensitive), see <see cref="RefurbMode"/>.</summary>
    public string Mode { get; set; } = nameof(RefurbMode.RotateKey);

    /// <summary>The parsed <see cref="Mode"/>.</summary>
    /// <exception cref="ArgumentException">The mode is not one of the names (validated at startup).</exception>
    public RefurbMode ParsedMode => Enum.Parse<RefurbMode>(Mode, ignoreCase: true);
}

/// <summary>A per-order rework window (an order may carry its own); the orders component implements it.</summary>
public interface IOrderReworkWindows
{
    /// <summary>The order's own rework window, if it sets one.</summary>
    /// <param name="orderId">The order id (never empty).</param>
    /// <param name="window">The window.</param>
    /// <returns>False to use FactoryCa:Rework:Window.</returns>
    bool TryGetReworkWindow(string orderId, out TimeSpan window);
}

/// <summary>Where a device stands in its lifecycle on this factory.</summary>
public enum DeviceLifecycle
{
    /// <summary>Holds its first certificate.</summary>
    Initial,
    /// <summary>Holds a certificate re-issued by rework.</summary>
    Reworked,
    /// <summary>A returned unit, re-keyed or given this new identity.</summary>
    Refurbished,
    /// <summary>Holds a certificate renewed by EST simplereenroll.</summary>
    Reenrolled,
    /// <summary>Its identity was replaced by a new device ID (refurb NewIdentity); it has no active certificate.</summary>
    Retired,
}

/// <summary>One device as the policy knows it.</summary>
/// <param name="DeviceId">The device ID.</param>
/// <param name="State">Its lifecycle state.</param>
/// <param name="ActiveSerialHex">Upper-case hex of its active certificate's serial; null when retired.</param>
/// <param name="OrderId">The order of its current identity (empty when none).</param>
/// <param name="IdentityIssuedAt">When its current identity was first issued (initial or refurb); the rework window counts from here.</param>
/// <param name="RetiredTo">The device ID that replaced it (refurb NewIdentity), or null.</param>
public sealed record DeviceStatus(string DeviceId, DeviceLifecycle State, string? ActiveSerialHex, string OrderId, DateTimeOffset IdentityIssuedAt, string? RetiredTo);

/// <summary>
/// The device rules of the registration authority (issue 6, "Device IDs"): one active IDevID per device ID, rework
/// within the order's window, refurb by key rotation or new identity, simplereenroll of the active certificate only,
/// and cloned-key detection (the same public key for two device IDs is refused and journaled as a refusal).
/// </summary>
/// <remarks>
/// <para>State: device ID → active certificate (serial, order, identity issue time, key), and public-key SHA-256 → the
/// device first certified with it. It lives in memory (about 200 bytes per device) and is rebuilt at startup from the
/// journal (<see cref="Replay"/>), which is the truth.</para>
/// <para>Admit reserves the device ID(s) and the key under one lock, so two stations cannot enroll the same device or
/// the same key at once; Commit (after fsync) makes the reservation the device's new state; Dispose releases it.</para>
/// </remarks>
public sealed class DevicePolicy : IEnrollmentPolicy
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, DeviceRecord> _devices = new(StringComparer.Ordinal);
    private readonly Dictionary<UInt128, string> _keys = [];
    private readonly HashSet<string> _reservedDevices = new(StringComparer.Ordinal);
    private readonly HashSet<UInt128> _reservedKeys = [];
    private readonly Dictionary<string, string> _orderIds = new(StringComparer.Ordinal);
    private readonly DevicePolicyOptions _options;
    private readonly RefurbMode _refurbMode;
    private readonly IOrderReworkWindows? _windows;

    /// <summary>Creates an empty policy (call <see cref="Replay"/> to load the journal).</summary>
    /// <param name="options">Rework window and refurb mode (validated).</param>
    /// <param name="windows">Per-order rework windows; null to use the configured window for every order.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentException">The options are invalid (see <see cref="DevicePolicyOptions.Validate"/>).</exception>
    public DevicePolicy(DevicePolicyOptions options, IOrderReworkWindows? windows = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate("FactoryCa");
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", errors), nameof(options));
        }

        _options = options;
        _refurbMode = options.Refurb.ParsedMode;
        _windows = windows;
    }

    /// <summary>Creates the policy and replays the whole journal into it.</summary>
    /// <param name="journal">The factory journal.</param>
    /// <param name="options">Rework window and refurb mode.</param>
    /// <param name="windows">Per-order rework windows, or null.</param>
    /// <returns>The loaded policy.</returns>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    /// <exception cref="JournalUnavailableException">The journal cannot be read.</exception>
    public static DevicePolicy Rebuild(IJournalReader journal, DevicePolicyOptions options, IOrderReworkWindows? windows = null)
    {
        ArgumentNullException.ThrowIfNull(journal);
        var policy = new DevicePolicy(options, windows);
        policy.Replay(journal);
        return policy;
    }

    /// <summary>Devices known (enrolled at least once, including retired IDs).</summary>
    public int DeviceCount
    {
        get
        {
            lock (_lock)
            {
                return _devices.Count;
            }
        }
    }

    /// <summary>
    /// Applies every CertificateIssued entry of <paramref name="journal"/> up to its head, in order, as <see cref="IEnrollmentAdmission.Commit"/>
    /// would have. Call once on an empty policy, before enrollments start.
    /// </summary>
    /// <param name="journal">The journal.</param>
    /// <returns>The number of certificates applied.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="journal"/> is null.</exception>
    /// <exception cref="JournalUnavailableException">The journal cannot be read.</exception>
    public long Replay(IJournalReader journal)
    {
        ArgumentNullException.ThrowIfNull(journal);
        ulong head = journal.Head.Seq;
        long count = 0;
        // Active serial → device, to find the old device of a NewIdentity refurb (the entry names only the superseded serial).
        var activeBySerial = new Dictionary<string, string>(StringComparer.Ordinal);
        lock (_lock)
        {
            foreach (var e in journal.ReadFrom(1))
            {
                if (e.Seq > head)
                {
                    break;
                }

                if (e.Type != EntryType.CertificateIssued)
                {
                    continue;
                }

                var c = CertificateIssued.Parser.ParseFrom(e.Payload);
                var serial = SerialNumber.Normalize(DerCertificateParts.Parse(c.Certificate.Memory).SerialNumber.Span);
                byte[]? supersedes = c.SupersedesSerial.IsEmpty ? null : SerialNumber.Normalize(c.SupersedesSerial.Span);
                string? previous = null;
                if (c.Kind == IssuanceKind.Refurb && supersedes is not null && activeBySerial.TryGetValue(Convert.ToHexString(supersedes), out var owner)
                    && !string.Equals(owner, c.DeviceId, StringComparison.Ordinal))
                {
                    previous = owner;
                }

                UInt128 key = c.PublicKeySha256.Length >= 16 ? KeyOf(c.PublicKeySha256.Span) : KeyOf(SpkiSha256(c.Certificate.Memory));
                if (supersedes is not null)
                {
                    activeBySerial.Remove(Convert.ToHexString(supersedes));
                }

                if (_devices.TryGetValue(c.DeviceId, out var old) && old.ActiveSerial is { } replaced)
                {
                    activeBySerial.Remove(Convert.ToHexString(replaced));
                }

                activeBySerial[Convert.ToHexString(serial)] = c.DeviceId;
                ApplyLocked(c.DeviceId, serial, System.Security.Cryptography.SHA256.HashData(c.Certificate.Span), c.BatchId, c.Kind, key,
                    JournalCodec.FromUnixMicros(e.TimeUnixMicros), previous);
                count++;
            }
        }

        return count;
    }

    /// <summary>What the policy knows of a device, or null if it was never enrolled here.</summary>
    /// <param name="deviceId">The device ID.</param>
    /// <exception cref="ArgumentNullException"><paramref name="deviceId"/> is null.</exception>
    public DeviceStatus? Find(string deviceId)
    {
        ArgumentNullException.ThrowIfNull(deviceId);
        lock (_lock)
        {
            return _devices.TryGetValue(deviceId, out var r)
                ? new DeviceStatus(deviceId, r.State, r.ActiveSerial is null ? null : SerialNumber.ToHex(r.ActiveSerial), r.OrderId, r.IdentityIssuedAt, r.RetiredTo)
                : null;
        }
    }

    /// <inheritdoc />
    /// <exception cref="EnrollmentRejectedException">
    /// <see cref="EnrollmentError.DeviceAlreadyEnrolled"/>: an initial enrollment of a device with an active (or retired) identity, or one in progress;
    /// <see cref="EnrollmentError.ReworkNotAllowed"/>: a rework of an unknown device, another order, or outside the window; a refurb without an active certificate to supersede;
    /// <see cref="EnrollmentError.ReenrollMismatch"/>: a reenroll with a certificate that is not the device's active one;
    /// <see cref="EnrollmentError.DuplicatePublicKey"/>: the key is certified for another device ID (reported: journaled as EnrollmentRefused), or a refurb reuses the old key.
    /// </exception>
    public IEnrollmentAdmission Admit(EnrollmentContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var request = context.Request;
        string device = context.DeviceId;
        var key = KeyOf(context.PublicKeySha256);
        string order = request.OrderId ?? string.Empty;
        lock (_lock)
        {
            if (_reservedDevices.Contains(device))
            {
                throw Reject(EnrollmentError.DeviceAlreadyEnrolled, $"an enrollment of device {device} is in progress at another station; retry once it has finished");
            }

            if (_reservedKeys.Contains(key))
            {
                throw new EnrollmentRejectedException(EnrollmentError.DuplicatePublicKey,
                    $"public key sha256={Convert.ToHexStringLower(context.PublicKeySha256)} is being enrolled for another device at this moment; the same key for two device IDs is a cloned key",
                    report: true);
            }

            _devices.TryGetValue(device, out var record);
            string? keyOwner = _keys.TryGetValue(key, out var o) ? o : null;
            byte[]? supersedes = null;
            string? previous = null;
            switch (request.Kind)
            {
                case IssuanceKind.Rework:
                    var active = RequireActive(record, device, EnrollmentError.ReworkNotAllowed, "rework");
                    if (!string.Equals(order, record!.OrderId, StringComparison.Ordinal))
                    {
                        throw Reject(EnrollmentError.ReworkNotAllowed,
                            $"rework must name the order of the certificate it replaces: device {device} was issued under order '{record.OrderId}', the request names '{order}' (X-Order-Id)");
                    }

                    var window = order.Length > 0 && _windows is not null && _windows.TryGetReworkWindow(order, out var w) ? w : _options.Rework.Window;
                    string windowKey = window == _options.Rework.Window ? "FactoryCa:Rework:Window" : $"order {order}";
                    if (context.Now - record.IdentityIssuedAt > window)
                    {
                        throw Reject(EnrollmentError.ReworkNotAllowed, string.Create(CultureInfo.InvariantCulture,
                            $"the rework window of device {device} closed at {(record.IdentityIssuedAt + window).UtcDateTime:yyyy-MM-ddTHH:mm:ssZ} (first issued {record.IdentityIssuedAt.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}, window {window} from {windowKey}); a unit this old returns as a refurb"));
                    }

                    CheckForeignKey(keyOwner, device, context);
                    supersedes = active;
                    break;

                case IssuanceKind.Refurb when _refurbMode == RefurbMode.RotateKey:
                    if (request.PreviousDeviceId is { } named && !string.Equals(named, device, StringComparison.Ordinal))
                    {
                        throw Reject(EnrollmentError.ReworkNotAllowed,
                            $"FactoryCa:Refurb:Mode is RotateKey, which keeps the device ID: X-Previous-Device-Id names {named} but the CSR carries {device}");
                    }

                    supersedes = RequireActive(record, device, EnrollmentError.ReworkNotAllowed, "refurb (RotateKey)");
                    if (string.Equals(keyOwner, device, StringComparison.Ordinal))
                    {
                        throw Reject(EnrollmentError.DuplicatePublicKey,
                            $"refurb (FactoryCa:Refurb:Mode RotateKey) needs a new key pair: this public key is already certified for device {device}; generate a new key on the device");
                    }

                    CheckForeignKey(keyOwner, device, context);
                    break;

                case IssuanceKind.Refurb:
                    previous = request.PreviousDeviceId ?? throw Reject(EnrollmentError.ReworkNotAllowed,
                        "FactoryCa:Refurb:Mode is NewIdentity: name the returned unit's old device ID in the X-Previous-Device-Id header");
                    if (string.Equals(previous, device, StringComparison.Ordinal))
                    {
                        throw Reject(EnrollmentError.ReworkNotAllowed,
                            $"FactoryCa:Refurb:Mode is NewIdentity: the CSR must carry the unit's new device ID, not its old one ({device})");
                    }

                    if (record is not null)
                    {
                        throw Reject(EnrollmentError.DeviceAlreadyEnrolled, $"the new device ID {device} is already in use on this factory; give the refurbished unit an unused ID");
                    }

                    if (_reservedDevices.Contains(previous))
                    {
                        throw Reject(EnrollmentError.DeviceAlreadyEnrolled, $"an enrollment superseding device {previous} is in progress at another station");
                    }

                    _devices.TryGetValue(previous, out var previousRecord);
                    supersedes = RequireActive(previousRecord, previous, EnrollmentError.ReworkNotAllowed, "refurb (NewIdentity) of the previous device");
                    if (string.Equals(keyOwner, previous, StringComparison.Ordinal))
                    {
                        throw Reject(EnrollmentError.DuplicatePublicKey,
                            $"a new identity needs a new key pair: this public key is certified for the previous device {previous}; generate a new key on the device");
                    }

                    CheckForeignKey(keyOwner, device, context);
                    break;

                case IssuanceKind.Reenroll:
                    var current = request.CurrentCertificate ?? throw Reject(EnrollmentError.ReenrollMismatch,
                        "simplereenroll needs the device's current certificate (RFC 7030 §4.2.2)");
                    var activeSerial = RequireActive(record, device, EnrollmentError.ReenrollMismatch, "simplereenroll");
                    var presented = SerialNumber.Normalize(current.SerialNumberBytes.Span);
                    if (!presented.AsSpan().SequenceEqual(activeSerial))
                    {
                        throw Reject(EnrollmentError.ReenrollMismatch,
                            $"certificate serial {SerialNumber.ToHex(presented)} is not the active IDevID of device {device} (active serial {SerialNumber.ToHex(activeSerial)}); only the active certificate can be renewed");
                    }

                    // Issue 16 finding 10: the serial alone is not the credential. A certificate minted with the CA key that
                    // copies the serial (another key, same device ID) is refused: the presented DER must be the journaled one.
                    var presentedSha256 = System.Security.Cryptography.SHA256.HashData(current.RawData);
                    if (record!.ActiveCertificateSha256 is not { } journaled
                        || !System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(presentedSha256, journaled))
                    {
                        throw Reject(EnrollmentError.ReenrollMismatch,
                            $"certificate serial {SerialNumber.ToHex(presented)} (sha256 {Convert.ToHexStringLower(presentedSha256)}) is not the journaled active IDevID of device {device}: the serial matches but the certificate differs from the journaled one (sha256 {(record.ActiveCertificateSha256 is { } j ? Convert.ToHexStringLower(j) : "unknown")}); only the journaled certificate can be renewed");
                    }

                    CheckForeignKey(keyOwner, device, context);
                    supersedes = activeSerial;
                    break;

                default:
                    if (record is not null)
                    {
                        throw Reject(EnrollmentError.DeviceAlreadyEnrolled, record.ActiveSerial is { } serial
                            ? string.Create(CultureInfo.InvariantCulture,
                                $"device {device} already holds an active IDevID (serial {SerialNumber.ToHex(serial)}, order '{record.OrderId}', issued {record.IdentityIssuedAt.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}); re-issue with X-Issuance-Kind: rework (same order, within the window) or refurb")
                            : $"device ID {device} was retired when its unit was refurbished as {record.RetiredTo}; device IDs are not reused");
                    }

                    CheckForeignKey(keyOwner, device, context);
                    break;
            }

            _reservedDevices.Add(device);
            if (previous is not null)
            {
                _reservedDevices.Add(previous);
            }

            _reservedKeys.Add(key);
            return new Admission(this, device, previous, key, request.Kind, supersedes, context.Now);
        }
    }

    private static byte[] RequireActive(DeviceRecord? record, string device, EnrollmentError code, string what)
    {
        if (record?.ActiveSerial is { } serial)
        {
            return serial;
        }

        throw Reject(code, record is null
            ? $"{what}: device {device} has never been enrolled on this factory, so there is no certificate to supersede; enroll it as initial"
            : $"{what}: device {device} has no active IDevID (retired when refurbished as {record.RetiredTo})");
    }

    private static void CheckForeignKey(string? keyOwner, string device, EnrollmentContext context)
    {
        if (keyOwner is not null && !string.Equals(keyOwner, device, StringComparison.Ordinal))
        {
            throw new EnrollmentRejectedException(EnrollmentError.DuplicatePublicKey,
                $"public key sha256={Convert.ToHexStringLower(context.PublicKeySha256)} is already certified for device {keyOwner}; the same key for device {device} is a cloned key (reported to the OEM)",
                report: true);
        }
    }

    private static EnrollmentRejectedException Reject(EnrollmentError code, string message) => new(code, message);

    private static UInt128 KeyOf(ReadOnlySpan<byte> sha256) => BinaryPrimitives.ReadUInt128BigEndian(sha256);

    private static byte[] SpkiSha256(ReadOnlyMemory<byte> certificate)
    {
        using var cert = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(certificate.Span);
        return System.Security.Cryptography.SHA256.HashData(cert.PublicKey.ExportSubjectPublicKeyInfo());
    }

    private void ApplyLocked(string device, byte[] serial, byte[] certificateSha256, string order, IssuanceKind kind, UInt128 key, DateTimeOffset at, string? previous)
    {
        order = Intern(order);
        _devices.TryGetValue(device, out var record);
        switch (kind)
        {
            case IssuanceKind.Rework when record is not null:
                record.ActiveSerial = serial;
                record.ActiveCertificateSha256 = certificateSha256;
                record.State = DeviceLifecycle.Reworked;
                break;
            case IssuanceKind.Reenroll when record is not null:
                record.ActiveSerial = serial;
                record.ActiveCertificateSha256 = certificateSha256;
                record.State = DeviceLifecycle.Reenrolled;
                break;
            case IssuanceKind.Refurb:
                if (previous is not null && _devices.TryGetValue(previous, out var old))
                {
                    old.ActiveSerial = null;
                    old.ActiveCertificateSha256 = null;
                    old.State = DeviceLifecycle.Retired;
                    old.RetiredTo = device;
                }

                record ??= new DeviceRecord();
                record.ActiveSerial = serial;
                record.ActiveCertificateSha256 = certificateSha256;
                record.OrderId = order;
                record.IdentityIssuedAt = at;
                record.State = DeviceLifecycle.Refurbished;
                _devices[device] = record;
                break;
            default:
                _devices[device] = new DeviceRecord { ActiveSerial = serial, ActiveCertificateSha256 = certificateSha256, OrderId = order, IdentityIssuedAt = at, State = DeviceLifecycle.Initial };
                break;
        }

        _keys.TryAdd(key, device);
    }

    private string Intern(string order)
    {
        if (order.Length == 0)
        {
            return string.Empty;
        }

        if (!_orderIds.TryGetValue(order, out var interned))
        {
            _orderIds[order] = interned = order;
        }

        return interned;
    }

    private sealed class DeviceRecord
    {
        public byte[]? ActiveSerial { get; set; }

        /// <summary>SHA-256 of the journaled DER of the active certificate: a renewal credential must be this certificate.</summary>
        public byte[]? ActiveCertificateSha256 { get; set; }

        public string OrderId { get; set; } = string.Empty;

        public DateTimeOffset IdentityIssuedAt { get; set; }

        public DeviceLifecycle State { get; set; }

        public string? RetiredTo { get; set; }
    }

    /// <summary>A reservation of the device ID(s) and the key until the certificate is journaled or the enrollment fails.</summary>
    private sealed class Admission(DevicePolicy owner, string device, string? previous, UInt128 key, IssuanceKind kind, byte[]? supersedes, DateTimeOffset at)
        : IEnrollmentAdmission
    {
        private bool _done;

        public void Annotate(CertificateIssued payload)
        {
            ArgumentNullException.ThrowIfNull(payload);
            payload.Kind = kind;
            if (supersedes is not null)
            {
                payload.SupersedesSerial = ByteString.CopyFrom(supersedes);
            }
        }

        public void Commit(CertificateIssued payload, ulong seq)
        {
            ArgumentNullException.ThrowIfNull(payload);
            var serial = SerialNumber.Normalize(DerCertificateParts.Parse(payload.Certificate.Memory).SerialNumber.Span);
            lock (owner._lock)
            {
                if (_done)
                {
                    return;
                }

                owner.ApplyLocked(device, serial, System.Security.Cryptography.SHA256.HashData(payload.Certificate.Span), payload.BatchId, kind, key, at, previous);
                Release();
            }
        }

        public void Dispose()
        {
            lock (owner._lock)
            {
                if (!_done)
                {
                    Release();
                }
            }
        }

        private void Release()
        {
            _done = true;
            owner._reservedDevices.Remove(device);
            if (previous is not null)
            {
                owner._reservedDevices.Remove(previous);
            }

            owner._reservedKeys.Remove(key);
        }
    }
}
