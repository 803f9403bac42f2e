using System.Security.Cryptography.X509Certificates;

namespace OfflinePki.Tests.Support;

/// <summary>
/// A development PKI made by the operator script <c>ops/dev-pki.sh</c> (openssl) in a temp directory.
/// One is created per test run and shared; tests that need their own factory pass another id.
/// Nothing secret is committed: keys are generated here, at test time.
/// </summary>
public sealed class TestPki
{
    private static readonly Lazy<TestPki> Shared = new(() => Create("F1"));

    private TestPki(string directory, string factoryId)
    {
        Directory = directory;
        FactoryId = factoryId;
    }

    /// <summary>The PKI shared by the whole run (factory F1).</summary>
    public static TestPki Default => Shared.Value;

    /// <summary>Absolute directory holding the PEM keys, certificates and sample configs.</summary>
    public string Directory { get; }

    /// <summary>The factory id the PKI was made for.</summary>
    public string FactoryId { get; }

    /// <summary>The repository root (holds OfflinePki.sln).</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>Runs ops/dev-pki.sh into a fresh temp directory.</summary>
    public static TestPki Create(string factoryId, string? directory = null, string mirrorUrl = "http://127.0.0.1:8080")
    {
        directory ??= Path.Combine(Path.GetTempPath(), "offlinepki-tests", Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(directory);
        Tool.Run("bash", [Path.Combine(RepoRoot, "ops", "dev-pki.sh"), directory, "--factory", factoryId, "--mirror-url", mirrorUrl])
            .EnsureSuccess("ops/dev-pki.sh");
        return new TestPki(directory, factoryId);
    }

    /// <summary>Path of a file in the PKI directory, e.g. Path("issuing-ca-F1.crt").</summary>
    public string PathOf(string name) => System.IO.Path.Combine(Directory, name);

    /// <summary>Loads a certificate with its private key (PEM pair NAME.crt / NAME.key).</summary>
    public X509Certificate2 CertWithKey(string name) => X509Certificate2.CreateFromPemFile(PathOf(name + ".crt"), PathOf(name + ".key"));

    /// <summary>Loads a certificate (NAME.crt).</summary>
    public X509Certificate2 Cert(string name) => X509CertificateLoader.LoadCertificateFromFile(PathOf(name + ".crt"));

    /// <summary>The root CA certificate.</summary>
    public X509Certificate2 Root => Cert("root-ca");

    /// <summary>The issuing CA certificate with its key.</summary>
    public X509Certificate2 IssuingCa => CertWithKey("issuing-ca-" + FactoryId);

    /// <summary>
    /// An HTTP client presenting <paramref name="clientName"/>'s certificate (e.g. "station-01") and trusting only the
    /// TLS/RA CA for the server, as a station or a sync client does.
    /// </summary>
    public HttpClient MtlsClient(string clientName)
    {
        var handler = new SocketsHttpHandler();
        handler.SslOptions.ClientCertificates = [CertWithKey(clientName)];
        var tlsCa = Cert("tls-ca");
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) =>
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(tlsCa);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return cert is X509Certificate2 c && chain.Build(c);
        };
        return new HttpClient(handler);
    }

    private static string FindRepoRoot()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d is not null && !File.Exists(System.IO.Path.Combine(d.FullName, "OfflinePki.sln")))
        {
            d = d.Parent;
        }

        return d?.FullName ?? throw new InvalidOperationException("cannot find OfflinePki.sln above the test binaries");
    }
}
