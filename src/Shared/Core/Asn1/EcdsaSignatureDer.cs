using System.Security.Cryptography;

namespace OfflinePki.Asn1;

/// <summary>
/// The one strict-DER gate every ECDSA verify path runs first (issue 16 finding 5: one signature, one verdict).
/// An Ecdsa-Sig-Value (RFC 3279 §2.2.3: <c>SEQUENCE { r INTEGER, s INTEGER }</c>) is accepted only as DER (X.690 §10:
/// definite, minimal lengths), with r and s minimal positive INTEGERs (no redundant leading 00, no sign bit set),
/// 1 &lt;= r, s &lt; n (the curve order), and no byte after the SEQUENCE. The runtime's verifier, the precomputed-table
/// verifier and OpenSSL then see only signatures they all read the same way. High s (s &gt; n/2) is accepted on
/// every path (docs/security/signatures.md).
/// </summary>
public static class EcdsaSignatureDer
{
    private static readonly Lazy<byte[]> P256Order = new(() => OrderOf(ECCurve.NamedCurves.nistP256));
    private static readonly Lazy<byte[]> P384Order = new(() => OrderOf(ECCurve.NamedCurves.nistP384));
    private static readonly Lazy<byte[]> P521Order = new(() => OrderOf(ECCurve.NamedCurves.nistP521));

    /// <summary>True when <paramref name="signature"/> is a strict DER Ecdsa-Sig-Value for a key of <paramref name="key"/>'s curve.</summary>
    /// <param name="signature">The DER signature as received.</param>
    /// <param name="key">The verifying key (a NIST P-256, P-384 or P-521 key; another curve is refused).</param>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is null.</exception>
    public static bool IsStrict(ReadOnlySpan<byte> signature, ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return IsStrict(signature, key.KeySize);
    }

    /// <summary>True when <paramref name="signature"/> is a strict DER Ecdsa-Sig-Value for the NIST curve of <paramref name="keySizeBits"/>.</summary>
    /// <param name="signature">The DER signature as received.</param>
    /// <param name="keySizeBits">256 (P-256), 384 (P-384) or 521 (P-521); any other size is refused.</param>
    public static bool IsStrict(ReadOnlySpan<byte> signature, int keySizeBits)
    {
        byte[]? order = keySizeBits switch
        {
            256 => P256Order.Value,
            384 => P384Order.Value,
            521 => P521Order.Value,
            _ => null,
        };
        return order is not null && IsStrict(signature, order);
    }

    /// <summary>True when <paramref name="signature"/> is a strict DER Ecdsa-Sig-Value with 1 &lt;= r, s &lt; <paramref name="order"/>.</summary>
    /// <param name="signature">The DER signature as received.</param>
    /// <param name="order">The curve order n, big-endian unsigned, without leading zero octets.</param>
    public static bool IsStrict(ReadOnlySpan<byte> signature, ReadOnlySpan<byte> order)
    {
        if (signature.Length < 2 || signature[0] != 0x30 || !TryReadLength(signature[1..], out int length, out int header)
            || 1 + header + length != signature.Length)
        {
            return false; // not a SEQUENCE, a non-minimal length, or bytes after it
        }

        var body = signature[(1 + header)..];
        return TryReadInteger(ref body, order) && TryReadInteger(ref body, order) && body.IsEmpty;
    }

    // One minimal positive INTEGER in [1, n).
    private static bool TryReadInteger(ref ReadOnlySpan<byte> body, ReadOnlySpan<byte> order)
    {
        if (body.Length < 2 || body[0] != 0x02 || !TryReadLength(body[1..], out int length, out int header)
            || length == 0 || 1 + header + length > body.Length)
        {
            return false;
        }

        var value = body.Slice(1 + header, length);
        body = body[(1 + header + length)..];
        if ((value[0] & 0x80) != 0)
        {
            return false; // negative
        }

        if (value[0] == 0)
        {
            if (value.Length == 1 || (value[1] & 0x80) == 0)
            {
                return false; // zero, or a redundant leading 00
            }

            value = value[1..];
        }

        // Now value has no leading zero octet: compare it to n as unsigned big-endian numbers.
        return value.Length < order.Length || (value.Length == order.Length && value.SequenceCompareTo(order) < 0);
    }

    // X.690 §10.1: definite form, the short form below 128, the long form with the fewest octets (here at most 2).
    private static bool TryReadLength(ReadOnlySpan<byte> encoded, out int length, out int header)
    {
        length = 0;
        header = 1;
        if (encoded.IsEmpty)
        {
            return false;
        }

        byte first = encoded[0];
        if (first < 0x80)
        {
            length = first;
            return true;
        }

        int count = first & 0x7F;
        if (count is 0 or > 2 || encoded.Length < 1 + count || encoded[1] == 0)
        {
            return false; // indefinite, too long, or a leading zero length octet
        }

        for (int i = 1; i <= count; i++)
        {
            length = (length << 8) | encoded[i];
        }

        header = 1 + count;
        return length >= 0x80;
    }

    private static byte[] OrderOf(ECCurve curve)
    {
        using var key = ECDsa.Create(curve);
        var order = key.ExportExplicitParameters(includePrivateParameters: false).Curve.Order!;
        int skip = 0;
        while (skip < order.Length - 1 && order[skip] == 0)
        {
            skip++;
        }

        return order[skip..];
    }
}
