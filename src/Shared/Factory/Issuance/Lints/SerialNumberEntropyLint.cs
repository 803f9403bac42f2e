using System.Numerics;

namespace OfflinePki.Issuance.Lints;

/// <summary>
/// CA/Browser Forum Baseline Requirements §7.1 (adopted here for devices): at least 64 bits of CSPRNG output,
/// checked as a serial magnitude of at least 64 bits, i.e. unguessable serials.
/// </summary>
public sealed class SerialNumberEntropyLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "serial_number_at_least_64_bits";
    /// <inheritdoc />
    public string Citation => "CA/B Forum BR §7.1";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        long bits = new BigInteger(tbs.Serial, isUnsigned: false, isBigEndian: true).GetBitLength();
        return bits >= 64 ? null : $"serial number has {bits} significant bits, fewer than 64";
    }
}
