using Google.Protobuf;
using OfflinePki.Registry;
using OfflinePki.Sync;
using OfflinePki.Sync.V1;

namespace OfflinePki.Fuzz;

/// <summary>
/// The sync push stream: varint-length-delimited <see cref="PushRequest"/> messages (as the gRPC client stream delivers
/// them, one message per frame) applied by <see cref="SyncApplier"/> to an empty in-memory mirror that trusts the
/// fixture root. The caller is authenticated as the factory the metadata names, so the verifier is reached.
/// </summary>
internal sealed class SyncPushTarget : FuzzTarget
{
    public override string Name => "sync-push";

    public override void Run(byte[] data)
    {
        var messages = new List<PushRequest>();
        using (var input = new MemoryStream(data))
        {
            try
            {
                while (input.Position < input.Length)
                {
                    messages.Add(PushRequest.Parser.ParseDelimitedFrom(input));
                }
            }
            catch (InvalidProtocolBufferException)
            {
                return;
            }
        }

        string factory = messages.FirstOrDefault()?.Metadata?.FactoryId is { Length: > 0 } f ? f : "F1";
        var applier = new SyncApplier(new EmptySink(), FixtureRoot);
        try
        {
            _ = applier.ApplyAsync(new CallerIdentity("fuzz", factory), Stream(messages)).GetAwaiter().GetResult();
        }
        catch (SyncRejectedException)
        {
        }
    }

    /// <summary>Enumerates a push stream to its end.</summary>
    internal static void Drain(IAsyncEnumerable<PushRequest> stream)
    {
        var e = stream.GetAsyncEnumerator();
        try
        {
            while (e.MoveNextAsync().AsTask().GetAwaiter().GetResult())
            {
                _ = e.Current.CalculateSize();
            }
        }
        finally
        {
            e.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

#pragma warning disable CS1998 // a synchronous async stream: the messages are already in memory
    private static async IAsyncEnumerable<PushRequest> Stream(List<PushRequest> messages)
#pragma warning restore CS1998
    {
        foreach (var m in messages)
        {
            yield return m;
        }
    }

    /// <summary>A mirror that holds nothing: every journal is new; applied pushes are discarded.</summary>
    private sealed class EmptySink : IJournalSink
    {
        public JournalState? GetJournal(ReadOnlySpan<byte> journalId) => null;

        public byte[]? GetEntryHash(ReadOnlySpan<byte> journalId, ulong seq) => null;

        public IJournalApplyTransaction BeginApply() => new Transaction();

        private sealed class Transaction : IJournalApplyTransaction
        {
            public void AddEntry(ReadOnlySpan<byte> journalId, ulong seq, ReadOnlySpan<byte> hash, int entryType, ReadOnlySpan<byte> rawEntry)
            {
            }

            public void AddCertificate(IssuedCertificateRecord record)
            {
            }

            public void SetJournal(JournalState state)
            {
            }

            public void Commit()
            {
            }

            public void Dispose()
            {
            }
        }
    }
}
