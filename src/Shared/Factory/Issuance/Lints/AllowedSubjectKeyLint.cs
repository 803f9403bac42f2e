using OfflinePki.Enrollment;
using OfflinePki.Factory;

namespace OfflinePki.Issuance.Lints;

/// <summary>
/// IEEE 802.1AR §8.7 (as profiled here): the device key is P-256, P-384 or RSA of 2048 to 16384 bits, and one of
/// the profile's key types (<see cref="CertificateProfile.AllowedKeyTypes"/>).
/// </summary>
public sealed class AllowedSubjectKeyLint : ICertificateLint
{
    /// <inheritdoc />
    public string Name => "subject_key_allowed";
    /// <inheritdoc />
    public string Citation => "IEEE 802.1AR §8.7; RFC 5480 §2.1.1";
    /// <inheritdoc />
    public string? Check(TbsCertificateView tbs, LintContext context)
    {
        try
        {
            // Structure only (algorithm, curve, modulus size): the key itself was validated by the CSR signature check.
            string key = CsrIntake.ClassifyKey(tbs.SubjectPublicKeyInfo, importKey: false);
            return context.Profile.AllowsKey(key) ? null
                : $"{key} key is not allowed by profile {context.Profile.Name} ({string.Join(", ", context.Profile.AllowedKeyTypes)})";
        }
        catch (EnrollmentRejectedException ex)
        {
            return ex.Message;
        }
    }
}
