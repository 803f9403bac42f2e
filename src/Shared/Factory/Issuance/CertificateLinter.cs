using System.Formats.Asn1;
using OfflinePki.Issuance.Lints;

namespace OfflinePki.Issuance;

/// <summary>What a lint may compare the TBSCertificate against.</summary>
/// <param name="Issuer">The issuing CA.</param>
/// <param name="Profile">The profile the certificate was built from.</param>
/// <param name="Prepared">The prepared certificate (inputs: serial, device serial, times).</param>
public sealed record LintContext(IssuingAuthority Issuer, CertificateProfile Profile, PreparedCertificate Prepared);

/// <summary>One rule about a TBSCertificate. Named after the rule, citing the section that states it.</summary>
public interface ICertificateLint
{
    /// <summary>Short rule name, e.g. "serial_number_positive".</summary>
    string Name { get; }

    /// <summary>Where the rule comes from, e.g. "RFC 5280 §4.1.2.2".</summary>
    string Citation { get; }

    /// <summary>Checks the rule.</summary>
    /// <param name="tbs">The parsed TBSCertificate.</param>
    /// <param name="context">Issuer, profile and inputs.</param>
    /// <returns>null when the rule holds; otherwise what is wrong.</returns>
    string? Check(TbsCertificateView tbs, LintContext context);
}

/// <summary>One failed lint.</summary>
/// <param name="Lint">Rule name.</param>
/// <param name="Citation">Source of the rule.</param>
/// <param name="Message">What is wrong.</param>
public sealed record LintFailure(string Lint, string Citation, string Message);

/// <summary>
/// A prepared certificate broke a profile rule. It was not signed. This is a factory defect (profile or
/// code), not bad station input: the EST front end answers 500.
/// </summary>
public sealed class CertificateLintException : Exception
{
    /// <summary>Creates the exception from the failures (at least one).</summary>
    public CertificateLintException(IReadOnlyList<LintFailure> failures)
        : base("certificate refused by lint: " + string.Join("; ", (failures ?? []).Select(f => $"{f.Lint} ({f.Citation}): {f.Message}")))
    {
        Failures = failures ?? [];
    }

    /// <summary>Every failed lint.</summary>
    public IReadOnlyList<LintFailure> Failures { get; }
}

/// <summary>Runs every lint over a prepared TBSCertificate and throws if any fails.</summary>
public sealed class CertificateLinter
{
    /// <summary>Creates a linter with the given lints.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="lints"/> is null.</exception>
    public CertificateLinter(IEnumerable<ICertificateLint> lints)
    {
        ArgumentNullException.ThrowIfNull(lints);
        Lints = lints.ToArray();
    }

    /// <summary>The IDevID lint set (IEEE 802.1AR §8).</summary>
    public static CertificateLinter Default { get; } = new(
    [
        new VersionIsV3Lint(),
        new SerialNumberPositiveLint(),
        new SerialNumberLengthLint(),
        new SerialNumberEntropyLint(),
        new SignatureAlgorithmMatchesIssuerKeyLint(),
        new IssuerIsCaSubjectLint(),
        new ValidityOrderLint(),
        new ValidityTimeEncodingLint(),
        new SubjectSerialNumberLint(),
        new HardwareModuleNameLint(),
        new BasicConstraintsNotCaLint(),
        new KeyUsageCriticalDigitalSignatureLint(),
        new AuthorityKeyIdentifierLint(),
        new SubjectKeyIdentifierLint(),
        new CrlDistributionPointLint(),
        new AuthorityInfoAccessLint(),
        new NoDuplicateExtensionsLint(),
        new AllowedSubjectKeyLint(),
    ]);

    /// <summary>The tls-client lint set: the IDevID rules that apply to any device certificate, plus clientAuth and a finite validity.</summary>
    public static CertificateLinter TlsClient { get; } = new(
    [
        new VersionIsV3Lint(),
        new SerialNumberPositiveLint(),
        new SerialNumberLengthLint(),
        new SerialNumberEntropyLint(),
        new SignatureAlgorithmMatchesIssuerKeyLint(),
        new IssuerIsCaSubjectLint(),
        new ValidityOrderLint(),
        new ValidityTimeEncodingLint(),
        new FiniteValidityLint(),
        new SubjectSerialNumberLint(),
        new HardwareModuleNameLint(),
        new BasicConstraintsNotCaLint(),
        new KeyUsageCriticalDigitalSignatureLint(),
        new ExtendedKeyUsageClientAuthLint(),
        new AuthorityKeyIdentifierLint(),
        new SubjectKeyIdentifierLint(),
        new CrlDistributionPointLint(),
        new AuthorityInfoAccessLint(),
        new NoDuplicateExtensionsLint(),
        new AllowedSubjectKeyLint(),
    ]);

    /// <summary>The Matter DAC lint set (Matter Core Specification §6.1, §6.2.2, §6.5.6.1) on top of the RFC 5280 rules.</summary>
    public static CertificateLinter MatterDac { get; } = new(
    [
        new VersionIsV3Lint(),
        new SerialNumberPositiveLint(),
        new SerialNumberLengthLint(),
        new SerialNumberEntropyLint(),
        new SignatureAlgorithmMatchesIssuerKeyLint(),
        new MatterSignatureAlgorithmLint(),
        new IssuerIsCaSubjectLint(),
        new ValidityOrderLint(),
        new ValidityTimeEncodingLint(),
        new MatterNotAfterNoExpirationLint(),
        new SubjectSerialNumberLint(),
        new MatterVendorProductIdLint(),
        new HardwareModuleNameLint(),
        new BasicConstraintsNotCaLint(),
        new MatterKeyUsageDigitalSignatureOnlyLint(),
        new MatterNoExtendedKeyUsageLint(),
        new AuthorityKeyIdentifierLint(),
        new SubjectKeyIdentifierLint(),
        new CrlDistributionPointLint(),
        new AuthorityInfoAccessLint(),
        new NoDuplicateExtensionsLint(),
        new AllowedSubjectKeyLint(),
        new MatterSubjectKeyP256Lint(),
    ]);

    /// <summary>The lint set for a profile kind.</summary>
    /// <param name="kind">The kind.</param>
    /// <returns><see cref="Default"/>, <see cref="TlsClient"/> or <see cref="MatterDac"/>.</returns>
    public static CertificateLinter ForKind(CertificateProfileKind kind) => kind switch
    {
        CertificateProfileKind.TlsClient => TlsClient,
        CertificateProfileKind.MatterDac => MatterDac,
        _ => Default,
    };

    /// <summary>The lints run, in order.</summary>
    public IReadOnlyList<ICertificateLint> Lints { get; }

    /// <summary>Runs all lints.</summary>
    /// <param name="context">The prepared certificate, issuer and profile.</param>
    /// <exception cref="CertificateLintException">At least one lint failed, or the TBS does not parse.</exception>
    public void Lint(LintContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        TbsCertificateView view;
        try
        {
            view = TbsCertificateView.Parse(context.Prepared.TbsDer);
        }
        catch (AsnContentException ex)
        {
            throw new CertificateLintException([new LintFailure("tbs_well_formed", "RFC 5280 §4.1", ex.Message)]);
        }

        var failures = new List<LintFailure>();
        foreach (var lint in Lints)
        {
            string? problem;
            try
            {
                problem = lint.Check(view, context);
            }
            catch (Exception ex) when (ex is AsnContentException or System.Security.Cryptography.CryptographicException or FormatException)
            {
                problem = "cannot decode: " + ex.Message;
            }

            if (problem is not null)
            {
                failures.Add(new LintFailure(lint.Name, lint.Citation, problem));
            }
        }

        if (failures.Count > 0)
        {
            throw new CertificateLintException(failures);
        }
    }
}
