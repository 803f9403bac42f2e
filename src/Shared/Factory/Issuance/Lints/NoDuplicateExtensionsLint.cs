using System.Security.Cryptography;

namespace OfflinePki.Issuance.Lints;

/// <summary>RFC 5280 §4.2: a certificate MUST NOT include more than one instance of a particular extension.</summary>
public sealed class NoDuplicateExtensionsLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "no_duplicate_extensions";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §4.2";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        var dup = tbs.Extensions.GroupBy(e => e.Oid).FirstOrDefault(g => g.Count() > 1);
        return dup is null ? null : $"extension {dup.Key} appears {dup.Count()} times";
    }
}
