using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OfflinePki.Asn1;
using OfflinePki.Enrollment;
using OfflinePki.Issuance;
using OfflinePki.Journal;
using OfflinePki.Keys;
using OfflinePki.Policy;

namespace OfflinePki.FactoryCa;

/// <summary>Wiring of the FactoryCa services. Each AddXxx is one seam the lead or a test can replace.</summary>
public static class FactoryCaServiceCollectionExtensions
{
    /// <summary>Binds and validates (at startup) the FactoryCa section, resolving relative paths against <paramref name="baseDirectory"/>.</summary>
    public static IServiceCollection AddFactoryCaOptions(this IServiceCollection services, IConfiguration configuration, string baseDirectory,
        Action<FactoryCaOptions>? configure = null)
    {
        var builder = services.AddOptions<FactoryCaOptions>()
            .Bind(configuration.GetSection(FactoryCaOptions.SectionName))
            .PostConfigure(o => o.ResolvePaths(baseDirectory));
        if (configure is not null)
        {
            builder.PostConfigure(configure);
        }

        builder.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<FactoryCaOptions>, FactoryCaOptionsValidator>());
        return services;
    }

    /// <summary>
    /// The issuing CA (software PKCS#8 key for now; an HSM-backed <see cref="ISigningKey"/> replaces
    /// <see cref="IssuingAuthority"/>'s key here), the profile, serials, the issuer and the enrollment service.
    /// </summary>
    public static IServiceCollection AddFactoryIssuance(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ISerialNumberSource, RandomSerialNumberSource>();
        services.TryAddSingleton<InMemoryIssuedSerials>();
        services.TryAddSingleton<IIssuedSerials>(sp => sp.GetRequiredService<InMemoryIssuedSerials>());
        services.TryAddSingleton<IIssuedSerialsRecorder>(sp => sp.GetRequiredService<InMemoryIssuedSerials>());
        services.TryAddSingleton(sp => sp.GetRequiredService<IOptions<FactoryCaOptions>>().Value.Profile.ToProfile());
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<FactoryCaOptions>>().Value;
            var cert = X509CertificateLoader.LoadCertificateFromFile(o.IssuingCa.Certificate);
            string? passphrase = o.IssuingCa.Key.PassphraseEnvironmentVariable is { Length: > 0 } v ? Environment.GetEnvironmentVariable(v) : null;
            var key = SoftwareKeyLoader.Load(o.IssuingCa.Key.File, passphrase);
            var root = X509CertificateLoader.LoadCertificateFromFile(o.RootCertificate);
            return new IssuingAuthority(cert, key, [root]);
        });
        services.TryAddSingleton<ICertificateIssuer>(sp => new CertificateIssuer(
            sp.GetRequiredService<IssuingAuthority>(), sp.GetRequiredService<CertificateProfile>(), sp.GetRequiredService<ISerialNumberSource>(),
            sp.GetRequiredService<IIssuedSerials>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<IEnrollmentService>(sp => new EnrollmentService(
            sp.GetRequiredService<ICertificateIssuer>(), sp.GetRequiredService<IJournalAppender>(),
            sp.GetRequiredService<ILogger<EnrollmentService>>(), sp.GetService<IIssuedSerialsRecorder>()));
        return services;
    }

    /// <summary>The station list and RA CA: who may call EST simpleenroll.</summary>
    public static IServiceCollection AddFactoryStationPolicy(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IStationAuthorizer>(sp =>
        {
            var o = sp.GetRequiredService<IOptions<FactoryCaOptions>>().Value;
            return new StationAuthorizer(X509CertificateLoader.LoadCertificateFromFile(o.Est.RaCaCertificate),
                FactoryCaOptionsValidator.Stations(o), sp.GetRequiredService<TimeProvider>());
        });
        return services;
    }

    // ======================================================================================
    // JOURNAL SEAM. The real journal (JournalWriter, by the journal part) is registered here
    // by the lead: replace UnwiredJournalAppender with the writer over FactoryCa:DataDirectory
    // and FactoryCa:JournalSigner. Until then every enrollment fails closed with 503.
    // ======================================================================================

    /// <summary>
    /// Registers the <see cref="IJournalAppender"/> every certificate is journaled through before it is returned.
    /// NOT WIRED YET: registers <see cref="UnwiredJournalAppender"/>, which refuses every append (HTTP 503).
    /// </summary>
    public static IServiceCollection AddFactoryJournal(this IServiceCollection services)
    {
        services.TryAddSingleton<IJournalAppender, UnwiredJournalAppender>();
        return services;
    }
}

/// <summary>Placeholder journal: refuses every append, so the factory fails closed until the real journal is wired.</summary>
public sealed class UnwiredJournalAppender : IJournalAppender
{
    /// <inheritdoc />
    public Task<OfflinePki.Journal.V1.JournalEntry> AppendAsync(OfflinePki.Journal.V1.EntryType type, Google.Protobuf.IMessage payload, CancellationToken cancellationToken = default) =>
        throw new JournalUnavailableException("journal not wired (FactoryCaServiceCollectionExtensions.AddFactoryJournal)");

    /// <inheritdoc />
    public Task<OfflinePki.Journal.V1.JournalEntry> CheckpointAsync(CancellationToken cancellationToken = default) =>
        throw new JournalUnavailableException("journal not wired (FactoryCaServiceCollectionExtensions.AddFactoryJournal)");
}
