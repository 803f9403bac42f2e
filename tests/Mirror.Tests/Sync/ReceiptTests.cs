using System.Security.Cryptography;
using Google.Protobuf;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using OfflinePki.Enrollment;
using OfflinePki.Hosting.Sync;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Keys;
using OfflinePki.Sync;
using OfflinePki.Sync.V1;
using OfflinePki.Tests.Journal;
using OfflinePki.Tests.Sync;
using OfflinePki.Tests.Support;
using OfflinePki.Factory;

namespace OfflinePki.Tests.Sync;

/// <summary>Mirror receipts (countersigned heads) over real gRPC/mTLS, their verification and storage, and bounded divergence.</summary>
[NonParallelizable]
public class ReceiptTests
{
    private static TestPki Pki => TestPki.Default;


    private static SyncOptions Options => new() { BatchMaxEntries = 5, Timeout = TimeSpan.FromSeconds(10), PushTimeout = TimeSpan.FromSeconds(20) };

    internal static MirrorReceiptSigner Signer(TimeProvider? time = null) =>
        new(Pki.Cert("mirror-receipt"), SoftwareKeyLoader.Load(Pki.PathOf("mirror-receipt.key")), time ?? TimeProvider.System);

    private string _dir = string.Empty;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("receipts-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public async Task Mirror_countersigns_every_applied_head_and_the_factory_stores_it_durably()
    {
        var sink = new FakeJournalSink();
        var applier = new SyncApplier(sink, JournalTestData.M.Root) { ReceiptSigner = Signer() };
        await using var host = await GrpcTestHost.StartSyncAsync(Pki, applier);
        var b = new JournalTestData.Builder();
        for (int i = 0; i < 7; i++)
        {
            b.AddCertificate($"RCPT-{i:D3}");
        }

        var journal = new BuilderJournal(b);
        string path = Path.Combine(_dir, MirrorReceiptStore.FileName);
        var store = new MirrorReceiptStore(path);
        using var grpc = JournalSyncChannel.Create(host.BaseAddress, Pki.CertWithKey("factory-F1-sync-client"), Pki.Cert("tls-ca"));
        var client = new JournalSyncClient(grpc, journal, journal, Options) { Receipts = new MirrorReceiptBook(new MirrorReceiptVerifier(Pki.Root), store, journal) };
        var gate = new DivergenceGate(journal, store, new DivergenceOptions { MaxUnconfirmedEntries = 5, Mode = DivergenceMode.StopTheLine }, TimeProvider.System);

        var stopped = Assert.Throws<EnrollmentUnavailableException>(gate.EnsureOpen);
        Assert.That(stopped!.Message, Does.StartWith("line stopped: 8 journal entries (certificates) not yet confirmed by the mirror"));
        Assert.That(store.ConfirmedSeq, Is.Zero);

        var r = await client.SyncOnceAsync();
        Assert.That(store.ConfirmedSeq, Is.EqualTo(r.AppliedSeq).And.EqualTo(9UL));
        Assert.That(store.Latest!.Hash.ToByteArray(), Is.EqualTo(b.Head.Hash));
        Assert.That(new MirrorReceiptStore(path).ConfirmedSeq, Is.EqualTo(9UL), "the receipt survives a restart");
        Assert.DoesNotThrow(gate.EnsureOpen);
        Assert.That(gate.Status().UnconfirmedEntries, Is.Zero);

        // The receipt verifies with openssl too: canonical bytes, DER ECDSA signature, the signer certificate's key.
        var receipt = store.Latest!;
        string data = Path.Combine(_dir, "receipt.bin"), sig = Path.Combine(_dir, "receipt.sig"), pub = Path.Combine(_dir, "receipt.pub");
        File.WriteAllBytes(data, MirrorReceiptFormat.CanonicalBytes(receipt.JournalId.Span, receipt.Seq, receipt.Hash.Span, receipt.TimeUnixMicros));
        File.WriteAllBytes(sig, receipt.Signature.ToByteArray());
        Tool.OpenSsl("x509", "-in", Pki.PathOf("mirror-receipt.crt"), "-pubkey", "-noout", "-out", pub).EnsureSuccess("openssl x509 -pubkey");
        var verify = Tool.OpenSsl("dgst", "-sha256", "-verify", pub, "-signature", sig, data);
        Assert.That(verify.StdOut, Does.Contain("Verified OK"));

        // An idle sync (nothing to push) still gets the head's receipt from GetHead; growth beyond the bound stops the line again.
        for (int i = 0; i < 6; i++)
        {
            b.AddCertificate($"RCPT-LATE-{i}");
        }

        Assert.That(Assert.Throws<EnrollmentUnavailableException>(gate.EnsureOpen)!.Message, Does.Contain("6 journal entries"));
        await client.SyncOnceAsync();
        Assert.That(store.ConfirmedSeq, Is.EqualTo(b.Head.Seq));
        Assert.DoesNotThrow(gate.EnsureOpen);
        File.Delete(path);
        var fresh = new MirrorReceiptStore(path);
        var idleClient = new JournalSyncClient(grpc, journal, journal, Options) { Receipts = new MirrorReceiptBook(new MirrorReceiptVerifier(Pki.Root), fresh, journal) };
        var idle = await idleClient.SyncOnceAsync();
        Assert.That((idle.EntriesPushed, fresh.ConfirmedSeq), Is.EqualTo((0UL, b.Head.Seq)));
    }

    [Test]
    public void Bad_receipts_are_refused_with_the_reason_and_nothing_is_stored()
    {
        var b = new JournalTestData.Builder();
        b.AddCertificate("BAD-1");
        b.AddCheckpoint();
        var journal = new BuilderJournal(b);
        var store = new MirrorReceiptStore(Path.Combine(_dir, MirrorReceiptStore.FileName));
        var book = new MirrorReceiptBook(new MirrorReceiptVerifier(Pki.Root), store, journal);
        var good = Signer().Sign(b.JournalId, b.Head.Seq, b.Head.Hash);

        void Refused(MirrorReceipt r, string expected)
        {
            var ex = Assert.Throws<MirrorReceiptException>(() => book.Accept(r));
            Assert.That(ex!.Message, Does.Contain(expected));
            Assert.That(store.ConfirmedSeq, Is.Zero);
            Assert.That(File.Exists(Path.Combine(_dir, MirrorReceiptStore.FileName)), Is.False);
        }

        var flipped = good.Clone();
        flipped.Signature = JournalTestData.Flip(flipped.Signature, 10);
        Refused(flipped, $"mirror receipt for seq {b.Head.Seq}: the signature does not verify");

        var moved = good.Clone();
        moved.TimeUnixMicros += 1;
        Refused(moved, "the signature does not verify");

        var fork = Signer().Sign(b.JournalId, b.Head.Seq, SHA256.HashData("other"u8));
        Refused(fork, "(fork)");

        var beyond = Signer().Sign(b.JournalId, b.Head.Seq + 5, b.Head.Hash);
        Refused(beyond, "beyond our journal head");

        var other = Signer().Sign(RandomNumberGenerator.GetBytes(16), b.Head.Seq, b.Head.Hash);
        Refused(other, "names journal");

        // Signed by a root-certified key without the mirror-receipt EKU (the journal signer).
        var wrongKey = SoftwareKeyLoader.Load(Pki.PathOf("journal-signer-F1.key"));
        var noEku = good.Clone();
        noEku.SignerCertificate = ByteString.CopyFrom(Pki.Cert("journal-signer-F1").RawData);
        noEku.Signature = ByteString.CopyFrom(wrongKey.Sign(MirrorReceiptFormat.CanonicalBytes(b.JournalId, good.Seq, good.Hash.Span, good.TimeUnixMicros)));
        Refused(noEku, "lacks the mirror-receipt EKU");

        // Signed by a key certified by the TLS CA (not the root).
        var tlsKey = SoftwareKeyLoader.Load(Pki.PathOf("mirror-sync-server.key"));
        var foreign = good.Clone();
        foreign.SignerCertificate = ByteString.CopyFrom(Pki.Cert("mirror-sync-server").RawData);
        foreign.Signature = ByteString.CopyFrom(tlsKey.Sign(MirrorReceiptFormat.CanonicalBytes(b.JournalId, good.Seq, good.Hash.Span, good.TimeUnixMicros)));
        Refused(foreign, "mirror-receipt EKU");

        Assert.That(book.Accept(good), Is.True);
        Assert.That(book.Accept(good), Is.False, "the same receipt again is a no-op");
        Assert.That(book.Accept(Signer().Sign(b.JournalId, 1, b.Entries[0].Hash.Span)), Is.False, "an older receipt never moves the confirmed seq back");
        Assert.That(store.ConfirmedSeq, Is.EqualTo(b.Head.Seq));
    }

    [Test]
    public void Receipt_signer_needs_the_eku_and_a_matching_key()
    {
        var ex = Assert.Throws<ArgumentException>(() => new MirrorReceiptSigner(Pki.Cert("journal-signer-F1"), SoftwareKeyLoader.Load(Pki.PathOf("journal-signer-F1.key")), TimeProvider.System));
        Assert.That(ex!.Message, Does.Contain("lacks the mirror-receipt EKU"));
        ex = Assert.Throws<ArgumentException>(() => new MirrorReceiptSigner(Pki.Cert("mirror-receipt"), SoftwareKeyLoader.Load(Pki.PathOf("journal-signer-F1.key")), TimeProvider.System));
        Assert.That(ex!.Message, Does.Contain("does not match certificate"));
    }

    [Test]
    public void Divergence_by_age_stops_the_line_or_only_warns()
    {
        var b = new JournalTestData.Builder();
        b.AddCertificate("AGE-1");
        var journal = new BuilderJournal(b);
        var store = new MirrorReceiptStore(Path.Combine(_dir, MirrorReceiptStore.FileName));
        var genesisAt = JournalCodec.FromUnixMicros(b.Entries[0].TimeUnixMicros);
        var time = new FakeTimeProvider(genesisAt + TimeSpan.FromHours(1));
        var stop = new DivergenceGate(journal, store, new DivergenceOptions { MaxUnconfirmedAge = TimeSpan.FromHours(2), Mode = DivergenceMode.StopTheLine }, time);
        var warn = new DivergenceGate(journal, store, new DivergenceOptions { MaxUnconfirmedAge = TimeSpan.FromHours(2), Mode = DivergenceMode.WarnOnly }, time);
        Assert.DoesNotThrow(stop.EnsureOpen);
        Assert.That(stop.Status().UnconfirmedAge, Is.EqualTo(TimeSpan.FromHours(1)));

        time.SetUtcNow(genesisAt + TimeSpan.FromHours(3));
        var ex = Assert.Throws<EnrollmentUnavailableException>(stop.EnsureOpen);
        Assert.That(ex!.Message, Does.StartWith("line stopped: the oldest of 2 journal entries not yet confirmed by the mirror is 0.03:00:00 old"));
        Assert.DoesNotThrow(warn.EnsureOpen);
        Assert.That(warn.Status().Exceeded, Is.Not.Null);

        // A receipt for seq 1 moves the oldest unconfirmed entry to seq 2 (one microsecond later).
        store.Store(Signer(time).Sign(b.JournalId, 1, b.Entries[0].Hash.Span));
        Assert.That(stop.Status().OldestUnconfirmedAt, Is.EqualTo(JournalCodec.FromUnixMicros(b.Entries[1].TimeUnixMicros)));
        store.Store(Signer(time).Sign(b.JournalId, 2, b.Entries[1].Hash.Span));
        Assert.DoesNotThrow(stop.EnsureOpen);
        Assert.That(stop.Status().UnconfirmedEntries, Is.Zero);
    }

    [Test]
    public void Divergence_options_are_validated_naming_the_key()
    {
        var errors = new DivergenceOptions { MaxUnconfirmedEntries = 0, MaxUnconfirmedAge = TimeSpan.Zero, Mode = (DivergenceMode)7 }.Validate("FactoryCa:Divergence").ToList();
        Assert.That(errors, Has.Some.StartWith("FactoryCa:Divergence:MaxUnconfirmedEntries:"));
        Assert.That(errors, Has.Some.StartWith("FactoryCa:Divergence:MaxUnconfirmedAge:"));
        Assert.That(errors, Has.Some.StartWith("FactoryCa:Divergence:Mode:"));
    }
}
