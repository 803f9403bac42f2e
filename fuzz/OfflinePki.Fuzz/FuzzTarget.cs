using System.Security.Cryptography.X509Certificates;

namespace OfflinePki.Fuzz;

/// <summary>
/// One untrusted parser under fuzz. <see cref="Run"/> feeds it one input and catches only the exceptions the parser
/// documents for bad input; anything else escapes and is a crash (afl-fuzz records it, the replay test fails on it).
/// </summary>
internal abstract class FuzzTarget
{
    /// <summary>The target's name: the program argument, the corpus folder fuzz/corpus/NAME and fuzz/crashes/NAME.</summary>
    public abstract string Name { get; }

    /// <summary>Runs one input.</summary>
    public abstract void Run(byte[] data);

    /// <summary>Every target, in the order ops/fuzz.sh all runs them.</summary>
    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        new EstTarget(),
        new OcspPostTarget(),
        new OcspGetTarget(),
        new JournalCodecTarget(),
        new JournalFileTarget(),
        new SyncPushTarget(),
        new ExportBundleTarget(),
        new OrderCmsTarget(),
        new OrderJsonTarget(),
        new DeviceLinesTarget(),
        new ConfigTarget(),
    ];

    /// <summary>The target of that name.</summary>
    public static FuzzTarget? Find(string name) => All.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.Ordinal));

    /// <summary>The OEM root of the seed corpus (fuzz/fixtures/root-ca.crt, a public certificate).</summary>
    protected static X509Certificate2 FixtureRoot => Root.Value;

    private static readonly Lazy<X509Certificate2> Root = new(() =>
        X509CertificateLoader.LoadCertificateFromFile(Path.Combine(AppContext.BaseDirectory, "fixtures", "root-ca.crt")));

    /// <summary>A per-process scratch file for parsers that read files; rewritten with each input.</summary>
    protected static string ScratchFile(string name, byte[] data)
    {
        var dir = Path.Combine(Path.GetTempPath(), "offlinepki-fuzz-" + Environment.ProcessId);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, name);
        File.WriteAllBytes(path, data);
        return path;
    }
}
