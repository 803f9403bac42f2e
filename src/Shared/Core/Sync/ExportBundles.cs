using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Google.Protobuf;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Keys;
using OfflinePki.Sync.V1;
using OfflinePki.Asn1;

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
            if (!EcdsaSignatureDer.IsStrict(trailer.Signature.Span, key)
                || !key.VerifyData(ExportBundleWriter.SignedBytes(digest), trailer.Signature.Span, alg, DSASignatureFormat.Rfc3279DerSequence))
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
