using NUnit.Framework;
using OfflinePki.Ocsp;
using OfflinePki.Revocation;

namespace OfflinePki.Tests.Mirror;

/// <summary>The GC-friendly store behind the pre-signed OCSP index: inline serial keys, struct slots, responses in slab cells.</summary>
public class PresignedTableTests
{
    private static readonly DateTimeOffset Produced = new(2026, 11, 22, 10, 0, 0, TimeSpan.Zero);

    private static OcspAnswer Answer(int length, byte fill) =>
        new(Enumerable.Repeat(fill, length).ToArray(), OcspResponseStatus.Successful, Produced, Produced.AddHours(24), false);

    private static SerialKey Key(int i)
    {
        Assert.That(SerialKey.TryCreate([0x01, (byte)(i >> 24), (byte)(i >> 16), (byte)(i >> 8), (byte)i], out var key), Is.True);
        return key;
    }

    [Test]
    public void Serial_keys_hold_1_to_20_octets_and_round_trip()
    {
        byte[] twenty = Enumerable.Range(1, 20).Select(i => (byte)i).ToArray();
        Assert.That(SerialKey.TryCreate(twenty, out var k20), Is.True);
        Assert.That(k20.ToArray(), Is.EqualTo(twenty));
        Assert.That(SerialKey.TryCreate([0x05], out var k1), Is.True);
        Assert.That(k1.ToArray(), Is.EqualTo(new byte[] { 0x05 }));
        Assert.That(SerialKey.TryCreate([0x05, 0x00], out var k2), Is.True);
        Assert.That(k2, Is.Not.EqualTo(k1), "length is part of the key: 0x05 and 0x0500 differ");
        Assert.That(SerialKey.TryCreate([], out _), Is.False);
        Assert.That(SerialKey.TryCreate(new byte[21], out _), Is.False, "over 20 octets (RFC 5280 §4.1.2.2) is never ours");
    }

    [Test]
    public void Adds_finds_stores_and_replaces_across_chunk_and_slab_boundaries()
    {
        var table = new PresignedTable();
        const int n = 70_000; // over one 65,536-slot chunk and over one 16 MiB slab of 1 KiB cells
        for (int i = 0; i < n; i++)
        {
            Assert.That(table.TryAdd(Key(i), CertificateStatus.Good), Is.True);
        }

        Assert.That(table.TryAdd(Key(5), CertificateStatus.Good), Is.False, "a serial is held once");
        Assert.That(table.Count, Is.EqualTo(n));
        for (int i = 0; i < n; i++)
        {
            Assert.That(table.TryFind(Key(i), out int slot), Is.True);
            var view = table.Read(slot);
            Assert.That(table.TryStore(slot, view.Version, Answer(800, (byte)i), 100, 1, mayTakeCell: true).Stored, Is.True);
        }

        Assert.That(table.TryFind(Key(n + 1), out _), Is.False);
        Assert.That(table.TryFind(Key(69_999), out int last), Is.True);
        var stored = table.Read(last);
        Assert.That(stored.HasAnswer, Is.True);
        Assert.That(stored.Answer!.Der, Is.EqualTo(Enumerable.Repeat(unchecked((byte)69_999), 800).ToArray()));
        Assert.That(stored.Answer.ProducedAt, Is.EqualTo(Produced));
        Assert.That(stored.Answer.NextUpdate, Is.EqualTo(Produced.AddHours(24)));
        Assert.That(table.KeyAt(last), Is.EqualTo(Key(69_999)));

        var revoked = new CertificateStatus(RegistryCertificateState.Revoked, new RevokedEntry(Key(69_999).ToArray(), Produced, CrlReason.KeyCompromise, null));
        Assert.That(table.Replace(last, revoked), Is.True, "it had a response");
        var after = table.Read(last);
        Assert.That(after.HasAnswer, Is.False, "a response that no longer tells the truth is dropped");
        Assert.That(after.Status, Is.SameAs(revoked));
    }

    [Test]
    public void A_store_against_a_stale_version_or_without_a_cell_allowance_changes_nothing()
    {
        var table = new PresignedTable();
        table.TryAdd(Key(1), CertificateStatus.Good);
        table.TryFind(Key(1), out int slot);
        var before = table.Read(slot);
        Assert.That(table.TryStore(slot, before.Version, Answer(500, 1), 100, 1, mayTakeCell: false).Stored, Is.False, "the bound forbids a new response");
        table.Replace(slot, CertificateStatus.Good); // a concurrent status change
        Assert.That(table.TryStore(slot, before.Version, Answer(500, 2), 100, 1, mayTakeCell: true).Stored, Is.False, "signed for a status that changed");
        Assert.That(table.Read(slot).HasAnswer, Is.False);
    }

    [Test]
    public void A_response_larger_than_a_cell_is_kept_whole()
    {
        var table = new PresignedTable();
        table.TryAdd(Key(1), CertificateStatus.Good);
        table.TryFind(Key(1), out int slot);
        var big = Answer(PresignedTable.CellSize + 300, 7);
        Assert.That(table.TryStore(slot, table.Read(slot).Version, big, 100, 1, mayTakeCell: true).Stored, Is.True);
        Assert.That(table.Read(slot).Answer!.Der, Is.EqualTo(big.Der));
        var small = Answer(600, 8);
        Assert.That(table.TryStore(slot, table.Read(slot).Version, small, 100, 1, mayTakeCell: true).Stored, Is.True);
        Assert.That(table.Read(slot).Answer!.Der, Is.EqualTo(small.Der));
    }

    [Test]
    public void Readers_never_see_a_torn_response_while_writers_resign()
    {
        var table = new PresignedTable();
        for (int i = 0; i < 64; i++)
        {
            table.TryAdd(Key(i), CertificateStatus.Good);
        }

        int torn = 0, reads = 0, writersLeft = 2;
        var writers = Enumerable.Range(0, 2).Select(w => new Thread(() =>
        {
            byte fill = 0;
            for (int n = 0; n < 100_000; n++)
            {
                int slot = Random.Shared.Next(64);
                var v = table.Read(slot, withAnswer: false);
                table.TryStore(slot, v.Version, Answer(700 + Random.Shared.Next(300), ++fill), 100, 1, mayTakeCell: true);
            }

            Interlocked.Decrement(ref writersLeft);
        })).ToArray();
        var readers = Enumerable.Range(0, 2).Select(_ => new Thread(() =>
        {
            while (Volatile.Read(ref writersLeft) > 0 || Volatile.Read(ref reads) < 10_000)
            {
                var a = table.Read(Random.Shared.Next(64)).Answer;
                if (a is null)
                {
                    continue;
                }

                Interlocked.Increment(ref reads);
                if (a.Der.Any(b => b != a.Der[0]))
                {
                    Interlocked.Increment(ref torn);
                }
            }
        })).ToArray();
        foreach (var t in writers.Concat(readers))
        {
            t.Start();
        }

        foreach (var t in writers.Concat(readers))
        {
            t.Join();
        }

        Assert.That(reads, Is.GreaterThan(1000), $"reads {reads}, torn {torn}");
        Assert.That(torn, Is.Zero, "every response read is one writer's whole response");
    }
}
