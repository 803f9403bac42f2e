using System.Diagnostics.CodeAnalysis;
using OfflinePki.Enrollment;
using OfflinePki.Factory;

namespace OfflinePki.Policy;

/// <summary>The check-digit scheme a profile's device IDs carry in their last character.</summary>
public enum DeviceIdCheckDigit
{
    /// <summary>No check digit (only the profile's pattern applies).</summary>
    None,

    /// <summary>Luhn (ISO/IEC 7812-1 Annex B, "mod 10"): the device ID is all digits, the last one the check digit.</summary>
    Luhn,

    /// <summary>
    /// ISO/IEC 7064 MOD 37,36 (hybrid system, alphanumeric): the device ID is 0-9 and A-Z (upper case), the last
    /// character the check character. Detects every single substitution error.
    /// </summary>
    Iso7064Mod37_36,
}

/// <summary>
/// Device-ID check digits (issue 6, "Device IDs"): computing and validating ISO/IEC 7064 MOD 37,36 and Luhn check
/// characters, and the configuration names <c>none</c>, <c>luhn</c> and <c>iso7064-mod37-36</c>
/// (FactoryCa:Profile:DeviceIdCheckDigit).
/// </summary>
public static class DeviceIdFormat
{
    /// <summary>The ISO/IEC 7064 MOD 37,36 alphabet: character i has value i.</summary>
    public const string Alphabet36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

    /// <summary>The configuration names, in <see cref="DeviceIdCheckDigit"/> order.</summary>
    public static IReadOnlyList<string> Names { get; } = ["none", "luhn", "iso7064-mod37-36"];

    /// <summary>Parses a configuration name (case-insensitive; null or empty means <see cref="DeviceIdCheckDigit.None"/>).</summary>
    /// <param name="value">"none", "luhn" or "iso7064-mod37-36".</param>
    /// <param name="result">The scheme.</param>
    /// <returns>False when the name is unknown.</returns>
    public static bool TryParse(string? value, out DeviceIdCheckDigit result)
    {
        switch (value?.Trim().ToLowerInvariant())
        {
            case null or "" or "none":
                result = DeviceIdCheckDigit.None;
                return true;
            case "luhn":
                result = DeviceIdCheckDigit.Luhn;
                return true;
            case "iso7064-mod37-36":
                result = DeviceIdCheckDigit.Iso7064Mod37_36;
                return true;
            default:
                result = DeviceIdCheckDigit.None;
                return false;
        }
    }

    /// <summary>Parses a configuration name, or throws naming the parameter.</summary>
    /// <param name="value">"none", "luhn" or "iso7064-mod37-36" (case-insensitive; null or empty means none).</param>
    /// <param name="paramName">The parameter (configuration key) to name in the exception.</param>
    /// <returns>The scheme.</returns>
    /// <exception cref="ArgumentException">The name is unknown.</exception>
    public static DeviceIdCheckDigit Parse(string? value, string paramName) => TryParse(value, out var r)
        ? r
        : throw new ArgumentException($"'{value}' is not a check-digit scheme; use one of {string.Join(", ", Names)}", paramName);

    /// <summary>The configuration name of a scheme.</summary>
    /// <param name="scheme">The scheme.</param>
    public static string NameOf(DeviceIdCheckDigit scheme) => Names[(int)scheme];

    /// <summary>
    /// The ISO/IEC 7064 MOD 37,36 check character for <paramref name="payload"/> (hybrid system, M = 36):
    /// P₀ = M; for each character, S = (P + value) mod M (M when 0), P = 2S mod (M + 1); the check character has
    /// value (M + 1 − P) mod M.
    /// </summary>
    /// <param name="payload">1 or more characters of <see cref="Alphabet36"/>.</param>
    /// <returns>The check character (a member of <see cref="Alphabet36"/>).</returns>
    /// <exception cref="ArgumentException"><paramref name="payload"/> is empty or holds a character outside 0-9A-Z.</exception>
    public static char Mod37_36CheckCharacter(ReadOnlySpan<char> payload)
    {
        if (payload.IsEmpty)
        {
            throw new ArgumentException("payload is empty", nameof(payload));
        }

        int p = Mod37_36Run(payload, nameof(payload));
        return Alphabet36[(37 - p) % 36];
    }

    /// <summary>True when <paramref name="deviceId"/> (payload then check character) passes ISO/IEC 7064 MOD 37,36.</summary>
    /// <param name="deviceId">At least 2 characters of 0-9A-Z.</param>
    public static bool IsValidMod37_36(ReadOnlySpan<char> deviceId)
    {
        if (deviceId.Length < 2 || !IsAlphabet36(deviceId))
        {
            return false;
        }

        return Mod37_36CheckCharacter(deviceId[..^1]) == deviceId[^1];
    }

    /// <summary>The Luhn check digit for <paramref name="payload"/>: double every second digit from the right of the full number.</summary>
    /// <param name="payload">1 or more ASCII digits.</param>
    /// <returns>The check digit '0'..'9'.</returns>
    /// <exception cref="ArgumentException"><paramref name="payload"/> is empty or holds a non-digit.</exception>
    public static char LuhnCheckDigit(ReadOnlySpan<char> payload)
    {
        if (payload.IsEmpty || !IsDigits(payload))
        {
            throw new ArgumentException("payload must be 1 or more ASCII digits", nameof(payload));
        }

        int sum = 0;
        bool dbl = true; // the rightmost payload digit sits next to the check digit, so it is doubled
        for (int i = payload.Length - 1; i >= 0; i--)
        {
            int d = payload[i] - '0';
            if (dbl)
            {
                d *= 2;
                if (d > 9)
                {
                    d -= 9;
                }
            }

            sum += d;
            dbl = !dbl;
        }

        return (char)('0' + ((10 - (sum % 10)) % 10));
    }

    /// <summary>True when <paramref name="deviceId"/> (payload then check digit) passes Luhn.</summary>
    /// <param name="deviceId">At least 2 ASCII digits.</param>
    public static bool IsValidLuhn(ReadOnlySpan<char> deviceId) =>
        deviceId.Length >= 2 && IsDigits(deviceId) && LuhnCheckDigit(deviceId[..^1]) == deviceId[^1];

    /// <summary>Appends the scheme's check character to <paramref name="payload"/>.</summary>
    /// <param name="scheme">The scheme; <see cref="DeviceIdCheckDigit.None"/> returns the payload unchanged.</param>
    /// <param name="payload">The device ID without its check character.</param>
    /// <exception cref="ArgumentException">The payload holds characters the scheme does not allow, or is empty.</exception>
    public static string Append(DeviceIdCheckDigit scheme, string payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        return scheme switch
        {
            DeviceIdCheckDigit.Luhn => payload + LuhnCheckDigit(payload),
            DeviceIdCheckDigit.Iso7064Mod37_36 => payload + Mod37_36CheckCharacter(payload),
            _ => payload,
        };
    }

    /// <summary>Checks <paramref name="deviceId"/> against <paramref name="scheme"/>.</summary>
    /// <param name="scheme">The scheme.</param>
    /// <param name="deviceId">The device ID including its check character.</param>
    /// <param name="error">Why it fails, naming the scheme and the expected character when computable; null when valid.</param>
    /// <returns>True when valid (always for <see cref="DeviceIdCheckDigit.None"/>).</returns>
    public static bool TryValidate(DeviceIdCheckDigit scheme, string deviceId, [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(deviceId);
        error = null;
        switch (scheme)
        {
            case DeviceIdCheckDigit.Luhn:
                if (deviceId.Length < 2 || !IsDigits(deviceId))
                {
                    error = $"device ID '{Clip(deviceId)}' must be 2 or more digits ending in a Luhn check digit";
                    return false;
                }

                char luhn = LuhnCheckDigit(deviceId.AsSpan(0, deviceId.Length - 1));
                if (luhn != deviceId[^1])
                {
                    error = $"device ID '{Clip(deviceId)}' fails its Luhn check digit (the last digit should be {luhn}); check the label scan";
                    return false;
                }

                return true;
            case DeviceIdCheckDigit.Iso7064Mod37_36:
                if (deviceId.Length < 2 || !IsAlphabet36(deviceId))
                {
                    error = $"device ID '{Clip(deviceId)}' must be 2 or more of 0-9 A-Z (upper case) ending in an ISO/IEC 7064 MOD 37,36 check character";
                    return false;
                }

                char mod = Mod37_36CheckCharacter(deviceId.AsSpan(0, deviceId.Length - 1));
                if (mod != deviceId[^1])
                {
                    error = $"device ID '{Clip(deviceId)}' fails its ISO/IEC 7064 MOD 37,36 check character (the last character should be {mod}); check the label scan";
                    return false;
                }

                return true;
            default:
                return true;
        }
    }

    /// <summary>Checks a device ID at enrollment.</summary>
    /// <param name="scheme">The profile's scheme.</param>
    /// <param name="deviceId">The device ID from the CSR.</param>
    /// <param name="profileName">The profile, named in the message with its configuration key.</param>
    /// <exception cref="EnrollmentRejectedException"><see cref="EnrollmentError.DeviceIdCheckDigit"/>: the check character is wrong or the characters do not fit the scheme.</exception>
    public static void Validate(DeviceIdCheckDigit scheme, string deviceId, string profileName)
    {
        if (!TryValidate(scheme, deviceId, out var error))
        {
            throw new EnrollmentRejectedException(EnrollmentError.DeviceIdCheckDigit,
                $"{error} (profile {profileName}: FactoryCa:Profile:DeviceIdCheckDigit = {NameOf(scheme)})");
        }
    }

    private static int Mod37_36Run(ReadOnlySpan<char> chars, string paramName)
    {
        int p = 36;
        foreach (char c in chars)
        {
            int v = Value36(c);
            if (v < 0)
            {
                throw new ArgumentException($"'{c}' is not one of 0-9 A-Z", paramName);
            }

            int s = (p + v) % 36;
            if (s == 0)
            {
                s = 36;
            }

            p = s * 2 % 37;
        }

        return p;
    }

    private static int Value36(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'A' and <= 'Z' => c - 'A' + 10,
        _ => -1,
    };

    private static bool IsAlphabet36(ReadOnlySpan<char> s)
    {
        foreach (char c in s)
        {
            if (Value36(c) < 0)
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsDigits(ReadOnlySpan<char> s)
    {
        foreach (char c in s)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }

        return true;
    }

    private static string Clip(string s) => s.Length > 64 ? s[..64] + "..." : s;
}

/// <summary>
/// Validates the device ID's check character for the profile of each enrollment (issue 6, "Device IDs"). Runs before
/// the device policy, so a mistyped or misread label is a 400, not a 409.
/// </summary>
/// <param name="schemes">Profile name → its scheme; profiles not listed have none.</param>
public sealed class DeviceIdCheckDigitPolicy(IReadOnlyDictionary<string, DeviceIdCheckDigit> schemes) : IEnrollmentPolicy
{
    /// <inheritdoc />
    /// <exception cref="EnrollmentRejectedException"><see cref="EnrollmentError.DeviceIdCheckDigit"/>.</exception>
    public IEnrollmentAdmission Admit(EnrollmentContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (schemes.TryGetValue(context.ProfileName, out var scheme) && scheme != DeviceIdCheckDigit.None)
        {
            DeviceIdFormat.Validate(scheme, context.DeviceId, context.ProfileName);
        }

        return NoReservation.Instance;
    }
}
