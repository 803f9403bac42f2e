using System.Security.Cryptography;
using Google.Protobuf;
using NUnit.Framework;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using static OfflinePki.Tests.Journal.JournalTestData;

namespace OfflinePki.Tests.Journal;

public class JournalChainVerifierTests
{
    private static JournalChainVerifier NewVerifier(int maxEntryBytes = 1 << 20) => new(M.Root, maxEntryBytes: maxEntryBytes);

    /// <summary>genesis, 3 certs, checkpoint(5), batch event, checkpoint(7), 1 cert (seq 8).</summary>
    private static Builder Sample()
    {
        var b = new Builder();
        b.AddCertificate("dev-1");
        b.AddCertificate("dev-2");
        b.AddCertificate("dev-3");
        b.AddCheckpoint();
        b.AddBatchEvent();
        b.AddCheckpoint();
        b.AddCertificate("dev-4");
        return b;
    }

    private static JournalVerificationException Reject(IEnumerable<JournalEntry> entries, JournalChainVerifier? v = null)
    {
        v ??= NewVerifier();
        var ex = Assert.Throws<JournalVerificationException>(() =>
        {
            foreach (var e in entries)
            {
                v.Accept(e);
            }
        });
        return ex!;
    }

    private static List<JournalEntry> Replace(Builder b, int index, JournalEntry e)
    {
        var list = b.Entries.ToList();
        list[index] = e;
        return list;
    }

    [Test]
    public void Valid_journal_is_accepted()
    {
        var b = Sample();
        using var v = NewVerifier();
        var accepted = b.Entries.Select(v.Accept).ToList();
        Assert.That(v.Head.Seq, Is.EqualTo(8UL));
        Assert.That(v.Head.Hash, Is.EqualTo(b.Entries[^1].Hash.ToByteArray()));
        Assert.That(v.LastCheckpointSeq, Is.EqualTo(7UL));
        Assert.That(v.Anchor!.JournalId, Is.EqualTo(b.JournalId));
        Assert.That(v.Anchor.FactoryId, Is.EqualTo(M.FactoryId));
        Assert.That(accepted[0].Payload, Is.InstanceOf<Genesis>());
        Assert.That(accepted[1].IssuedCertificate!.Subject, Does.Contain("dev-1"));
        Assert.That(accepted[4].Payload, Is.InstanceOf<Checkpoint>());
        Assert.That(accepted[5].IssuedCertificate, Is.Null);
    }

    [Test]
    public void Verifier_resumes_from_anchor_and_head()
    {
        var b = Sample();
        using var first = NewVerifier();
        foreach (var e in b.Entries.Take(5))
        {
            first.Accept(e);
        }

        using var resumed = new JournalChainVerifier(M.Root, first.Anchor, first.Head) { MaterializeIssuedCertificates = false };
        foreach (var e in b.Entries.Skip(5))
        {
            Assert.That(resumed.Accept(e).IssuedCertificate, Is.Null);
        }

        Assert.That(resumed.Head.Seq, Is.EqualTo(8UL));
        Assert.That(resumed.LastCheckpointSeq, Is.EqualTo(7UL));

        // A foreign certificate is still caught after resuming.
        using var impostor = M.ImpostorCa();
        b.AddCertificate("dev-x", impostor);
        Assert.That(Assert.Throws<JournalVerificationException>(() => resumed.Accept(b.Entries[^1]))!.Fault, Is.EqualTo(JournalFault.ForeignCertificate));
    }

    [Test]
    public void Resuming_needs_an_anchor() =>
        Assert.Throws<ArgumentException>(() => _ = new JournalChainVerifier(M.Root, null, new JournalHead(5, new byte[32])));

    [Test]
    public void Anchor_with_empty_head_requires_the_same_genesis()
    {
        var b = Sample();
        var other = new Builder();
        using var v1 = NewVerifier();
        v1.Accept(b.Entries[0]);
        using var v2 = new JournalChainVerifier(M.Root, v1.Anchor);
        Assert.That(Reject(other.Entries, v2).Fault, Is.EqualTo(JournalFault.WrongJournal));
        using var v3 = new JournalChainVerifier(M.Root, v1.Anchor);
        Assert.DoesNotThrow(() => b.Entries.ForEach(e => v3.Accept(e)));
    }

    [Test]
    public void Flipped_payload_byte_is_a_bad_hash()
    {
        var b = Sample();
        var e = b.Entries[2].Clone();
        e.Payload = Flip(e.Payload, 40);
        var ex = Reject(Replace(b, 2, e));
        Assert.That(ex.Fault, Is.EqualTo(JournalFault.BadHash));
        Assert.That(ex.Seq, Is.EqualTo(3UL));
    }

    [Test]
    public void Flipped_hash_byte_is_a_bad_hash()
    {
        var b = Sample();
        var e = b.Entries[3].Clone();
        e.Hash = Flip(e.Hash, 0);
        Assert.That(Reject(Replace(b, 3, e)).Fault, Is.EqualTo(JournalFault.BadHash));
    }

    [Test]
    public void Flipped_prev_hash_byte_is_a_bad_hash()
    {
        var b = Sample();
        var e = b.Entries[3].Clone();
        e.PrevHash = Flip(e.PrevHash, 31);
        Assert.That(Reject(Replace(b, 3, e)).Fault, Is.EqualTo(JournalFault.BadHash));
    }

    [Test]
    public void Flipped_time_is_a_bad_hash()
    {
        var b = Sample();
        var e = b.Entries[3].Clone();
        e.TimeUnixMicros++;
        Assert.That(Reject(Replace(b, 3, e)).Fault, Is.EqualTo(JournalFault.BadHash));
    }

    [Test]
    public void Flipped_checkpoint_signature_is_a_bad_signature()
    {
        var b = Sample();
        var e = b.Entries[4].Clone();
        var cp = Checkpoint.Parser.ParseFrom(e.Payload);
        cp.Signature = Flip(cp.Signature, cp.Signature.Length - 1);
        e.Payload = cp.ToByteString();
        var ex = Reject(Replace(b, 4, Rehash(e)));
        Assert.That(ex.Fault, Is.EqualTo(JournalFault.BadSignature));
        Assert.That(ex.Seq, Is.EqualTo(5UL));
    }

    [Test]
    public void Deleted_entry_is_a_gap()
    {
        var b = Sample();
        var list = b.Entries.ToList();
        list.RemoveAt(3);
        var ex = Reject(list);
        Assert.That(ex.Fault, Is.EqualTo(JournalFault.Gap));
        Assert.That(ex.Seq, Is.EqualTo(5UL));
    }

    [Test]
    public void Reordered_entries_are_a_gap()
    {
        var b = Sample();
        var list = b.Entries.ToList();
        (list[2], list[3]) = (list[3], list[2]);
        Assert.That(Reject(list).Fault, Is.EqualTo(JournalFault.Gap));
    }

    [Test]
    public void Duplicated_entry_is_a_fork()
    {
        var b = Sample();
        var list = b.Entries.ToList();
        list.Insert(3, list[2]);
        Assert.That(Reject(list).Fault, Is.EqualTo(JournalFault.Fork));
    }

    [Test]
    public void Entry_chained_to_another_history_is_a_fork()
    {
        var b = Sample();
        // An alternative seq 3 and a seq 4 chained to it; give the verifier the real seq 1..3 and the forked seq 4.
        var alt3 = JournalCodec.CreateEntry(3, b.Entries[2].TimeUnixMicros, EntryType.BatchEvent, new BatchEvent { BatchId = "evil" }, b.Entries[1].Hash.Span);
        var alt4 = JournalCodec.CreateEntry(4, b.Entries[3].TimeUnixMicros, EntryType.BatchEvent, new BatchEvent { BatchId = "evil2" }, alt3.Hash.Span);
        var ex = Reject(b.Entries.Take(3).Append(alt4));
        Assert.That(ex.Fault, Is.EqualTo(JournalFault.Fork));
        Assert.That(ex.Seq, Is.EqualTo(4UL));
    }

    [Test]
    public void Replayed_old_checkpoint_is_stale()
    {
        var b = Sample();
        var old = Checkpoint.Parser.ParseFrom(b.Entries[4].Payload); // covers seq 4
        b.Add(EntryType.Checkpoint, old);
        var ex = Reject(b.Entries);
        Assert.That(ex.Fault, Is.EqualTo(JournalFault.StaleCheckpoint));
        Assert.That(ex.Seq, Is.EqualTo(9UL));
    }

    [Test]
    public void Checkpoint_by_another_key_claiming_the_signer_is_a_bad_signature()
    {
        var b = Sample();
        var (cert, key) = M.RootSignedLeaf(withJournalEku: true);
        using (cert)
        using (key)
        {
            b.AddCheckpoint(key);
            Assert.That(Reject(b.Entries).Fault, Is.EqualTo(JournalFault.BadSignature));
        }
    }

    [Test]
    public void Checkpoint_naming_another_signer_is_an_unknown_signer()
    {
        var b = Sample();
        var (cert, key) = M.RootSignedLeaf(withJournalEku: true);
        using (cert)
        using (key)
        {
            b.AddCheckpoint(key, SHA256.HashData(cert.RawData));
            Assert.That(Reject(b.Entries).Fault, Is.EqualTo(JournalFault.UnknownSigner));
        }
    }

    [Test]
    public void Checkpoint_of_another_journal_is_wrong_journal()
    {
        var b = Sample();
        b.AddCheckpoint(journalId: RandomNumberGenerator.GetBytes(16));
        Assert.That(Reject(b.Entries).Fault, Is.EqualTo(JournalFault.WrongJournal));
    }

    [Test]
    public void Signer_without_the_journal_eku_is_unknown_even_if_the_root_signed_it()
    {
        var (cert, key) = M.RootSignedLeaf(withJournalEku: false);
        using (cert)
        using (key)
        {
            var b = new Builder(signerCertificate: cert.RawData);
            b.AddCertificate("dev-1");
            b.AddCheckpoint(key);
            var ex = Reject(b.Entries);
            Assert.That(ex.Fault, Is.EqualTo(JournalFault.UnknownSigner));
            Assert.That(ex.Seq, Is.EqualTo(1UL));
            Assert.That(ex.Message, Does.Contain("EKU"));
        }
    }

    [Test]
    public void Root_signed_signer_with_the_eku_is_accepted()
    {
        var (cert, key) = M.RootSignedLeaf(withJournalEku: true);
        using (cert)
        using (key)
        {
            var b = new Builder(signerCertificate: cert.RawData);
            b.AddCertificate("dev-1");
            b.AddCheckpoint(key);
            using var v = NewVerifier();
            Assert.DoesNotThrow(() => b.Entries.ForEach(e => v.Accept(e)));
            Assert.That(v.LastCheckpointSeq, Is.EqualTo(3UL));
        }
    }

    [Test]
    public void Signer_certified_by_the_issuing_ca_is_accepted()
    {
        var (cert, key) = M.RootSignedLeaf(withJournalEku: true, issuer: M.IssuingCa);
        using (cert)
        using (key)
        {
            var b = new Builder(signerCertificate: cert.RawData);
            b.AddCertificate("dev-1");
            b.AddCheckpoint(key);
            using var v = NewVerifier();
            Assert.DoesNotThrow(() => b.Entries.ForEach(e => v.Accept(e)));
        }
    }

    [Test]
    public void Head_is_a_copy()
    {
        var b = Sample();
        using var v = NewVerifier();
        b.Entries.ForEach(e => v.Accept(e));
        v.Head.Hash[0] ^= 1;
        b.AddBatchEvent();
        Assert.DoesNotThrow(() => v.Accept(b.Entries[^1]));
    }

    [Test]
    public void Self_signed_signer_with_the_eku_does_not_chain_to_the_root()
    {
        var (cert, key) = M.RootSignedLeaf(withJournalEku: true, issuer: M.Root /* no key: self-signed */);
        using (cert)
        using (key)
        {
            var b = new Builder(signerCertificate: cert.RawData);
            var ex = Reject(b.Entries);
            Assert.That(ex.Fault, Is.EqualTo(JournalFault.UnknownSigner));
            Assert.That(ex.Message, Does.Contain("does not chain"));
        }
    }

    [Test]
    public void Issuing_ca_outside_the_root_is_unknown()
    {
        using var impostor = M.ImpostorCa(sameName: false);
        var b = new Builder(caChain: [impostor.RawData]);
        Assert.That(Reject(b.Entries).Fault, Is.EqualTo(JournalFault.UnknownSigner));
    }

    [Test]
    public void Issuing_ca_that_is_not_a_ca_is_unknown()
    {
        var b = new Builder(caChain: [M.SignerCert.RawData]);
        var ex = Reject(b.Entries);
        Assert.That(ex.Fault, Is.EqualTo(JournalFault.UnknownSigner));
        Assert.That(ex.Message, Does.Contain("not a CA"));
    }

    [Test]
    public void Certificate_signed_by_another_ca_with_the_same_name_is_foreign()
    {
        using var impostor = M.ImpostorCa(sameName: true);
        var b = Sample();
        b.AddCertificate("dev-evil", impostor);
        var ex = Reject(b.Entries);
        Assert.That(ex.Fault, Is.EqualTo(JournalFault.ForeignCertificate));
        Assert.That(ex.Seq, Is.EqualTo(9UL));
    }

    [Test]
    public void Precheck_in_parallel_then_accept_gives_the_same_verdicts_in_seq_order()
    {
        using var impostor = M.ImpostorCa(sameName: true);
        var b = Sample();
        b.AddCertificate("dev-5");
        b.AddCertificate("dev-evil", impostor); // seq 10
        b.AddCertificate("dev-6");
        using var v = NewVerifier();
        Assert.That(v.TrustCheckedAhead(v.CheckCertificateSignaturesAhead(b.Entries.Take(3).ToList())), Is.Zero, "before the genesis the CA key is unknown: nothing checked ahead");
        v.Accept(b.Entries[0]);
        var rest = b.Entries.Skip(1).ToList();
        Assert.That(v.TrustCheckedAhead(v.CheckCertificateSignaturesAhead(rest)), Is.EqualTo(6), "dev-1..4, dev-5, dev-6: the impostor's certificate is not marked");
        var ex = Assert.Throws<JournalVerificationException>(() =>
        {
            foreach (var e in rest)
            {
                v.Accept(e);
            }
        })!;
        Assert.That(ex.Fault, Is.EqualTo(JournalFault.ForeignCertificate), "the ordered check still verifies what the precheck did not pass");
        Assert.That(ex.Seq, Is.EqualTo(10UL));
        Assert.That(v.Head.Seq, Is.EqualTo(9UL), "everything before it was accepted");
    }

    [Test]
    public void Certificate_with_another_issuer_name_is_foreign()
    {
        using var impostor = M.ImpostorCa(sameName: false);
        var b = Sample();
        b.AddCertificate("dev-evil", impostor);
        Assert.That(Reject(b.Entries).Fault, Is.EqualTo(JournalFault.ForeignCertificate));
    }

    [Test]
    public void Undecodable_certificate_is_malformed()
    {
        var b = Sample();
        b.Add(EntryType.CertificateIssued, new CertificateIssued { Certificate = ByteString.CopyFrom(1, 2, 3), DeviceId = "x" });
        Assert.That(Reject(b.Entries).Fault, Is.EqualTo(JournalFault.Malformed));
    }

    [TestCase(0UL)]
    [TestCase(ulong.MaxValue)]
    public void Seq_out_of_range(ulong seq)
    {
        var e = JournalCodec.CreateEntry(seq, 1, EntryType.BatchEvent, new BatchEvent(), new byte[32]);
        Assert.That(Reject([e]).Fault, Is.EqualTo(JournalFault.OutOfRange));
    }

    [Test]
    public void Oversize_entry_is_out_of_range()
    {
        var b = Sample();
        b.AddBatchEvent(new string('x', 5000));
        var ex = Reject(b.Entries, NewVerifier(maxEntryBytes: 4096));
        Assert.That(ex.Fault, Is.EqualTo(JournalFault.OutOfRange));
        Assert.That(ex.Seq, Is.EqualTo(9UL));
    }

    [TestCase(EntryType.Unspecified)]
    [TestCase((EntryType)99)]
    public void Unknown_type_is_out_of_range(EntryType type)
    {
        var b = Sample();
        b.Add(type, new BatchEvent());
        Assert.That(Reject(b.Entries).Fault, Is.EqualTo(JournalFault.OutOfRange));
    }

    [Test]
    public void Unparsable_payload_is_malformed()
    {
        var b = Sample();
        var e = JournalCodec.CreateEntry(9, b.Time, EntryType.BatchEvent, ByteString.CopyFrom(0xFF, 0xFF, 0xFF), ByteString.CopyFrom(b.Head.Hash));
        Assert.That(Reject(b.Entries.Append(e)).Fault, Is.EqualTo(JournalFault.Malformed));
    }

    [Test]
    public void Short_hash_is_malformed()
    {
        var b = Sample();
        var e = b.Entries[2].Clone();
        e.Hash = ByteString.CopyFrom(new byte[31]);
        Assert.That(Reject(Replace(b, 2, e)).Fault, Is.EqualTo(JournalFault.Malformed));
    }

    [Test]
    public void Second_genesis_is_out_of_range()
    {
        var b = Sample();
        var g = Genesis.Parser.ParseFrom(b.Entries[0].Payload);
        b.Add(EntryType.Genesis, g);
        Assert.That(Reject(b.Entries).Fault, Is.EqualTo(JournalFault.OutOfRange));
    }

    [Test]
    public void First_entry_must_be_genesis()
    {
        var e = JournalCodec.CreateEntry(1, 1, EntryType.BatchEvent, new BatchEvent(), new byte[32]);
        Assert.That(Reject([e]).Fault, Is.EqualTo(JournalFault.Malformed));
    }

    [Test]
    public void Rejected_entry_leaves_the_verifier_unchanged()
    {
        var b = Sample();
        using var v = NewVerifier();
        foreach (var e in b.Entries.Take(3))
        {
            v.Accept(e);
        }

        var bad = b.Entries[3].Clone();
        bad.Payload = Flip(bad.Payload, 10);
        Assert.Throws<JournalVerificationException>(() => v.Accept(bad));
        Assert.That(v.Head.Seq, Is.EqualTo(3UL));
        Assert.DoesNotThrow(() => b.Entries.Skip(3).ToList().ForEach(e => v.Accept(e)));
    }

    [Test]
    public void Hash_encoding_is_pinned()
    {
        // A fixed vector: any change to the canonical encoding breaks every journal in the field.
        var payload = new byte[] { 1, 2, 3 };
        var prev = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        var expected = new List<byte>();
        expected.AddRange("offlinepki.journal.v1\0"u8.ToArray());
        expected.AddRange(new byte[] { 0, 0, 0, 0, 0, 0, 0, 7 });
        expected.AddRange(new byte[] { 0, 0, 0, 0, 0, 0, 0x01, 0x02 });
        expected.AddRange(new byte[] { 0, 0, 0, 2 });
        expected.AddRange(new byte[] { 0, 0, 0, 3 });
        expected.AddRange(payload);
        expected.AddRange(prev);
        Assert.That(JournalCodec.ComputeHash(7, 0x0102, EntryType.CertificateIssued, payload, prev), Is.EqualTo(SHA256.HashData(expected.ToArray())));

        var cp = new List<byte>();
        cp.AddRange("offlinepki.checkpoint.v1\0"u8.ToArray());
        cp.AddRange(Enumerable.Repeat((byte)0xAA, 16));
        cp.AddRange(new byte[] { 0, 0, 0, 0, 0, 0, 0, 9 });
        cp.AddRange(prev);
        cp.AddRange(new byte[] { 0, 0, 0, 0, 0, 0, 0, 5 });
        Assert.That(JournalCodec.CheckpointSigningBytes(Enumerable.Repeat((byte)0xAA, 16).ToArray(), 9, prev, 5), Is.EqualTo(cp.ToArray()));
    }
}
