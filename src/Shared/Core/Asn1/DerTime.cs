using System.Formats.Asn1;

namespace OfflinePki.Asn1;

/// <summary>
/// The one place that encodes X.509 times (RFC 5280 §4.1.2.5): UTCTime for years 1950-2049,
/// GeneralizedTime (no fractional seconds) from 2050 on.
/// </summary>
public static class DerTime
{
    /// <summary>
    /// RFC 5280 §4.1.2.5 "no well-defined expiration date": GeneralizedTime 99991231235959Z.
    /// </summary>
    public static readonly DateTimeOffset NoWellDefinedExpiration = new(9999, 12, 31, 23, 59, 59, TimeSpan.Zero);

    /// <summary>Writes <paramref name="time"/> as an RFC 5280 Time, truncated to whole seconds, in UTC.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The year is before 1950.</exception>
    public static void WriteTime(AsnWriter writer, DateTimeOffset time)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var utc = Truncate(time);
        if (utc.Year < 1950)
        {
            throw new ArgumentOutOfRangeException(nameof(time), time, "RFC 5280 times start in 1950.");
        }

        if (utc.Year < 2050)
        {
            writer.WriteUtcTime(utc);
        }
        else
        {
            writer.WriteGeneralizedTime(utc, omitFractionalSeconds: true);
        }
    }

    /// <summary>Writes a GeneralizedTime without fractional seconds (RFC 6960 producedAt/thisUpdate, RFC 5280 §5.3.2).</summary>
    public static void WriteGeneralizedTime(AsnWriter writer, DateTimeOffset time)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteGeneralizedTime(Truncate(time), omitFractionalSeconds: true);
    }

    /// <summary>Reads an RFC 5280 Time (UTCTime or GeneralizedTime).</summary>
    /// <exception cref="AsnContentException">The next value is neither time type.</exception>
    public static DateTimeOffset ReadTime(AsnReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var tag = reader.PeekTag();
        if (tag.HasSameClassAndValue(Asn1Tag.UtcTime))
        {
            return reader.ReadUtcTime();
        }

        if (tag.HasSameClassAndValue(Asn1Tag.GeneralizedTime))
        {
            return reader.ReadGeneralizedTime();
        }

        throw new AsnContentException($"expected UTCTime or GeneralizedTime, found tag {tag}");
    }

    /// <summary>UTC, truncated to whole seconds: what DER can carry and what signatures will cover.</summary>
    public static DateTimeOffset Truncate(DateTimeOffset time)
    {
        var utc = time.ToUniversalTime();
        return new DateTimeOffset(utc.Ticks - (utc.Ticks % TimeSpan.TicksPerSecond), TimeSpan.Zero);
    }
}
