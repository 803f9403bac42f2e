using System.Security.Cryptography.X509Certificates;
using OfflinePki.Journal.V1;

namespace OfflinePki.Journal;

/// <summary>What <see cref="JournalFileVerifier.Verify"/> found in a journal file that verified.</summary>
/// <param name="Entries">Entries verified (seq 1 to <paramref name="HeadSeq"/>).</param>
/// <param name="CertificatesIssued">Certificate entries, each checked against the issuing CA.</param>
/// <param name="Checkpoints">Checkpoint entries, each signature verified.</param>
/// <param name="HeadSeq">Seq of the last entry.</param>
/// <param name="HeadHash">32-byte hash of the last entry.</param>
/// <param name="LastCheckpointSeq">Seq of the last checkpoint entry.</param>
/// <param name="UnverifiedTailEntries">
/// Entries after the last checkpoint (<paramref name="HeadSeq"/> − <paramref name="LastCheckpointSeq"/>): hash-chained
/// but not yet covered by a signature, so anyone who can write the file could have forged them.
/// </param>
/// <param name="TornTailBytes">Bytes of an incomplete last record (a crash mid-write, never acknowledged); 0 normally. The writer truncates them at its next start.</param>
/// <param name="JournalId">16-byte journal id.</param>
/// <param name="FactoryId">Factory id from the genesis entry.</param>
/// <param name="Anchor">The journal's anchor, for verifying later ranges against it.</param>
public sealed record JournalVerificationReport(
    ulong Entries,
    ulong CertificatesIssued,
    ulong Checkpoints,
    ulong HeadSeq,
    byte[] HeadHash,
    ulong LastCheckpointSeq,
    ulong UnverifiedTailEntries,
    long TornTailBytes,
    byte[] JournalId,
    string FactoryId,
    JournalAnchor Anchor);

/// <summary>
/// Verifies a whole journal file with nothing but the file and the root certificate (brief, "The journal":
/// "Verification"): every hash, the chain, the genesis CA and signer against the root, every issued certificate
/// against the issuing CA, every checkpoint signature. Streams the file; memory does not grow with it.
/// </summary>
public static class JournalFileVerifier
{
    /// <summary>Verifies <paramref name="journalPath"/> (a journal.log file, or the journal directory).</summary>
    /// <param name="journalPath">Path of <c>journal.log</c> or of the directory holding it.</param>
    /// <param name="root">The trusted root certificate.</param>
    /// <returns>The report; <see cref="JournalVerificationReport.UnverifiedTailEntries"/> and <see cref="JournalVerificationReport.TornTailBytes"/> say what is not covered.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    /// <exception cref="JournalVerificationException">The journal fails verification; the exception names the first bad seq and the fault.</exception>
    public static JournalVerificationReport Verify(string journalPath, X509Certificate2 root)
    {
        ArgumentNullException.ThrowIfNull(journalPath);
        ArgumentNullException.ThrowIfNull(root);
        if (Directory.Exists(journalPath))
        {
            journalPath = Path.Combine(journalPath, JournalFileFormat.FileName);
        }

        using var stream = new FileStream(journalPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16, FileOptions.SequentialScan);
        long fileLength = stream.Length;
        if (!JournalFileFormat.ReadMagic(stream, out _))
        {
            throw new JournalVerificationException(0, JournalFault.Malformed, $"{journalPath} is not an OfflinePki journal (bad magic)");
        }

        using var verifier = new JournalChainVerifier(root, maxEntryBytes: JournalFileFormat.MaxRecordBytes) { MaterializeIssuedCertificates = false };
        ulong entries = 0, certificates = 0, checkpoints = 0;
        long offset = JournalFileFormat.Magic.Length;
        long torn = 0;
        var buffer = new byte[4096];
        while (true)
        {
            var status = JournalFileFormat.ReadRecord(stream, ref buffer, out var entry, out int length);
            if (status == JournalFileFormat.ReadStatus.End)
            {
                break;
            }

            ulong next = verifier.Head.Seq + 1;
            if (status is JournalFileFormat.ReadStatus.ShortPrefix or JournalFileFormat.ReadStatus.ShortBody)
            {
                torn = fileLength - offset;
                break;
            }

            if (status != JournalFileFormat.ReadStatus.Ok)
            {
                throw new JournalVerificationException(next, JournalFault.Malformed, $"record at byte offset {offset} is {status}");
            }

            var v = verifier.Accept(entry!);
            entries++;
            switch (v.Entry.Type)
            {
                case EntryType.CertificateIssued: certificates++; break;
                case EntryType.Checkpoint: checkpoints++; break;
            }

            offset += length;
        }

        if (verifier.Anchor is null)
        {
            throw new JournalVerificationException(1, JournalFault.Malformed, $"{journalPath} holds no genesis entry");
        }

        var head = verifier.Head;
        return new JournalVerificationReport(entries, certificates, checkpoints, head.Seq, head.Hash, verifier.LastCheckpointSeq,
            head.Seq - verifier.LastCheckpointSeq, torn, verifier.Anchor.JournalId, verifier.Anchor.FactoryId, verifier.Anchor);
    }
}
