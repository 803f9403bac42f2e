using System.Globalization;
using Microsoft.Data.Sqlite;
using OfflinePki.Asn1;
using OfflinePki.Revocation;

namespace OfflinePki.Registry;

/// <summary>Why a device holds its current certificate, as the mirror records it (issue 6, "refurb state").</summary>
public enum DeviceRegistryState
{
    /// <summary>Its first certificate.</summary>
    Initial,
    /// <summary>Re-issued by rework (same order, within the window); the previous certificate is revoked as superseded.</summary>
    Reworked,
    /// <summary>A returned unit: re-keyed, or this is its new identity.</summary>
    Refurbished,
    /// <summary>Renewed by EST simplereenroll.</summary>
    Reenrolled,
    /// <summary>Its identity was replaced by a new device ID (refurb NewIdentity); it has no current certificate.</summary>
    Retired,
}

/// <summary>One issued certificate's effect on its device, from a CertificateIssued journal entry.</summary>
/// <param name="FactoryId">The factory whose journal it came from.</param>
/// <param name="IssuerKeyHash">RFC 6960 issuerKeyHash (SHA-1) of the issuing CA.</param>
/// <param name="Serial">Normalised serial of the new certificate.</param>
/// <param name="DeviceId">Its device ID.</param>
/// <param name="State">Why it was issued (never <see cref="DeviceRegistryState.Retired"/>).</param>
/// <param name="SupersedesSerial">Normalised serial of the certificate it replaces, or null.</param>
/// <param name="At">The journal entry's time (UTC): when the old certificate was superseded.</param>
/// <param name="JournalId">16-byte journal id.</param>
/// <param name="Seq">Journal seq of the entry.</param>
public sealed record DeviceIssuance(string FactoryId, byte[] IssuerKeyHash, byte[] Serial, string DeviceId, DeviceRegistryState State, byte[]? SupersedesSerial,
    DateTimeOffset At, byte[] JournalId, ulong Seq);

/// <summary>A refused enrollment the factory reported (EnrollmentRefused with a code), e.g. a cloned key.</summary>
/// <param name="At">The journal entry's time (UTC).</param>
/// <param name="FactoryId">The factory.</param>
/// <param name="JournalIdHex">Journal id, lower-case hex.</param>
/// <param name="Seq">Journal seq of the refusal.</param>
/// <param name="Code">The EnrollmentError name, e.g. "DuplicatePublicKey".</param>
/// <param name="StationId">The station that sent the request.</param>
/// <param name="DeviceId">The device ID the request claimed.</param>
/// <param name="PublicKeySha256Hex">Lower-case hex SHA-256 of the SubjectPublicKeyInfo (empty when unknown).</param>
/// <param name="OrderId">The order the request named, or empty.</param>
/// <param name="Reason">The factory's message (names the device the key is already certified for).</param>
public sealed record DeviceReport(DateTimeOffset At, string FactoryId, string JournalIdHex, ulong Seq, string Code, string StationId, string DeviceId,
    string PublicKeySha256Hex, string OrderId, string Reason)
{
    /// <summary>The one-line operator summary, e.g. "cloned key: device D2 at station station-01 (factory F1, seq 42)".</summary>
    public string Summary => string.Equals(Code, "DuplicatePublicKey", StringComparison.Ordinal)
        ? string.Create(CultureInfo.InvariantCulture, $"cloned key: device {DeviceId} at station {StationId} presented key sha256={PublicKeySha256Hex} (factory {FactoryId}, seq {Seq})")
        : string.Create(CultureInfo.InvariantCulture, $"{Code}: device {DeviceId} at station {StationId} (factory {FactoryId}, seq {Seq})");
}

/// <summary>A device as the registry records it.</summary>
/// <param name="FactoryId">The factory.</param>
/// <param name="DeviceId">The device ID.</param>
/// <param name="State">Its state.</param>
/// <param name="CurrentSerialHex">Upper-case hex serial of its current certificate; null when retired.</param>
/// <param name="LinkedDeviceId">Refurbished as a new identity: the old device ID; retired: the new one; else null.</param>
/// <param name="Seq">Journal seq of the entry that set this state.</param>
public sealed record DeviceRecord(string FactoryId, string DeviceId, DeviceRegistryState State, string? CurrentSerialHex, string? LinkedDeviceId, ulong Seq);

/// <summary>
/// The device slice of a sync apply: applied in the same transaction as the entries, so a superseded certificate is
/// revoked exactly when its successor is recorded, and a replay changes nothing.
/// </summary>
public interface IDeviceApplyTransaction
{
    /// <summary>
    /// Records the device's state and, when the issuance supersedes a certificate, revokes that certificate with reason
    /// superseded (RFC 5280 §5.3.1, reason 4) at <see cref="DeviceIssuance.At"/>, with an audit record by "sync:&lt;factory&gt;".
    /// An old certificate already revoked keeps its first revocation.
    /// </summary>
    /// <param name="issuance">The issuance; its certificate must already be added in this transaction.</param>
    void ApplyDeviceIssuance(DeviceIssuance issuance);

    /// <summary>Records a reported refusal (e.g. a cloned key) for the <c>status</c> verb.</summary>
    /// <param name="report">The report.</param>
    void AddDeviceReport(DeviceReport report);
}

/// <summary>The device table, superseded-certificate revocation and cloned-key reports of the registry.</summary>
public sealed partial class MirrorRegistry
{
    /// <summary>The device's record on the registry, or null when no certificate of <paramref name="factoryId"/> names it.</summary>
    /// <param name="factoryId">The factory.</param>
    /// <param name="deviceId">The device ID.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public DeviceRecord? GetDevice(string factoryId, string deviceId)
    {
        ArgumentNullException.ThrowIfNull(factoryId);
        ArgumentNullException.ThrowIfNull(deviceId);
        using var c = Open();
        using var cmd = Cmd(c, "SELECT state, current_serial, linked_device_id, seq FROM devices WHERE factory_id = $f AND device_id = $d", ("$f", factoryId), ("$d", deviceId));
        using var r = cmd.ExecuteReader();
        return r.Read()
            ? new DeviceRecord(factoryId, deviceId, (DeviceRegistryState)r.GetInt64(0), r.IsDBNull(1) ? null : SerialNumber.ToHex((byte[])r[1]),
                r.IsDBNull(2) ? null : r.GetString(2), (ulong)r.GetInt64(3))
            : null;
    }

    /// <summary>Devices per state, over every factory (for <c>status</c>).</summary>
    public IReadOnlyDictionary<DeviceRegistryState, long> CountDevicesByState()
    {
        using var c = Open();
        using var cmd = Cmd(c, "SELECT state, COUNT(*) FROM devices GROUP BY state");
        using var r = cmd.ExecuteReader();
        var counts = new Dictionary<DeviceRegistryState, long>();
        while (r.Read())
        {
            counts[(DeviceRegistryState)r.GetInt64(0)] = r.GetInt64(1);
        }

        return counts;
    }

    /// <summary>The most recent reported refusals (cloned keys), newest first.</summary>
    /// <param name="max">At most this many (≥ 1).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="max"/> is below 1.</exception>
    public IReadOnlyList<DeviceReport> RecentDeviceReports(int max = 20)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        using var c = Open();
        using var cmd = Cmd(c, """
            SELECT at, factory_id, journal_id, seq, code, station_id, device_id, public_key_sha256, order_id, reason
            FROM device_reports ORDER BY id DESC LIMIT $n
            """, ("$n", max));
        using var r = cmd.ExecuteReader();
        var list = new List<DeviceReport>();
        while (r.Read())
        {
            list.Add(new DeviceReport(DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(0)), r.GetString(1), Convert.ToHexStringLower((byte[])r[2]), (ulong)r.GetInt64(3),
                r.GetString(4), r.GetString(5), r.GetString(6), r.GetString(7), r.GetString(8), r.GetString(9)));
        }

        return list;
    }

    /// <summary>The number of reported refusals recorded.</summary>
    public long CountDeviceReports()
    {
        using var c = Open();
        using var cmd = Cmd(c, "SELECT COUNT(*) FROM device_reports");
        return (long)cmd.ExecuteScalar()!;
    }

    private sealed partial class ApplyTransaction : IDeviceApplyTransaction
    {
        public void ApplyDeviceIssuance(DeviceIssuance issuance)
        {
            ArgumentNullException.ThrowIfNull(issuance);
            EnsureOpen();
            string? linked = null;
            if (issuance.SupersedesSerial is { } old)
            {
                string? oldDevice = null;
                using (var find = Cmd(_c, "SELECT device_id FROM certificates WHERE issuer_key_hash = $i AND serial = $s", ("$i", issuance.IssuerKeyHash), ("$s", old)))
                {
                    find.Transaction = _tx;
                    oldDevice = find.ExecuteScalar() as string;
                }

                var at = DerTime.Truncate(issuance.At);
                string actor = "sync:" + issuance.FactoryId;
                string detail = string.Create(CultureInfo.InvariantCulture,
                    $"factory={issuance.FactoryId} issuerKeyHash={Convert.ToHexString(issuance.IssuerKeyHash)} serial={SerialNumber.ToHex(old)} device={oldDevice ?? "?"} superseded_by={SerialNumber.ToHex(issuance.Serial)} device={issuance.DeviceId} kind={issuance.State.ToString().ToLowerInvariant()} journal_seq={issuance.Seq} reason=superseded");
                if (oldDevice is null)
                {
                    AppendAudit(_c, _tx, at, actor, "supersede-unknown", detail + " (the superseded serial is not in the registry; nothing revoked)");
                }
                else
                {
                    using var insert = PrepareRevocationInsert(_c, _tx, CrlReason.Superseded, at, null, actor);
                    if (InsertRevocation(insert, issuance.IssuerKeyHash, old))
                    {
                        AppendAudit(_c, _tx, at, actor, "supersede", detail);
                        BumpRevocationCounters(_c, _tx, [issuance.IssuerKeyHash]);
                    }

                    if (!string.Equals(oldDevice, issuance.DeviceId, StringComparison.Ordinal))
                    {
                        // Refurb with a new identity: the old device ID is retired, linked to the new one.
                        linked = oldDevice;
                        Run("""
                            INSERT INTO devices(factory_id, device_id, state, current_serial, linked_device_id, journal_id, seq) VALUES ($f, $d, $st, NULL, $l, $j, $q)
                            ON CONFLICT(factory_id, device_id) DO UPDATE SET state = excluded.state, current_serial = NULL, linked_device_id = excluded.linked_device_id,
                              journal_id = excluded.journal_id, seq = excluded.seq
                            """, ("$f", issuance.FactoryId), ("$d", oldDevice), ("$st", (long)DeviceRegistryState.Retired), ("$l", issuance.DeviceId),
                            ("$j", issuance.JournalId), ("$q", checked((long)issuance.Seq)));
                    }
                }
            }

            Run("""
                INSERT INTO devices(factory_id, device_id, state, current_serial, linked_device_id, journal_id, seq) VALUES ($f, $d, $st, $s, $l, $j, $q)
                ON CONFLICT(factory_id, device_id) DO UPDATE SET state = excluded.state, current_serial = excluded.current_serial,
                  linked_device_id = COALESCE(excluded.linked_device_id, devices.linked_device_id), journal_id = excluded.journal_id, seq = excluded.seq
                """, ("$f", issuance.FactoryId), ("$d", issuance.DeviceId), ("$st", (long)issuance.State), ("$s", issuance.Serial),
                ("$l", (object?)linked ?? DBNull.Value), ("$j", issuance.JournalId), ("$q", checked((long)issuance.Seq)));
        }

        public void AddDeviceReport(DeviceReport report)
        {
            ArgumentNullException.ThrowIfNull(report);
            EnsureOpen();
            Run("""
                INSERT INTO device_reports(at, factory_id, journal_id, seq, code, station_id, device_id, public_key_sha256, order_id, reason)
                VALUES ($t, $f, $j, $q, $c, $st, $d, $k, $o, $r) ON CONFLICT(journal_id, seq) DO NOTHING
                """, ("$t", report.At.ToUnixTimeSeconds()), ("$f", report.FactoryId), ("$j", Convert.FromHexString(report.JournalIdHex)), ("$q", checked((long)report.Seq)),
                ("$c", report.Code), ("$st", report.StationId), ("$d", report.DeviceId), ("$k", report.PublicKeySha256Hex), ("$o", report.OrderId), ("$r", report.Reason));
        }
    }
}
