using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OfflinePki.Asn1;
using OfflinePki.Enrollment;
using OfflinePki.Issuance;
using OfflinePki.Journal;
using OfflinePki.Journal.Index;
using OfflinePki.Hosting.Sync;
using OfflinePki.Sync;
using OfflinePki.Keys;
using OfflinePki.Orders;
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
    /// The issuing CA (its key from a PKCS#8 file or a PKCS#11 token, FactoryCa:IssuingCa:Key, see
    /// <see cref="SigningKeyOptions"/>), the profile, serials, the issuer and the enrollment service.
    /// </summary>
    public static IServiceCollection AddFactoryIssuance(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ISerialNumberSource, RandomSerialNumberSource>();
        services.TryAddSingleton<KeyHealthBoard>();
        OfflinePki.Hosting.Keys.KeyHealthServiceCollectionExtensions.AddKeyHealthMonitor(services);
        services.TryAddSingleton<InMemoryIssuedSerials>();
        services.TryAddSingleton<IIssuedSerials>(sp => sp.GetRequiredService<InMemoryIssuedSerials>());
        services.TryAddSingleton<IIssuedSerialsRecorder>(sp => sp.GetRequiredService<InMemoryIssuedSerials>());
        services.TryAddSingleton(sp => sp.GetRequiredService<IOptions<FactoryCaOptions>>().Value.ToProfileSet());
        services.TryAddSingleton(sp => sp.GetRequiredService<CertificateProfileSet>().Default);
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<FactoryCaOptions>>().Value;
            var cert = X509CertificateLoader.LoadCertificateFromFile(o.IssuingCa.Certificate);
            var key = SigningKeyLoader.Load($"{FactoryCaOptions.SectionName}:IssuingCa:Key", o.IssuingCa.Key, cert, sp.GetService<TimeProvider>());
            sp.GetService<KeyHealthBoard>()?.Track($"{FactoryCaOptions.SectionName}:IssuingCa:Key", key, o.IssuingCa.Key);
            var root = X509CertificateLoader.LoadCertificateFromFile(o.RootCertificate);
            return new IssuingAuthority(cert, key, [root]);
        });
        services.TryAddSingleton<ICertificateIssuer>(sp => new CertificateIssuer(
            sp.GetRequiredService<IssuingAuthority>(), sp.GetRequiredService<CertificateProfileSet>(), sp.GetRequiredService<ISerialNumberSource>(),
            sp.GetRequiredService<IIssuedSerials>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<IEnrollmentService>(sp => new EnrollmentService(
            sp.GetRequiredService<ICertificateIssuer>(), sp.GetRequiredService<IJournalAppender>(),
            sp.GetRequiredService<ILogger<EnrollmentService>>(), sp.GetService<IIssuedSerialsRecorder>(), sp.GetService<IIssuanceGate>(),
            sp.GetServices<IEnrollmentPolicy>(), sp.GetService<TimeProvider>()));
        return services;
    }

    /// <summary>
    /// The station list and RA CA (who may call EST simpleenroll), the device-certificate check of simplereenroll,
    /// the locally revoked station certificates (FactoryCa:DataDirectory/revoked-stations) and the station limits
    /// policy (revoked, suspended, rate limit).
    /// </summary>
    public static IServiceCollection AddFactoryStationPolicy(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new RevokedStationStore(sp.GetRequiredService<IOptions<FactoryCaOptions>>().Value.DataDirectory, sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<IRevokedStations>(sp => sp.GetRequiredService<RevokedStationStore>());
        services.TryAddSingleton(sp => new StationLimitsPolicy(sp.GetRequiredService<IRevokedStations>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEnrollmentPolicy, StationLimitsPolicy>(sp => sp.GetRequiredService<StationLimitsPolicy>()));
        services.TryAddSingleton(sp => new DeviceCertificateAuthenticator(sp.GetRequiredService<IssuingAuthority>(),
            sp.GetRequiredService<CertificateProfileSet>(), sp.GetRequiredService<TimeProvider>()));
        services.AddHostedService<RevokedStationJournaler>();
        services.TryAddSingleton<IStationAuthorizer>(sp =>
        {
            var o = sp.GetRequiredService<IOptions<FactoryCaOptions>>().Value;
            return new StationAuthorizer(X509CertificateLoader.LoadCertificateFromFile(o.Est.RaCaCertificate),
                FactoryCaOptionsValidator.Stations(o), sp.GetRequiredService<TimeProvider>());
        });
        return services;
    }

    /// <summary>
    /// The journal every certificate is written to (fsync) before it is returned, over FactoryCa:DataDirectory/journal,
    /// signed by FactoryCa:JournalSigner; the SQLite index derived from it; and the serial-reuse check backed by both.
    /// The writer opens (and recovers a torn tail) when the host is built, and writes a checkpoint when disposed.
    /// </summary>
    public static IServiceCollection AddFactoryJournal(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<JournalWriterOptions>()
            .Bind(configuration.GetSection(JournalWriterOptions.SectionName))
            .Configure<IOptions<FactoryCaOptions>>((j, f) => j.Directory = Path.Combine(f.Value.DataDirectory, "journal"))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<JournalWriterOptions>, JournalWriterOptionsValidator>());
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<FactoryCaOptions>>().Value;
            var authority = sp.GetRequiredService<IssuingAuthority>();
            var signerCert = X509CertificateLoader.LoadCertificateFromFile(o.JournalSigner.Certificate);
            var signerKey = SigningKeyLoader.Load($"{FactoryCaOptions.SectionName}:JournalSigner:Key", o.JournalSigner.Key, signerCert, sp.GetService<TimeProvider>());
            sp.GetService<KeyHealthBoard>()?.Track($"{FactoryCaOptions.SectionName}:JournalSigner:Key", signerKey, o.JournalSigner.Key);
            var genesis = new GenesisParameters(o.FactoryId, [authority.Certificate.RawData], PolicyDigest.Of(o));
            return JournalWriter.OpenOrCreateAsync(sp.GetRequiredService<IOptions<JournalWriterOptions>>().Value, signerKey, signerCert, genesis,
                sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<JournalWriter>>()).GetAwaiter().GetResult();
        });
        services.AddSingleton<IJournalAppender>(sp => sp.GetRequiredService<JournalWriter>());
        services.AddSingleton<IJournalReader>(sp => sp.GetRequiredService<JournalWriter>());
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<FactoryCaOptions>>().Value;
            var index = FactoryIndex.Open(Path.Combine(o.DataDirectory, "index.db"));
            index.CatchUp(sp.GetRequiredService<IJournalReader>());
            return index;
        });
        services.AddSingleton<IndexedIssuedSerials>();
        services.AddSingleton<IIssuedSerials>(sp => sp.GetRequiredService<IndexedIssuedSerials>());
        services.AddSingleton<IIssuedSerialsRecorder>(sp => sp.GetRequiredService<IndexedIssuedSerials>());
        services.AddHostedService<FactoryIndexCatchUpService>();
        services.TryAddSingleton(sp => new MirrorReceiptStore(Path.Combine(sp.GetRequiredService<IOptions<FactoryCaOptions>>().Value.DataDirectory, MirrorReceiptStore.FileName)));
        services.TryAddSingleton(sp => new MirrorReceiptBook(
            new MirrorReceiptVerifier(X509CertificateLoader.LoadCertificateFromFile(sp.GetRequiredService<IOptions<FactoryCaOptions>>().Value.RootCertificate)),
            sp.GetRequiredService<MirrorReceiptStore>(), sp.GetRequiredService<IJournalReader>()));
        services.TryAddSingleton(sp => new DivergenceGate(sp.GetRequiredService<IJournalReader>(), sp.GetRequiredService<MirrorReceiptStore>(),
            sp.GetRequiredService<IOptions<FactoryCaOptions>>().Value.Divergence, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<DivergenceGate>>()));
        services.TryAddSingleton<IIssuanceGate>(sp => sp.GetRequiredService<DivergenceGate>());
        return services;
    }

    /// <summary>
    /// Production orders: the <see cref="OrderBook"/> (rebuilt from the journal when first resolved), its verifier
    /// (FactoryCa:RootCertificate, this FactoryId), the <see cref="OrderPolicy"/> (FactoryCa:Orders) as an
    /// <see cref="IEnrollmentPolicy"/>, and the book as the sync client's <see cref="IOrderInbox"/>.
    /// </summary>
    public static IServiceCollection AddFactoryOrders(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<FactoryCaOptions>>().Value;
            return new ProductionOrderVerifier(X509CertificateLoader.LoadCertificateFromFile(o.RootCertificate), o.FactoryId, sp.GetRequiredService<TimeProvider>());
        });
        services.TryAddSingleton(sp =>
        {
            var book = new OrderBook(sp.GetRequiredService<ProductionOrderVerifier>(), sp.GetRequiredService<IJournalAppender>(), sp.GetService<ILogger<OrderBook>>());
            book.LoadFrom(sp.GetRequiredService<IJournalReader>());
            return book;
        });
        services.TryAddSingleton<IOrderInbox>(sp => sp.GetRequiredService<OrderBook>());
        services.TryAddSingleton<Policy.IOrderReworkWindows>(sp => sp.GetRequiredService<OrderBook>());
        services.TryAddSingleton(sp => sp.GetRequiredService<IOptions<FactoryCaOptions>>().Value.Orders);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEnrollmentPolicy, OrderPolicy>());
        return services;
    }

    /// <summary>
    /// The sync client to the mirror (FactoryCa:Sync, see <see cref="SyncOptions"/>): scheduled every Interval and on
    /// demand through the control socket. Relative certificate paths resolve against <paramref name="baseDirectory"/>.
    /// </summary>
    public static IServiceCollection AddFactorySync(this IServiceCollection services, IConfiguration configuration, string baseDirectory)
    {
        services.AddJournalSyncClient(configuration.GetSection(FactoryCaOptions.SectionName + ":" + SyncOptions.Section));
        services.PostConfigure<SyncOptions>(o =>
        {
            string R(string p) => string.IsNullOrEmpty(p) ? p : Path.GetFullPath(p, baseDirectory);
            o.ClientCertificatePath = R(o.ClientCertificatePath);
            o.ClientKeyPath = R(o.ClientKeyPath);
            o.ClientKey?.ResolvePaths(baseDirectory);
            o.ServerTrustAnchorPath = R(o.ServerTrustAnchorPath);
        });
        return services;
    }
}
