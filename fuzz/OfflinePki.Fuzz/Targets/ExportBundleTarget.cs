using OfflinePki.Sync;

namespace OfflinePki.Fuzz;

/// <summary>An export bundle file through <see cref="ExportBundleFile.Open"/>, then its first entry and its whole push stream.</summary>
internal sealed class ExportBundleTarget : FuzzTarget
{
    public override string Name => "export-bundle";

    public override void Run(byte[] data)
    {
        var path = ScratchFile("bundle.bin", data);
        try
        {
            var bundle = ExportBundleFile.Open(path);
            _ = bundle.FirstEntry();
            SyncPushTarget.Drain(bundle.AsPushStream());
        }
        catch (ExportBundleException)
        {
        }
    }
}
