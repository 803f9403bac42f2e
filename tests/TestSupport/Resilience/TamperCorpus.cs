using Google.Protobuf;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Tests.Journal;

namespace OfflinePki.Tests.Resilience;

/// <summary>
/// Generates the tamper corpus listed in testdata/journal/cases.tsv: damaged journal streams derived deterministically
/// (same structure, same damaged seq; the bytes differ per run because the test PKI's keys are made per run and never
/// committed) from an honest journal of the test PKI. Each case is an optional honest prefix the mirror already holds,
/// then one push that must be rejected.
/// </summary>
/// <remarks>
/// The honest journal: genesis (seq 1), certificates DEV-0000..DEV-0003 (seq 2..5), checkpoint (seq 6),
/// certificates DEV-0004..DEV-0005 (seq 7..8), checkpoint (seq 9). Files are written as length-delimited
/// <see cref="JournalEntry"/> messages: <c>NAME.prefix</c> (may be empty) and <c>NAME.stream</c>, plus <c>NAME.first</c>
/// holding the push's first seq.
/// </remarks>
internal static class TamperCorpus
{
    public const int HonestCertificates = 6;

    /// <summary>One damaged push.</summary>
    /// <param name="Name">Case name (the manifest's first column).</param>
    /// <param name="Prefix">Entries the mirror holds before the push (applied honestly first), possibly empty.</param>
    /// <param name="FirstSeq">The push metadata's first_seq.</param>
    /// <param name="Stream">The damaged entries pushed.</param>
    /// <param name="Other">Another factory's journal the mirror already holds (many factories per mirror), or empty.</param>
    public sealed record Case(string Name, IReadOnlyList<JournalEntry> Prefix, ulong FirstSeq, IReadOnlyList<JournalEntry> Stream, IReadOnlyList<JournalEntry>? Other = null)
    {
        /// <summary><see cref="Other"/>, never null.</summary>
        public IReadOnlyList<JournalEntry> OtherJournal => Other ?? [];
    }

    /// <summary>The honest journal every case is derived from.</summary>
    public static JournalTestData.Builder Honest()
    {
        var b = new JournalTestData.Builder();
        for (int i = 0; i < 4; i++)
        {
            b.AddCertificate($"DEV-{i:D4}");
        }

        b.AddCheckpoint();
        b.AddCertificate("DEV-0004");
        b.AddCertificate("DEV-0005");
        b.AddCheckpoint();
        return b;
    }

    /// <summary>All cases, in manifest order.</summary>
    public static IReadOnlyList<Case> Generate()
    {
        var m = JournalTestData.M;
        var h = Honest();
        var all = h.Entries;
        JournalEntry E(ulong seq) => all[(int)seq - 1].Clone();
        List<JournalEntry> Range(ulong from, ulong to) => all.Where(e => e.Seq >= from && e.Seq <= to).Select(e => e.Clone()).ToList();
        List<JournalEntry> With(ulong seq, JournalEntry replacement) => all.Select(e => e.Seq == seq ? replacement : e.Clone()).ToList();
        var none = Array.Empty<JournalEntry>();
        var cases = new List<Case>();

        // Bit flips: payload (certificate seq 4), hash (seq 4), checkpoint signature (seq 6).
        var p = E(4);
        p.Payload = JournalTestData.Flip(p.Payload, p.Payload.Length / 2);
        cases.Add(new("payload_bit_flip", none, 1, With(4, p)));
        var hf = E(4);
        hf.Hash = JournalTestData.Flip(hf.Hash, 7);
        cases.Add(new("hash_bit_flip", none, 1, With(4, hf)));
        var cp = E(6);
        var cpp = Checkpoint.Parser.ParseFrom(cp.Payload);
        cpp.Signature = JournalTestData.Flip(cpp.Signature, cpp.Signature.Length - 5);
        cp.Payload = cpp.ToByteString();
        cases.Add(new("signature_bit_flip", none, 1, With(6, JournalTestData.Rehash(cp))));

        // Deleted, reordered and duplicated entries.
        cases.Add(new("deleted_entry", none, 1, all.Where(e => e.Seq != 4).Select(e => e.Clone()).ToList()));
        var reordered = Range(1, 3);
        reordered.Add(E(5));
        reordered.Add(E(4));
        reordered.AddRange(Range(6, 9));
        cases.Add(new("reordered_entries", none, 1, reordered));
        var duplicated = Range(1, 4);
        duplicated.Add(E(4));
        duplicated.AddRange(Range(5, 9));
        cases.Add(new("duplicated_entry", none, 1, duplicated));

        // A truncated tail: the last record (the checkpoint at seq 9) cut in half.
        var cut = E(9);
        cut.Payload = ByteString.CopyFrom(cut.Payload.Span[..(cut.Payload.Length / 2)]);
        cases.Add(new("truncated_tail", none, 1, With(9, cut)));

        // A fork: the mirror holds 1..9; a second history shares 1..6 and diverges at 7.
        var fork = new JournalTestData.Builder();
        fork.Entries.Clear();
        fork.Entries.AddRange(Range(1, 6));
        fork.Time = h.Time + 1000;
        fork.AddCertificate("DEV-FORK");
        fork.AddCheckpoint(journalId: h.JournalId);
        cases.Add(new("fork", Range(1, 9), 1, fork.Entries.Select(e => e.Clone()).ToList()));

        // A replayed older checkpoint: the checkpoint payload of seq 6 re-sealed as seq 9.
        var replay = Rechain(Range(1, 8), [(EntryType.Checkpoint, E(6).Payload)], h.Time);
        cases.Add(new("replayed_checkpoint", none, 1, replay));

        // A checkpoint signed by an unknown key (naming its own certificate), and a signer without the journal-signer EKU.
        var (rogueCert, rogueKey) = m.RootSignedLeaf(withJournalEku: true);
        var unknown = Rebuild(Range(1, 5), h.Time);
        unknown.AddCheckpoint(rogueKey, System.Security.Cryptography.SHA256.HashData(rogueCert.RawData), h.JournalId);
        cases.Add(new("checkpoint_unknown_key", none, 1, unknown.Entries.ToList()));
        var (noEkuCert, noEkuKey) = m.RootSignedLeaf(withJournalEku: false);
        var noEku = new JournalTestData.Builder(signerCertificate: noEkuCert.RawData);
        noEku.AddCertificate("DEV-NOEKU");
        noEku.AddCheckpoint(noEkuKey);
        cases.Add(new("signer_without_eku", none, 1, noEku.Entries.ToList()));

        // A certificate signed by another CA (same issuer name, another key).
        var foreign = Rebuild(Range(1, 6), h.Time);
        foreign.AddCertificate("DEV-FOREIGN", m.ImpostorCa());
        foreign.AddCheckpoint(journalId: h.JournalId);
        cases.Add(new("foreign_ca_certificate", none, 1, foreign.Entries.ToList()));

        // seq 0 and an overflowing seq (2^64-1), each self-consistently hashed.
        var zero = E(2);
        zero.Seq = 0;
        cases.Add(new("seq_zero", none, 1, [E(1), JournalTestData.Rehash(zero)]));
        var overflow = E(2);
        overflow.Seq = ulong.MaxValue;
        cases.Add(new("seq_overflow", none, 1, [E(1), JournalTestData.Rehash(overflow)]));

        // An entry over the 1 MiB size limit.
        var big = Rebuild(Range(1, 6), h.Time);
        big.AddBatchEvent(new string('x', (1 << 20) + 16));
        big.AddCheckpoint(journalId: h.JournalId);
        cases.Add(new("oversized_entry", none, 1, big.Entries.ToList()));

        // A stream that mixes two factories' journals: F1's 1..6, then F2's 7..8 (its own chain and checkpoint). The mirror
        // already holds F2's journal (it serves both factories), so it names the foreign journal instead of reporting a fork.
        var f2 = new JournalTestData.Builder(factoryId: "F2");
        for (int i = 0; i < HonestCertificates; i++)
        {
            f2.AddCertificate($"F2-{i:D4}");
        }

        f2.AddCheckpoint();
        var mixed = Range(1, 6);
        mixed.AddRange(f2.Entries.Where(e => e.Seq >= 7).Select(e => e.Clone()));
        cases.Add(new("mixed_factories", none, 1, mixed, f2.Entries.Select(e => e.Clone()).ToList()));

        // The same stream when the mirror does not hold F2's journal: nothing proves whose entries these are, so a fork.
        cases.Add(new("mixed_factories_unknown", none, 1, mixed.Select(e => e.Clone()).ToList()));

        // A factory F3 with its own issuing CA, of which the mirror holds only the genesis: the spliced-in entry at seq 7
        // matches no held entry, but its certificate is signed by F3's issuing CA and not by F1's.
        using var f3Ca = m.ImpostorCa(sameName: false);
        var f3 = new JournalTestData.Builder(caChain: [f3Ca.RawData], factoryId: "F3");
        for (int i = 0; i < HonestCertificates; i++)
        {
            f3.AddCertificate($"F3-{i:D4}", f3Ca);
        }

        f3.AddCheckpoint();
        var byIssuer = Range(1, 6);
        byIssuer.AddRange(f3.Entries.Where(e => e.Seq >= 7).Select(e => e.Clone()));
        cases.Add(new("mixed_factories_by_issuer", none, 1, byIssuer, [f3.Entries[0].Clone()]));
        return cases;
    }

    /// <summary>Writes every case under <paramref name="directory"/> (NAME.prefix, NAME.stream, NAME.first).</summary>
    public static void WriteTo(string directory)
    {
        Directory.CreateDirectory(directory);
        foreach (var c in Generate())
        {
            Write(Path.Combine(directory, c.Name + ".prefix"), c.Prefix);
            Write(Path.Combine(directory, c.Name + ".stream"), c.Stream);
            File.WriteAllText(Path.Combine(directory, c.Name + ".first"), c.FirstSeq.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (c.OtherJournal.Count > 0)
            {
                Write(Path.Combine(directory, c.Name + ".other"), c.OtherJournal);
            }
        }
    }

    /// <summary>Reads a case written by <see cref="WriteTo"/>.</summary>
    public static Case Read(string directory, string name) => new(
        name,
        ReadEntries(Path.Combine(directory, name + ".prefix")),
        ulong.Parse(File.ReadAllText(Path.Combine(directory, name + ".first")), System.Globalization.CultureInfo.InvariantCulture),
        ReadEntries(Path.Combine(directory, name + ".stream")),
        File.Exists(Path.Combine(directory, name + ".other")) ? ReadEntries(Path.Combine(directory, name + ".other")) : null);

    /// <summary>
    /// The manifest rows: case name, expected fault, expected seq, and optionally the alert's reason words (default: the
    /// fault in words) and a text the error must contain.
    /// </summary>
    public static IReadOnlyList<(string Name, string Fault, ulong Seq, string? Reason, string? Detail)> Manifest()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "testdata", "journal", "cases.tsv");
        return File.ReadAllLines(path)
            .Where(l => l.Length > 0 && l[0] != '#')
            .Select(l => l.Split('\t'))
            .Select(f => (f[0], f[1], ulong.Parse(f[2], System.Globalization.CultureInfo.InvariantCulture), f.Length > 3 ? f[3] : null, f.Length > 4 ? f[4] : null))
            .ToList();
    }

    private static void Write(string path, IEnumerable<JournalEntry> entries)
    {
        using var f = File.Create(path);
        foreach (var e in entries)
        {
            e.WriteDelimitedTo(f);
        }
    }

    private static List<JournalEntry> ReadEntries(string path)
    {
        using var f = File.OpenRead(path);
        var list = new List<JournalEntry>();
        while (f.Position < f.Length)
        {
            list.Add(JournalEntry.Parser.ParseDelimitedFrom(f));
        }

        return list;
    }

    /// <summary>A builder continuing after <paramref name="prefix"/>; its checkpoints must name the prefix's journal id explicitly.</summary>
    private static JournalTestData.Builder Rebuild(List<JournalEntry> prefix, long time)
    {
        var b = new JournalTestData.Builder();
        b.Entries.Clear();
        b.Entries.AddRange(prefix);
        b.Time = time + 1000;
        return b;
    }

    private static List<JournalEntry> Rechain(List<JournalEntry> prefix, IEnumerable<(EntryType Type, ByteString Payload)> more, long time)
    {
        var list = prefix.ToList();
        foreach (var (type, payload) in more)
        {
            var head = JournalCodec.HeadOf(list[^1]);
            var e = new JournalEntry { Seq = head.Seq + 1, PrevHash = ByteString.CopyFrom(head.Hash), TimeUnixMicros = ++time, Type = type, Payload = payload };
            list.Add(JournalTestData.Rehash(e));
        }

        return list;
    }
}
