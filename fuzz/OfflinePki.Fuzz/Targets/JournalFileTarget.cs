using OfflinePki.Journal;

namespace OfflinePki.Fuzz;

/// <summary>A journal file (magic, then length-prefixed records) through <see cref="JournalFileReader"/>: open, then read every entry.</summary>
internal sealed class JournalFileTarget : FuzzTarget
{
    public override string Name => "journal-file";

    public override void Run(byte[] data)
    {
        var path = ScratchFile("journal.bin", data);
        try
        {
            var reader = JournalFileReader.Open(path);
            foreach (var entry in reader.ReadFrom(1))
            {
                _ = entry.Seq;
            }
        }
        catch (JournalUnavailableException)
        {
        }
    }
}
