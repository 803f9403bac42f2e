using OfflinePki.Asn1;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Registry;

namespace OfflinePki.Sync;

/// <summary>
/// What a journal entry means for devices on the mirror (issue 6): a CertificateIssued entry sets the device's state and,
/// with supersedes_serial, revokes the superseded certificate (reason superseded); an EnrollmentRefused entry with code
/// DuplicatePublicKey is a cloned-key report. Applied by <see cref="SyncApplier"/> in the push's transaction.
/// </summary>
internal static class DeviceEvents
{
    /// <summary>The EnrollmentRefused codes recorded as device reports.</summary>
    private static readonly HashSet<string> ReportedCodes = new(StringComparer.Ordinal) { "DuplicatePublicKey" };

    public static DeviceIssuance Issuance(string factoryId, JournalEntry entry, CertificateIssued c, IssuedCertificateRecord record) => new(
        factoryId,
        record.IssuerKeyHash,
        record.Serial,
        c.DeviceId,
        c.Kind switch
        {
            IssuanceKind.Rework => DeviceRegistryState.Reworked,
            IssuanceKind.Refurb => DeviceRegistryState.Refurbished,
            IssuanceKind.Reenroll => DeviceRegistryState.Reenrolled,
            _ => DeviceRegistryState.Initial,
        },
        c.SupersedesSerial.IsEmpty ? null : SerialNumber.Normalize(c.SupersedesSerial.Span),
        JournalCodec.FromUnixMicros(entry.TimeUnixMicros),
        record.JournalId,
        entry.Seq);

    public static DeviceReport? Report(string factoryId, string journalIdHex, JournalEntry entry, EnrollmentRefused r) => ReportedCodes.Contains(r.Code)
        ? new DeviceReport(JournalCodec.FromUnixMicros(entry.TimeUnixMicros), factoryId, journalIdHex, entry.Seq, r.Code, r.StationId, r.DeviceId,
            Convert.ToHexStringLower(r.PublicKeySha256.Span), r.BatchId, r.Reason)
        : null;

    /// <summary>Applies an event when the sink's transaction records devices (sinks that do not simply skip it).</summary>
    public static void Apply(IJournalApplyTransaction tx, object device)
    {
        if (tx is not IDeviceApplyTransaction devices)
        {
            return;
        }

        switch (device)
        {
            case DeviceIssuance issuance:
                devices.ApplyDeviceIssuance(issuance);
                break;
            case DeviceReport report:
                devices.AddDeviceReport(report);
                break;
        }
    }
}
