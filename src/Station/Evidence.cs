using System.Text;
using System.Text.Json;

namespace OfflinePki.Station;

/// <summary>
/// One evidence line per device run (JSON lines, appended and fsynced). Holds who, what, when and the outcome;
/// never a key, PIN, passphrase, CSR or challenge.
/// </summary>
public sealed record EvidenceRecord
{
    /// <summary>UTC time of the outcome (RFC 3339).</summary>
    public required DateTimeOffset Time { get; init; }

    /// <summary>"pass" or "fail".</summary>
    public required string Result { get; init; }

    /// <summary>The failed step, or "done".</summary>
    public required string Step { get; init; }

    /// <summary>Why it failed; null on pass.</summary>
    public string? Reason { get; init; }

    /// <summary>The scanned label.</summary>
    public required string Label { get; init; }

    /// <summary>Device ID the device reported.</summary>
    public string? DeviceId { get; init; }

    /// <summary>MAC the device reported.</summary>
    public string? Mac { get; init; }

    /// <summary>Firmware the device reported.</summary>
    public string? Firmware { get; init; }

    /// <summary>Certificate serial (hex), when one was issued.</summary>
    public string? Serial { get; init; }

    /// <summary>"sha256:" + hex of the certificate DER, when one was issued.</summary>
    public string? Fingerprint { get; init; }

    /// <summary>"sha256:" + hex of the device SubjectPublicKeyInfo.</summary>
    public string? PublicKeySha256 { get; init; }

    /// <summary>Station ID.</summary>
    public required string Station { get; init; }

    /// <summary>Operator ID, if given.</summary>
    public string? Operator { get; init; }

    /// <summary>Order ID, if given.</summary>
    public string? Order { get; init; }

    /// <summary>Issuance kind asked for (initial, rework, refurb), if given.</summary>
    public string? Kind { get; init; }

    /// <summary>EST server URL (and label).</summary>
    public string? Est { get; init; }

    /// <summary>Builds the record of <paramref name="outcome"/>.</summary>
    public static EvidenceRecord From(StationOutcome outcome, StationRunOptions options, string station, DateTimeOffset time)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        ArgumentNullException.ThrowIfNull(options);
        return new EvidenceRecord
        {
            Time = time.ToUniversalTime(),
            Result = outcome.Passed ? "pass" : "fail",
            Step = outcome.Step,
            Reason = outcome.Reason,
            Label = outcome.Label,
            DeviceId = outcome.DeviceId,
            Mac = outcome.Mac,
            Firmware = outcome.Firmware,
            Serial = outcome.Serial,
            Fingerprint = outcome.Fingerprint,
            PublicKeySha256 = outcome.PublicKeySha256,
            Station = station,
            Operator = options.Operator,
            Order = options.Order,
            Kind = options.Kind,
            Est = options.EstLabel is null ? options.Est.AbsoluteUri : $"{options.Est.AbsoluteUri} label {options.EstLabel}",
        };
    }
}

/// <summary>Appends <see cref="EvidenceRecord"/>s to a JSON-lines file, one write and one fsync per line (O_APPEND, so several stations may share a file).</summary>
public static class EvidenceLog
{
    /// <summary>Appends one line and flushes it to disk.</summary>
    /// <param name="path">The evidence file (created if missing).</param>
    /// <param name="record">The record.</param>
    /// <exception cref="IOException">The file cannot be written.</exception>
    /// <exception cref="UnauthorizedAccessException">The file cannot be opened for writing.</exception>
    public static void Append(string path, EvidenceRecord record)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(record);
        byte[] line = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(record, DeviceProtocol.JsonOptions) + "\n");
        using var file = new FileStream(path, new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.ReadWrite, BufferSize = 0 });
        file.Write(line);
        file.Flush(flushToDisk: true);
    }
}
