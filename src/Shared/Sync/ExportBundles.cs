using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Keys;
using OfflinePki.Registry;
using OfflinePki.Sync.V1;

namespace OfflinePki.Sync;

/// <summary>A bundle file is malformed, its signature does not verify, or it cannot be applied. Nothing was applied.</summary>
public sealed class ExportBundleException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">Why, naming the file and seq where known; no secrets.</param>
    /// <param name="inner">The underlying failure.</param>
    public ExportBundleException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>What <see cref="ExportBundleWriter.Write"/> wrote.</summary>
/// <param name="FirstSeq">First seq in the bundle.</param>
/// <param name="LastSeq">Last seq (a checkpoint).</param>
/// <param name="Entries">Number of entries.</param>
/// <param name="Bytes">File size in bytes.</param>
public sealed record ExportBundleInfo(ulong FirstSeq, ulong LastSeq, ulong Entries, long Bytes);

/// <summary>
/// Writes an air-gap bundle (sync.proto v1.1 <c>ExportBundleHeader</c>/<c>ExportBundleItem</c>): a seq range of the
/// journal ending at a checkpoint, signed by the journal signer. Streams: memory is flat in the number of entries.
/// </summary>
public static class ExportBundleWriter
{
    /// <summary>Domain-separation prefix of the signed bytes (followed by 0x00 and the 32-byte digest).</summary>
    public const string Domain = "offlinepki.bundle.v1";

    /// <summary>The bytes the journal signer signs: "offlinepki.bundle.v1" || 0x00 || digest.</summary>
    public static byte[] SignedBytes(ReadOnlySpan<byte> digest) => [.. Encoding.ASCII.GetBytes(Domain), 0, .. digest];

    /// <summary>
    /// Writes entries <paramref name="from"/>..<paramref name="to"/> to <paramref name="output"/>. When entry
    /// <paramref name="to"/> is not a checkpoint the range is extended to the first checkpoint after it.
    /// </summary>
    /// <param name="reader">The journal.</param>
    /// <param name="from">First seq (≥ 1).</param>
    /// <param name="to">Last seq wanted; 0 means the journal head.</param>
    /// <param name="signer">The journal signer key.</param>
    /// <param name="signerCertificate">DER of the journal signer certificate (must be the one in the genesis entry).</param>
    /// <param name="output">Where the bundle goes.</param>
    /// <param name="time">Clock for the header time.</param>
    /// <exception cref="ExportBundleException">An empty or out-of-range range, no checkpoint at or after <paramref name="to"/>, or a signer that is not the journal's.</exception>
    /// <exception cref="SigningKeyUnavailableException">The signer cannot sign.</exception>
    public static ExportBundleInfo Write(IJournalReader reader, ulong from, ulong to, ISigningKey signer, byte[] signerCertificate, Stream output, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(signer);
        ArgumentNullException.ThrowIfNull(signerCertificate);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(time);
        ulong head = reader.Head.Seq;
        if (to == 0)
        {
            to = head;
        }

        if (from == 0 || from > to || to > head)
        {
            throw new ExportBundleException($"the range {from}..{to} is not within the journal 1..{head}");
        }

        var first = reader.ReadFrom(1).FirstOrDefault();
        if (first is null || first.Type != EntryType.Genesis)
        {
            throw new ExportBundleException("the journal has no genesis entry");
        }

        var genesis = Genesis.Parser.ParseFrom(first.Payload);
        if (!genesis.JournalSignerCertificate.Span.SequenceEqual(signerCertificate))
        {
            throw new ExportBundleException("the configured journal signer certificate is not the one in this journal's genesis entry");
        }

        // Find the checkpoint that ends the bundle.
        ulong last = 0;
        foreach (var e in reader.ReadFrom(to))
        {
            if (e.Type == EntryType.Checkpoint)
            {
                last = e.Seq;
                break;
            }
        }

        if (last == 0)
        {
            throw new ExportBundleException($"no checkpoint at or after seq {to} (head {head}); with the daemon running, export asks it to checkpoint first");
        }

        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var hashing = new HashingStream(output, sha);
        var header = new ExportBundleHeader
        {
            FormatVersion = 1,
            JournalId = genesis.JournalId,
            FactoryId = genesis.FactoryId,
            FirstSeq = from,
            LastSeq = last,
            SignerCertificate = ByteString.CopyFrom(signerCertificate),
            CreatedUnixMicros = JournalCodec.ToUnixMicros(time.GetUtcNow()),
        };
        header.WriteDelimitedTo(hashing);
        ulong count = 0;
        ulong expected = from;
        foreach (var e in reader.ReadFrom(from))
        {
            if (e.Seq > last)
            {
                break;
            }

            if (e.Seq != expected)
            {
                throw new ExportBundleException($"the journal skips from seq {expected - 1} to {e.Seq}");
            }

            new ExportBundleItem { Entry = e }.WriteDelimitedTo(hashing);
            expected++;
            count++;
        }

        var digest = sha.GetHashAndReset();
        var trailer = new ExportBundleTrailer { Sha256 = ByteString.CopyFrom(digest), Signature = ByteString.CopyFrom(signer.Sign(SignedBytes(digest))) };
        new ExportBundleItem { Trailer = trailer }.WriteDelimitedTo(output);
        output.Flush();
        return new ExportBundleInfo(from, last, count, hashing.Written + new ExportBundleItem { Trailer = trailer }.CalculateSize() + 2);
    }

    private sealed class HashingStream(Stream inner, IncrementalHash hash) : Stream
    {
        public long Written { get; private set; }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            hash.AppendData(buffer);
            inner.Write(buffer);
            Written += buffer.Length;
        }

        protected override void Dispose(bool disposing)
        {
            // The caller owns the inner stream.
        }
    }
}

/// <summary>A bundle whose signature verified: its header, and a way to stream its entries.</summary>
public sealed class ExportBundleFile
{
    private readonly string _path;

    private ExportBundleFile(string path, ExportBundleHeader header)
    {
        _path = path;
        Header = header;
    }

    /// <summary>The header.</summary>
    public ExportBundleHeader Header { get; }

    /// <summary>The file path.</summary>
    public string Path => _path;

    /// <summary>
    /// Opens <paramref name="path"/> and checks it whole: framing, contiguous seqs first..last, the last entry a
    /// checkpoint, the digest and the signature by the header's signer certificate. Entries are checked again by the
    /// applier (hash chain, signatures); the signer certificate must be the journal's genesis signer.
    /// </summary>
    /// <exception cref="ExportBundleException">Anything malformed, a digest mismatch or a bad signature.</exception>
    public static ExportBundleFile Open(string path, int maxEntryBytes = 1 << 20)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
            var header = ExportBundleHeader.Parser.ParseDelimitedFrom(fs);
            if (header.FormatVersion != 1 || header.JournalId.Length != JournalCodec.JournalIdSize || header.FirstSeq == 0 || header.LastSeq < header.FirstSeq)
            {
                throw new ExportBundleException($"bundle {path}: bad header (format {header.FormatVersion}, seqs {header.FirstSeq}..{header.LastSeq})");
            }

            ulong expected = header.FirstSeq;
            ExportBundleTrailer? trailer = null;
            long trailerStart = 0;
            EntryType lastType = EntryType.Unspecified;
            while (fs.Position < fs.Length)
            {
                long pos = fs.Position;
                if (trailer is not null)
                {
                    throw new ExportBundleException($"bundle {path}: data after the trailer at byte {pos}");
                }

                var item = ExportBundleItem.Parser.ParseDelimitedFrom(fs);
                if (fs.Position - pos > maxEntryBytes + 16)
                {
                    throw new ExportBundleException($"bundle {path}: item at byte {pos} exceeds the entry size limit {maxEntryBytes}");
                }

                switch (item.BodyCase)
                {
                    case ExportBundleItem.BodyOneofCase.Entry:
                        if (item.Entry.Seq != expected)
                        {
                            throw new ExportBundleException($"bundle {path}: seq {item.Entry.Seq} where {expected} was expected");
                        }

                        lastType = item.Entry.Type;
                        expected++;
                        break;
                    case ExportBundleItem.BodyOneofCase.Trailer:
                        trailer = item.Trailer;
                        trailerStart = pos;
                        break;
                    default:
                        throw new ExportBundleException($"bundle {path}: empty item at byte {pos}");
                }
            }

            if (trailer is null)
            {
                throw new ExportBundleException($"bundle {path}: no trailer (truncated file?)");
            }

            if (expected - 1 != header.LastSeq || lastType != EntryType.Checkpoint)
            {
                throw new ExportBundleException($"bundle {path}: entries end at seq {expected - 1} ({lastType}), the header says a checkpoint at {header.LastSeq}");
            }

            fs.Position = 0;
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[1 << 16];
            long remaining = trailerStart;
            while (remaining > 0)
            {
                int n = fs.Read(buffer, 0, (int)Math.Min(buffer.Length, remaining));
                if (n == 0)
                {
                    throw new ExportBundleException($"bundle {path}: short read");
                }

                sha.AppendData(buffer, 0, n);
                remaining -= n;
            }

            var digest = sha.GetHashAndReset();
            if (!trailer.Sha256.Span.SequenceEqual(digest))
            {
                throw new ExportBundleException($"bundle {path}: digest mismatch (the file was altered)");
            }

            using var signer = X509CertificateLoader.LoadCertificate(header.SignerCertificate.Span);
            using var key = signer.GetECDsaPublicKey() ?? throw new ExportBundleException($"bundle {path}: the signer certificate has no ECDSA key");
            var alg = key.KeySize >= 384 ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA256;
            if (!key.VerifyData(ExportBundleWriter.SignedBytes(digest), trailer.Signature.Span, alg, DSASignatureFormat.Rfc3279DerSequence))
            {
                throw new ExportBundleException($"bundle {path}: the signature does not verify");
            }

            return new ExportBundleFile(path, header);
        }
        catch (Exception ex) when (ex is InvalidProtocolBufferException or CryptographicException or IOException && ex is not FileNotFoundException)
        {
            throw new ExportBundleException($"bundle {path}: unreadable: {ex.Message}", ex);
        }
    }

    /// <summary>The first entry of the bundle.</summary>
    public JournalEntry FirstEntry()
    {
        using var fs = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.Read);
        ExportBundleHeader.Parser.ParseDelimitedFrom(fs);
        return ExportBundleItem.Parser.ParseDelimitedFrom(fs).Entry;
    }

    /// <summary>The push stream the applier consumes: metadata, then the entries in batches of 512.</summary>
    public async IAsyncEnumerable<PushRequest> AsPushStream()
    {
        yield return new PushRequest { Metadata = new PushMetadata { JournalId = Header.JournalId, FactoryId = Header.FactoryId, FirstSeq = Header.FirstSeq } };
        using var fs = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        ExportBundleHeader.Parser.ParseDelimitedFrom(fs);
        var batch = new EntryBatch();
        while (fs.Position < fs.Length)
        {
            var item = ExportBundleItem.Parser.ParseDelimitedFrom(fs);
            if (item.BodyCase != ExportBundleItem.BodyOneofCase.Entry)
            {
                break;
            }

            batch.Entries.Add(item.Entry);
            if (batch.Entries.Count == 512)
            {
                yield return new PushRequest { Entries = batch };
                batch = new EntryBatch();
                await Task.Yield();
            }
        }

        if (batch.Entries.Count > 0)
        {
            yield return new PushRequest { Entries = batch };
        }
    }
}

/// <summary>How an import ended.</summary>
public enum ImportOutcome
{
    /// <summary>New entries were applied.</summary>
    Applied,

    /// <summary>The mirror already held the whole range: a no-op.</summary>
    AlreadyApplied,

    /// <summary>The bundle starts after the mirror's head + 1: held in the pending area until the gap is filled.</summary>
    HeldPending,
}

/// <summary>The result of importing one bundle.</summary>
/// <param name="Outcome">What happened.</param>
/// <param name="FactoryId">The bundle's factory.</param>
/// <param name="JournalIdHex">The bundle's journal id, hex.</param>
/// <param name="FirstSeq">First seq of the bundle.</param>
/// <param name="LastSeq">Last seq of the bundle.</param>
/// <param name="HeadSeq">The mirror's head of this journal afterwards (0 when it holds nothing).</param>
/// <param name="EntriesApplied">New entries applied (including pending bundles applied after it).</param>
/// <param name="Receipt">The mirror's receipt for <paramref name="HeadSeq"/>, when a receipt signer is configured and the head is known.</param>
public sealed record ImportResult(ImportOutcome Outcome, string FactoryId, string JournalIdHex, ulong FirstSeq, ulong LastSeq, ulong HeadSeq, ulong EntriesApplied,
    MirrorReceipt? Receipt);

/// <summary>A bundle waiting in the pending area for its missing range.</summary>
/// <param name="Path">The held file.</param>
/// <param name="FactoryId">Its factory.</param>
/// <param name="JournalIdHex">Its journal.</param>
/// <param name="FirstSeq">Its first seq.</param>
/// <param name="LastSeq">Its last seq.</param>
/// <param name="MirrorHeadSeq">The mirror's head of that journal now: seqs MirrorHeadSeq+1..FirstSeq-1 are missing.</param>
public sealed record PendingBundle(string Path, string FactoryId, string JournalIdHex, ulong FirstSeq, ulong LastSeq, ulong MirrorHeadSeq);

/// <summary>
/// The mirror side of the air gap: verifies a bundle (<see cref="ExportBundleFile.Open"/>) and applies it through the
/// same <see cref="SyncApplier"/> as a network push, so the result (registry and receipt) is identical. A bundle that
/// leaves a gap is copied into the pending directory and applied once the missing range arrives (by import or sync,
/// see <see cref="ApplyPendingAsync"/>). Re-importing an applied bundle is a no-op.
/// </summary>
public sealed class BundleImporter
{
    private readonly SyncApplier _applier;
    private readonly IJournalSink _sink;
    private readonly string _pendingDirectory;
    private readonly IReadOnlySet<string> _factories;
    private readonly ILogger _logger;

    /// <summary>Creates the importer.</summary>
    /// <param name="applier">The applier network pushes use.</param>
    /// <param name="sink">The registry (for heads).</param>
    /// <param name="pendingDirectory">Where gapped bundles are held (created when needed).</param>
    /// <param name="factories">Factory ids the mirror serves (MirrorCa:Factories).</param>
    /// <param name="logger">Logger.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public BundleImporter(SyncApplier applier, IJournalSink sink, string pendingDirectory, IReadOnlySet<string> factories, ILogger<BundleImporter>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(applier);
        ArgumentNullException.ThrowIfNull(sink);
        ArgumentException.ThrowIfNullOrEmpty(pendingDirectory);
        ArgumentNullException.ThrowIfNull(factories);
        _applier = applier;
        _sink = sink;
        _pendingDirectory = pendingDirectory;
        _factories = factories;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>Imports one bundle file.</summary>
    /// <exception cref="ExportBundleException">The bundle does not verify, names an unknown factory or another signer, or the applier refused it (the message names seq and reason). Nothing was applied.</exception>
    public async Task<ImportResult> ImportAsync(string path, CancellationToken cancellationToken = default)
    {
        var bundle = ExportBundleFile.Open(path);
        var h = bundle.Header;
        string journalHex = Convert.ToHexStringLower(h.JournalId.Span);
        if (!_factories.Contains(h.FactoryId))
        {
            throw new ExportBundleException($"bundle {path}: factory {h.FactoryId} is not served by this mirror (MirrorCa:Factories)");
        }

        var state = _sink.GetJournal(h.JournalId.Span);
        if (state is not null && !string.Equals(state.FactoryId, h.FactoryId, StringComparison.Ordinal))
        {
            throw new ExportBundleException($"bundle {path}: journal {journalHex} belongs to factory {state.FactoryId}, the bundle claims {h.FactoryId}");
        }

        if (state is not null && !h.SignerCertificate.Span.SequenceEqual(state.JournalSignerCertificate))
        {
            throw new ExportBundleException($"bundle {path}: signed by a certificate other than journal {journalHex}'s journal signer");
        }

        ulong head = state?.HeadSeq ?? 0;
        if (h.FirstSeq > head + 1)
        {
            Directory.CreateDirectory(_pendingDirectory);
            string held = System.IO.Path.Combine(_pendingDirectory, $"{journalHex}-{h.FirstSeq:D20}-{h.LastSeq:D20}.bundle");
            if (!string.Equals(System.IO.Path.GetFullPath(path), System.IO.Path.GetFullPath(held), StringComparison.Ordinal))
            {
                File.Copy(path, held, overwrite: true);
            }

            _logger.LogWarning("bundle {Path} of factory {Factory} (seqs {First}..{Last}) held: the mirror head is seq {Head}; seqs {Gap0}..{Gap1} are missing",
                path, h.FactoryId, h.FirstSeq, h.LastSeq, head, head + 1, h.FirstSeq - 1);
            return new ImportResult(ImportOutcome.HeldPending, h.FactoryId, journalHex, h.FirstSeq, h.LastSeq, head, 0, state is null ? null : _applier.ReceiptFor(state));
        }

        if (h.FirstSeq == 1)
        {
            // A new journal: the bundle signer must be the genesis signer.
            var genesis = bundle.FirstEntry();
            var g = genesis.Type == EntryType.Genesis ? Genesis.Parser.ParseFrom(genesis.Payload) : null;
            if (g is null || !g.JournalSignerCertificate.Span.SequenceEqual(h.SignerCertificate.Span))
            {
                throw new ExportBundleException($"bundle {path}: signed by a certificate other than the genesis journal signer");
            }
        }

        PushResponse response;
        try
        {
            response = await _applier.ApplyAsync(new CallerIdentity("import:" + System.IO.Path.GetFileName(path), h.FactoryId), bundle.AsPushStream(), cancellationToken).ConfigureAwait(false);
        }
        catch (SyncRejectedException ex)
        {
            throw new ExportBundleException($"bundle {path} refused, nothing applied: {ex.Message}", ex);
        }

        ulong applied = response.EntriesApplied;
        applied += await ApplyPendingAsync(h.JournalId.ToByteArray(), cancellationToken).ConfigureAwait(false);
        var now = _sink.GetJournal(h.JournalId.Span)!;
        return new ImportResult(applied == 0 ? ImportOutcome.AlreadyApplied : ImportOutcome.Applied, h.FactoryId, journalHex, h.FirstSeq, h.LastSeq, now.HeadSeq, applied,
            _applier.ReceiptFor(now));
    }

    /// <summary>Bundles in the pending area, with the mirror's current head of their journal.</summary>
    public IReadOnlyList<PendingBundle> Pending()
    {
        if (!Directory.Exists(_pendingDirectory))
        {
            return [];
        }

        var list = new List<PendingBundle>();
        foreach (var file in Directory.EnumerateFiles(_pendingDirectory, "*.bundle").Order(StringComparer.Ordinal))
        {
            ExportBundleHeader h;
            using (var fs = File.OpenRead(file))
            {
                h = ExportBundleHeader.Parser.ParseDelimitedFrom(fs);
            }

            var state = _sink.GetJournal(h.JournalId.Span);
            list.Add(new PendingBundle(file, h.FactoryId, Convert.ToHexStringLower(h.JournalId.Span), h.FirstSeq, h.LastSeq, state?.HeadSeq ?? 0));
        }

        return list;
    }

    /// <summary>
    /// Applies every pending bundle whose range now joins the mirror's head (after an import or a network sync filled the
    /// gap), repeatedly, and deletes bundles the mirror now covers. A pending bundle that is refused stays and is logged.
    /// </summary>
    /// <param name="journalId">Only this journal; null for all.</param>
    /// <param name="cancellationToken">Cancels between bundles.</param>
    /// <returns>New entries applied.</returns>
    public async Task<ulong> ApplyPendingAsync(byte[]? journalId = null, CancellationToken cancellationToken = default)
    {
        ulong total = 0;
        bool progress = true;
        while (progress)
        {
            progress = false;
            foreach (var p in Pending())
            {
                if (journalId is not null && !string.Equals(p.JournalIdHex, Convert.ToHexStringLower(journalId), StringComparison.Ordinal))
                {
                    continue;
                }

                if (p.LastSeq <= p.MirrorHeadSeq)
                {
                    File.Delete(p.Path);
                    continue;
                }

                if (p.FirstSeq > p.MirrorHeadSeq + 1)
                {
                    continue;
                }

                try
                {
                    var r = await ImportAsync(p.Path, cancellationToken).ConfigureAwait(false);
                    total += r.EntriesApplied;
                    File.Delete(p.Path);
                    progress = true;
                    _logger.LogInformation("pending bundle {Path} applied: journal {Journal} head seq {Head}", p.Path, p.JournalIdHex, r.HeadSeq);
                }
                catch (ExportBundleException ex)
                {
                    _logger.LogError("ALERT pending bundle {Path} refused: {Reason}", p.Path, ex.Message);
                }
            }
        }

        return total;
    }
}
