using Google.Protobuf;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Tests.Journal;

namespace OfflinePki.Tests.Support;

internal sealed class BuilderJournal(JournalTestData.Builder b) : IJournalReader, IJournalAppender
{
    public JournalHead Head => b.Head;

    public IEnumerable<JournalEntry> ReadFrom(ulong firstSeq) => b.Entries.Where(e => e.Seq >= firstSeq).ToList();

    public Task<JournalEntry> AppendAsync(EntryType type, IMessage payload, CancellationToken cancellationToken = default) => Task.FromResult(b.Add(type, payload));

    public Task<JournalEntry> CheckpointAsync(CancellationToken cancellationToken = default) => Task.FromResult(b.AddCheckpoint());
}
