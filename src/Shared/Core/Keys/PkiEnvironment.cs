using System.Security.Cryptography.X509Certificates;

namespace OfflinePki.Keys;

/// <summary>
/// Keeps dev, test, staging and production PKIs apart. The ceremony (ops/ceremony) and ops/dev-pki.sh mark every CA
/// certificate of an environment with the subject organisation "OfflinePki ENV"; a daemon configured with
/// <c>Environment: ENV</c> refuses a root or issuing CA certificate marked for another environment (or unmarked).
/// </summary>
public static class PkiEnvironment
{
    /// <summary>The subject O value that marks <paramref name="environment"/>.</summary>
    public static string Marker(string environment) => "OfflinePki " + environment;

    /// <summary>An error naming <paramref name="configKey"/> and both environments, or null when the certificate is marked for <paramref name="environment"/>.</summary>
    /// <param name="configKey">e.g. "FactoryCa:RootCertificate".</param>
    /// <param name="environmentKey">e.g. "FactoryCa:Environment".</param>
    /// <param name="environment">dev, test, staging or production.</param>
    /// <param name="certificate">A CA certificate of the configured PKI.</param>
    public static string? Check(string configKey, string environmentKey, string environment, X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        string? org = null;
        foreach (var rdn in certificate.SubjectName.EnumerateRelativeDistinguishedNames())
        {
            if (rdn.GetSingleElementType().Value == "2.5.4.10")
            {
                org = rdn.GetSingleElementValue();
            }
        }

        if (string.Equals(org, Marker(environment), StringComparison.Ordinal))
        {
            return null;
        }

        string found = org is not null && org.StartsWith("OfflinePki ", StringComparison.Ordinal) ? $"the '{org["OfflinePki ".Length..]}' environment" : $"no environment (O={org ?? "absent"})";
        return $"{configKey}: '{certificate.Subject}' belongs to {found}, but {environmentKey} is '{environment}'; test, staging and production PKIs must not be mixed";
    }
}
