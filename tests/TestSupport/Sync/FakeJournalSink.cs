using System.Text;
using OfflinePki.Registry;

namespace OfflinePki.Tests.Sync;

/// <summary>An in-memory <see cref="IJournalSink"/> whose transactions stage everything until Commit.</summary>
internal sealed class FakeJournalSink : IJournalSink
{
    private readonly object _gate = new();
    private readonly Dictionary<string, JournalState> _journals = [];
    private readonly SortedDictionary<string, (byte[] Hash, int Type, byte[] Raw)> _entries = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, IssuedCertificateRecord> _certificates = new(StringComparer.Ordinal);

    public int Commits { get; private set; }

    public int EntryCount { get { lock (_gate) { return _entries.Count; } } }

    public IReadOnlyList<IssuedCertificateRecord> Certificates { get { lock (_gate) { return [.. _certificates.Values]; } } }

    public JournalState? GetJournal(ReadOnlySpan<byte> journalId)
    {
        lock (_gate)
        {
            return _journals.GetValueOrDefault(Convert.ToHexString(journalId));
        }
    }

    public byte[]? GetEntryHash(ReadOnlySpan<byte> journalId, ulong seq)
    {
        lock (_gate)
        {
            return _entries.TryGetValue(Key(journalId, seq), out var e) ? e.Hash : null;
        }
    }

    public IJournalApplyTransaction BeginApply() => new Tx(this);

    /// <summary>A deterministic dump of everything held, to compare before/after a rejected push.</summary>
    public string Snapshot()
    {
        lock (_gate)
        {
            var sb = new StringBuilder();
            foreach (var (k, j) in _journals.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                sb.Append(k).Append(' ').Append(j.FactoryId).Append(' ').Append(j.HeadSeq).Append(' ').AppendLine(Convert.ToHexString(j.HeadHash));
            }

            foreach (var (k, e) in _entries)
            {
                sb.Append(k).Append(' ').AppendLine(Convert.ToHexString(e.Hash));
            }

            foreach (var (k, c) in _certificates)
            {
                sb.Append(k).Append(' ').Append(c.DeviceId).Append(' ').AppendLine(c.Seq.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            return sb.ToString();
        }
    }

    private static string Key(ReadOnlySpan<byte> journalId, ulong seq) => Convert.ToHexString(journalId) + ":" + seq.ToString("D20", System.Globalization.CultureInfo.InvariantCulture);

    private sealed class Tx(FakeJournalSink sink) : IJournalApplyTransaction
    {
        private readonly List<(string Key, byte[] Hash, int Type, byte[] Raw)> _entries = [];
        private readonly List<IssuedCertificateRecord> _certificates = [];
        private JournalState? _state;
        private bool _done;

        public void AddEntry(ReadOnlySpan<byte> journalId, ulong seq, ReadOnlySpan<byte> hash, int entryType, ReadOnlySpan<byte> rawEntry)
            => _entries.Add((Key(journalId, seq), hash.ToArray(), entryType, rawEntry.ToArray()));

        public void AddCertificate(IssuedCertificateRecord record) => _certificates.Add(record);

        public void SetJournal(JournalState state) => _state = state;

        public void Commit()
        {
            if (_done)
            {
                throw new InvalidOperationException("transaction already finished");
            }

            _done = true;
            lock (sink._gate)
            {
                foreach (var c in _certificates)
                {
                    var k = Convert.ToHexString(c.IssuerKeyHash) + ":" + Convert.ToHexString(c.Serial);
                    if (!sink._certificates.TryAdd(k, c))
                    {
                        throw new InvalidOperationException("duplicate certificate " + k);
                    }
                }

                foreach (var e in _entries)
                {
                    if (!sink._entries.TryAdd(e.Key, (e.Hash, e.Type, e.Raw)))
                    {
                        throw new InvalidOperationException("duplicate entry " + e.Key);
                    }
                }

                if (_state is not null)
                {
                    sink._journals[Convert.ToHexString(_state.JournalId)] = _state;
                }

                sink.Commits++;
            }
        }

        public void Dispose() => _done = true;
    }
}
