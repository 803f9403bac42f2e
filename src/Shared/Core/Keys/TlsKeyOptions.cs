using System.ComponentModel;
using System.Globalization;

namespace OfflinePki.Keys;

/// <summary>
/// Where a TLS private key lives (e.g. FactoryCa:Est:ServerKey). In configuration either a plain string, the PEM key
/// file path as before (<c>"ServerKey": "tls/est-server.key"</c>), or a key section shaped like the CA keys
/// (<c>"ServerKey": { "Pkcs11Uri": "pkcs11:token=factory-tls;object=est-server;type=private", "Module": "...", "PinFile": "..." }</c>).
/// A file key may be any PEM private key (PKCS#8, SEC1 or PKCS#1); an encrypted PKCS#8 file needs PassphraseFile or
/// PassphraseEnvironmentVariable.
/// </summary>
[TypeConverter(typeof(TlsKeyOptionsConverter))]
public sealed class TlsKeyOptions : SigningKeyOptions
{
    /// <summary>A file key at <paramref name="path"/> (the old string form).</summary>
    /// <param name="path">PEM private key path; empty for "not set".</param>
    public static TlsKeyOptions FromPath(string path) => new() { File = path ?? string.Empty };

    /// <summary>A file key at <paramref name="path"/>, so code and tests can keep assigning a path.</summary>
    /// <param name="path">PEM private key path.</param>
    public static implicit operator TlsKeyOptions(string path) => FromPath(path);

    /// <summary>True when nothing is configured (neither File nor Pkcs11Uri).</summary>
    public bool IsEmpty => string.IsNullOrEmpty(File) && !IsPkcs11;
}

/// <summary>Binds a configuration string (the PEM key path) to <see cref="TlsKeyOptions"/>.</summary>
public sealed class TlsKeyOptionsConverter : TypeConverter
{
    /// <inheritdoc />
    public override bool CanConvertFrom(ITypeDescriptorContext? context, Type sourceType) =>
        sourceType == typeof(string) || base.CanConvertFrom(context, sourceType);

    /// <inheritdoc />
    public override object? ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value) =>
        value is string s ? TlsKeyOptions.FromPath(s) : base.ConvertFrom(context, culture, value);
}
