using System.Text;
using System.Text.RegularExpressions;

namespace OfflinePki.Station;

/// <summary>Text from the device is untrusted: it is cleaned before it reaches a terminal, a log or the evidence.</summary>
internal static partial class DeviceText
{
    /// <summary>Most characters of device text shown.</summary>
    public const int MaxLength = 200;

    /// <summary>Control characters (escape sequences, newlines) become '?'; longer text is cut with "...".</summary>
    public static string Clean(string text)
    {
        var b = new StringBuilder(Math.Min(text.Length, MaxLength + 3));
        foreach (char c in text.Length > MaxLength ? text[..MaxLength] : text)
        {
            b.Append(char.IsControl(c) ? '?' : c);
        }

        if (text.Length > MaxLength)
        {
            b.Append("...");
        }

        return b.ToString();
    }

    /// <summary>True for a MAC address "aa:bb:cc:dd:ee:ff" (or with '-').</summary>
    public static bool IsMac(string text) => Mac().IsMatch(text);

    [GeneratedRegex("^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$")]
    private static partial Regex Mac();
}
