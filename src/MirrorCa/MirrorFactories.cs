using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using OfflinePki.Crl;
using OfflinePki.Keys;
using OfflinePki.Ocsp;
using OfflinePki.Registry;
using OfflinePki.Revocation;

namespace OfflinePki.MirrorCa;

/// <summary>One configured factory, loaded: its issuing CA (certificate and CRL-signing key clone), CRL publisher and OCSP issuer.</summary>
/// <param name="FactoryId">Factory id.</param>
/// <param name="IssuingCa">The issuing CA certificate.</param>
/// <param name="Crl">Its CRL publisher.</param>
/// <param name="Ocsp">Its OCSP issuer entry (responder certificate and key) as configured.</param>
/// <param name="IssuingKey">The issuing CA key clone (signs CRLs and renewed OCSP responder certificates).</param>
/// <param name="ResponderKey">The OCSP responder key.</param>
public sealed record LoadedFactory(string FactoryId, X509Certificate2 IssuingCa, CrlPublisher Crl, OcspIssuer Ocsp, ISigningKey? IssuingKey = null, ISigningKey? ResponderKey = null)
{
    /// <summary>Partition publishers (MirrorCa:Crl:Partitions &gt; 1), served at "/crl/{factory}-p{k}.crl"; empty when not partitioned.</summary>
    public IReadOnlyList<CrlPublisher> Partitions { get; init; } = [];
}

/// <summary>Loads every configured factory's certificates and keys at startup and fails with the configuration key when one is unusable.</summary>
public sealed class MirrorFactories : IDisposable
{
    private readonly Dictionary<string, LoadedFactory> _byId = new(StringComparer.Ordinal);
    private readonly List<IDisposable> _keys = [];

    /// <summary>Loads the factories.</summary>
    /// <exception cref="OptionsValidationException">A certificate or key cannot be loaded, or a key does not match its certificate; the message names the key.</exception>
    /// <param name="options">The mirror options.</param>
    /// <param name="registry">The registry (revocation source).</param>
    /// <param name="timeProvider">Clock.</param>
    /// <param name="loggers">Logs skipped CRL refreshes (key unavailable); optional.</param>
    /// <param name="health">Key status board the keys are tracked on (status and health output); optional.</param>
    public MirrorFactories(IOptions<MirrorCaOptions> options, MirrorRegistry registry, TimeProvider timeProvider, ILoggerFactory? loggers = null, KeyHealthBoard? health = null)
    {
        var crlLog = loggers?.CreateLogger("OfflinePki.MirrorCa.Crl");
        ArgumentNullException.ThrowIfNull(options);
        var o = options.Value;
        for (int i = 0; i < o.Factories.Count; i++)
        {
            var f = o.Factories[i];
            var p = $"{MirrorCaOptions.SectionName}:Factories[{i}]";
            var ca = LoadCert($"{p}:IssuingCa:Certificate", f.IssuingCa.Certificate);
            var caKey = LoadKey($"{p}:IssuingCa:Key", f.IssuingCa.Key, ca);
            var responder = LoadCert($"{p}:OcspResponder:Certificate", f.OcspResponder.Certificate);
            var responderKey = LoadKey($"{p}:OcspResponder:Key", f.OcspResponder.Key, responder);
            OcspIssuer ocsp;
            try
            {
                ocsp = new OcspIssuer(f.FactoryId, ca, responder, responderKey);
            }
            catch (ArgumentException ex)
            {
                throw Fail($"{p}:OcspResponder:Certificate: {ex.Message}");
            }

            DeltaCrlSettings? delta = o.Crl.Deltas.Enabled
                ? new DeltaCrlSettings(registry, o.Crl.Deltas.Validity, o.Crl.Deltas.RefreshAfter,
                    string.IsNullOrEmpty(o.Crl.PublicBaseUrl) ? null : $"{o.Crl.PublicBaseUrl.TrimEnd('/')}/crl/{f.FactoryId}-delta.crl")
                : null;
            health?.Track($"{p}:IssuingCa:Key", caKey, f.IssuingCa.Key);
            health?.Track($"{p}:OcspResponder:Key", responderKey, f.OcspResponder.Key);
            var crl = new CrlPublisher(CrlIssuer.FromCertificate(ca), caKey, registry, timeProvider, o.Crl.Validity, o.Crl.RefreshAfter, delta) { Logger = crlLog };
            var partitions = new List<CrlPublisher>();
            for (int k = 0; o.Crl.Partitions > 1 && k < o.Crl.Partitions; k++)
            {
                var url = CrlPartitioning.PartitionUrl($"{o.Crl.PublicBaseUrl.TrimEnd('/')}/crl/{f.FactoryId}.crl", k);
                partitions.Add(new CrlPublisher(CrlIssuer.FromCertificate(ca), caKey, registry, timeProvider, o.Crl.Validity, o.Crl.RefreshAfter, null,
                    new CrlPartition(k, o.Crl.Partitions, url)) { Logger = crlLog });
            }

            _byId[f.FactoryId] = new LoadedFactory(f.FactoryId, ca, crl, ocsp, caKey, responderKey) { Partitions = partitions };
        }
    }

    /// <summary>All factories, in configuration order.</summary>
    public IEnumerable<LoadedFactory> All => _byId.Values;

    /// <summary>The factory with <paramref name="factoryId"/>, or null.</summary>
    public LoadedFactory? Find(string factoryId) => _byId.GetValueOrDefault(factoryId);

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var k in _keys)
        {
            k.Dispose();
        }
    }

    private static X509Certificate2 LoadCert(string key, string path)
    {
        try
        {
            return X509CertificateLoader.LoadCertificateFromFile(path);
        }
        catch (Exception ex) when (ex is System.Security.Cryptography.CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw Fail($"{key}: cannot load certificate '{path}': {ex.Message}");
        }
    }

    private ISigningKey LoadKey(string key, KeyOptions options, X509Certificate2 certificate)
    {
        ISigningKey loaded;
        try
        {
            loaded = SigningKeyLoader.Load(key, options, certificate);
        }
        catch (SigningKeyUnavailableException ex)
        {
            throw Fail(ex.Message);
        }

        if (loaded is IDisposable d)
        {
            _keys.Add(d);
        }

        return loaded;
    }

    private static OptionsValidationException Fail(string message) =>
        new(MirrorCaOptions.SectionName, typeof(MirrorCaOptions), [message]);
}
