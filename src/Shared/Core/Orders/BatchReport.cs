using System.Globalization;
using System.Text;
using System.Text.Json;

namespace OfflinePki.Orders;

/// <summary>One certificate in a batch report (issue 6 §7).</summary>
/// <param name="DeviceId">The device serial.</param>
/// <param name="SerialHex">Upper-case hex certificate serial.</param>
/// <param name="Sha256Fingerprint">Lower-case hex SHA-256 of the certificate DER.</param>
/// <param name="MacAddress">The MAC address the station gave, or null.</param>
/// <param name="StationId">The station that requested it.</param>
/// <param name="OperatorId">The operator, or null.</param>
/// <param name="IssuedAt">When it was issued (journal entry time), UTC.</param>
/// <param name="Kind">"initial", "rework", "refurb" or "reenroll".</param>
public sealed record BatchReportRow(string DeviceId, string SerialHex, string Sha256Fingerprint, string? MacAddress, string StationId, string? OperatorId,
    DateTimeOffset IssuedAt, string Kind);

/// <summary>
/// Writes a batch report as CSV (RFC 4180) or JSON. Shared by the mirror's <c>report order</c> verb and the factory's
/// offline batch-signing command. Streams rows; memory does not grow with the batch.
/// </summary>
public static class BatchReport
{
    /// <summary>The CSV header line (without the line break).</summary>
    public const string CsvHeader = "device_id,serial,sha256,mac,station,operator,time,kind";

    /// <summary>
    /// Writes RFC 4180 CSV in UTF-8 without a BOM: the <see cref="CsvHeader"/> line, then one line per row, every line ended
    /// by CRLF. A field containing a comma, a double quote, CR or LF is enclosed in double quotes with inner quotes doubled.
    /// Times are RFC 3339 UTC ("2026-11-22T07:05:00Z").
    /// </summary>
    /// <param name="output">Where to write; left open.</param>
    /// <param name="rows">The rows, in the order wanted.</param>
    /// <returns>The number of rows written.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="IOException">Writing fails.</exception>
    public static long WriteCsv(Stream output, IEnumerable<BatchReportRow> rows)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(rows);
        using var w = new StreamWriter(output, new UTF8Encoding(false), 1 << 16, leaveOpen: true) { NewLine = "\r\n" };
        w.WriteLine(CsvHeader);
        long n = 0;
        foreach (var r in rows)
        {
            w.Write(Field(r.DeviceId));
            w.Write(',');
            w.Write(Field(r.SerialHex));
            w.Write(',');
            w.Write(Field(r.Sha256Fingerprint));
            w.Write(',');
            w.Write(Field(r.MacAddress ?? string.Empty));
            w.Write(',');
            w.Write(Field(r.StationId));
            w.Write(',');
            w.Write(Field(r.OperatorId ?? string.Empty));
            w.Write(',');
            w.Write(Time(r.IssuedAt));
            w.Write(',');
            w.WriteLine(Field(r.Kind));
            n++;
        }

        w.Flush();
        return n;
    }

    /// <summary>
    /// Writes one UTF-8 JSON object: <c>{"orderId": ..., "certificates": [{"deviceId", "serial", "sha256", "mac", "station",
    /// "operator", "time", "kind"}, ...], "count": n}</c>. Absent MAC or operator are JSON null; times are RFC 3339 UTC.
    /// </summary>
    /// <param name="output">Where to write; left open.</param>
    /// <param name="orderId">The order the report is for; null writes JSON null (e.g. certificates outside every order).</param>
    /// <param name="rows">The rows.</param>
    /// <returns>The number of rows written.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="output"/> or <paramref name="rows"/> is null.</exception>
    /// <exception cref="IOException">Writing fails.</exception>
    public static long WriteJson(Stream output, string? orderId, IEnumerable<BatchReportRow> rows)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(rows);
        using var w = new Utf8JsonWriter(output, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        if (orderId is null)
        {
            w.WriteNull("orderId");
        }
        else
        {
            w.WriteString("orderId", orderId);
        }

        w.WriteStartArray("certificates");
        long n = 0;
        foreach (var r in rows)
        {
            w.WriteStartObject();
            w.WriteString("deviceId", r.DeviceId);
            w.WriteString("serial", r.SerialHex);
            w.WriteString("sha256", r.Sha256Fingerprint);
            NullableString(w, "mac", r.MacAddress);
            w.WriteString("station", r.StationId);
            NullableString(w, "operator", r.OperatorId);
            w.WriteString("time", Time(r.IssuedAt));
            w.WriteString("kind", r.Kind);
            w.WriteEndObject();
            if (++n % 1024 == 0)
            {
                w.Flush();
            }
        }

        w.WriteEndArray();
        w.WriteNumber("count", n);
        w.WriteEndObject();
        w.Flush();
        return n;
    }

    /// <summary>An RFC 4180 field: quoted when it contains a comma, a double quote, CR or LF.</summary>
    /// <param name="value">The raw value.</param>
    /// <returns>The value as it appears in the CSV.</returns>
    public static string Field(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.AsSpan().IndexOfAny(",\"\r\n") < 0)
        {
            return value;
        }

        return "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }

    private static void NullableString(Utf8JsonWriter w, string name, string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            w.WriteNull(name);
        }
        else
        {
            w.WriteString(name, value);
        }
    }

    private static string Time(DateTimeOffset t) => t.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
