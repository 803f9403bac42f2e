using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Google.Protobuf;
using OfflinePki.Asn1;
using OfflinePki.Journal;
using OfflinePki.Keys;
using OfflinePki.Sync.V1;

namespace OfflinePki.Sync;

/// <summary>The canonical form of a mirror receipt (sync.proto, <c>MirrorReceipt</c>): what the mirror signs.</summary>
public static class MirrorReceiptFormat
{
    /// <summary>Domain-separation prefix of the signed bytes (followed by one 0x00 octet).</summary>
    public const string Domain = "offlinepki.receipt.v1";

    /// <summary>Length of the canonical bytes: domain, 0x00, journal id (16), seq (8), hash (32), time (8).</summary>
    public static readonly int CanonicalLength = Domain.Length + 1 + JournalCodec.JournalIdSize + 8 + JournalCodec.HashSize + 8;

    /// <summary>
    /// The bytes a receipt signature covers: <c>"offlinepki.receipt.v1" || 0x00 || journal_id (16) || seq (8, big-endian)
    /// || hash (32) || time_unix_micros (8, big-endian)</c>.
    /// </summary>
    /// <param name="journalId">16-byte journal id.</param>
    /// <param name="seq">The confirmed head seq.</param>
    /// <param name="hash">32-byte hash of entry <paramref name="seq"/>.</param>
    /// <param name="timeUnixMicros">Signing time, microseconds since the Unix epoch (UTC).</param>
    /// <exception cref="ArgumentException"><paramref name="journalId"/> or <paramref name="hash"/> has the wrong length.</exception>
    public static byte[] CanonicalBytes(ReadOnlySpan<byte> journalId, ulong seq, ReadOnlySpan<byte> hash, long timeUnixMicros)
    {
        if (journalId.Length != JournalCodec.JournalIdSize)
        {
            throw new ArgumentException($"journal id must be {JournalCodec.JournalIdSize} bytes, got {journalId.Length}", nameof(journalId));
        }

        if (hash.Length != JournalCodec.HashSize)
        {
            throw new ArgumentException($"hash must be {JournalCodec.HashSize} bytes, got {hash.Length}", nameof(hash));
        }

        var buffer = new byte[CanonicalLength];
        var span = buffer.AsSpan();
        int n = Encoding.ASCII.GetBytes(Domain, span);
        span[n++] = 0;
        journalId.CopyTo(span[n..]);
        n += journalId.Length;
        BinaryPrimitives.WriteUInt64BigEndian(span[n..], seq);
        n += 8;
        hash.CopyTo(span[n..]);
        n += hash.Length;
        BinaryPrimitives.WriteInt64BigEndian(span[n..], timeUnixMicros);
        return buffer;
    }
}

/// <summary>
/// The mirror's receipt signer (MirrorCa:ReceiptSigner): countersigns a journal head it has verified and applied.
/// The certificate must carry the mirror-receipt EKU (<see cref="Asn1.Oids.MirrorReceiptEku"/>) and match the key.
/// </summary>
public sealed class MirrorReceiptSigner
{
    private readonly ISigningKey _key;
    private readonly byte[] _certificate;
    private readonly TimeProvider _time;

    /// <summary>Creates the signer.</summary>
    /// <param name="certificate">The receipt signer certificate (chains to the root; mirror-receipt EKU).</param>
    /// <param name="key">Its private key (ECDSA P-256 or P-384).</param>
    /// <param name="timeProvider">Clock for the receipt time.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The certificate lacks the mirror-receipt EKU, or the key does not match it.</exception>
    public MirrorReceiptSigner(X509Certificate2 certificate, ISigningKey key, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(timeProvider);
        if (!MirrorReceiptVerifier.HasReceiptEku(certificate))
        {
            throw new ArgumentException($"receipt signer certificate '{certificate.Subject}' lacks the mirror-receipt EKU {Oids.MirrorReceiptEku}", nameof(certificate));
        }

        if (!certificate.PublicKey.EncodedKeyValue.RawData.AsSpan().SequenceEqual(key.PublicKey.EncodedKeyValue.RawData))
        {
            throw new ArgumentException($"receipt signer key {key.KeyId} does not match certificate '{certificate.Subject}'", nameof(key));
        }

        _key = key;
        _certificate = certificate.RawData;
        _time = timeProvider;
    }

    /// <summary>Signs the head <paramref name="seq"/>/<paramref name="hash"/> of journal <paramref name="journalId"/> at the current time.</summary>
    /// <param name="journalId">16-byte journal id.</param>
    /// <param name="seq">The applied head seq.</param>
    /// <param name="hash">32-byte hash of entry <paramref name="seq"/>.</param>
    /// <returns>The signed receipt, carrying the signer certificate.</returns>
    /// <exception cref="ArgumentException">Wrong id or hash length.</exception>
    /// <exception cref="SigningKeyUnavailableException">The key cannot sign.</exception>
    public MirrorReceipt Sign(ReadOnlySpan<byte> journalId, ulong seq, ReadOnlySpan<byte> hash)
    {
        long micros = JournalCodec.ToUnixMicros(_time.GetUtcNow());
        var signature = _key.Sign(MirrorReceiptFormat.CanonicalBytes(journalId, seq, hash, micros));
        return new MirrorReceipt
        {
            JournalId = ByteString.CopyFrom(journalId),
            Seq = seq,
            Hash = ByteString.CopyFrom(hash),
            TimeUnixMicros = micros,
            Signature = ByteString.CopyFrom(signature),
            SignerCertificate = ByteString.CopyFrom(_certificate),
        };
    }
}

/// <summary>A mirror receipt was refused: malformed, wrong signer, bad signature, or it names another head.</summary>
public sealed class MirrorReceiptException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">Why, with the seq; no secrets.</param>
    public MirrorReceiptException(string message) : base(message) { }
}

/// <summary>
/// Checks a mirror receipt on the factory: the signer certificate chains to the root and carries the mirror-receipt
/// EKU, and the ECDSA signature covers <see cref="MirrorReceiptFormat.CanonicalBytes"/>. Verified signer certificates
/// are cached by their DER.
/// </summary>
public sealed class MirrorReceiptVerifier
{
    private readonly X509Certificate2 _root;
    private readonly ConcurrentDictionary<string, byte> _trustedSigners = new(StringComparer.Ordinal);

    /// <summary>Creates the verifier.</summary>
    /// <param name="trustedRoot">The root the receipt signer must chain to.</param>
    /// <exception cref="ArgumentNullException"><paramref name="trustedRoot"/> is null.</exception>
    public MirrorReceiptVerifier(X509Certificate2 trustedRoot)
    {
        ArgumentNullException.ThrowIfNull(trustedRoot);
        _root = trustedRoot;
    }

    /// <summary>True when <paramref name="certificate"/> carries the mirror-receipt EKU.</summary>
    public static bool HasReceiptEku(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var eku = certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault();
        return eku is not null && eku.EnhancedKeyUsages.Cast<Oid>().Any(o => o.Value == Oids.MirrorReceiptEku);
    }

    /// <summary>Verifies <paramref name="receipt"/> for journal <paramref name="journalId"/>.</summary>
    /// <param name="receipt">The receipt as received.</param>
    /// <param name="journalId">Our journal id (16 bytes).</param>
    /// <exception cref="MirrorReceiptException">
    /// Malformed fields, another journal, a signer that does not decode, lacks the EKU or does not chain to the root,
    /// or a signature that does not verify.
    /// </exception>
    public void Verify(MirrorReceipt receipt, ReadOnlySpan<byte> journalId)
    {
        ArgumentNullException.ThrowIfNull(receipt);
        if (receipt.JournalId.Length != JournalCodec.JournalIdSize || receipt.Hash.Length != JournalCodec.HashSize || receipt.Seq == 0)
        {
            throw new MirrorReceiptException($"mirror receipt for seq {receipt.Seq} is malformed (journal id {receipt.JournalId.Length} bytes, hash {receipt.Hash.Length} bytes)");
        }

        if (!receipt.JournalId.Span.SequenceEqual(journalId))
        {
            throw new MirrorReceiptException($"mirror receipt for seq {receipt.Seq} names journal {Convert.ToHexStringLower(receipt.JournalId.Span)}, ours is {Convert.ToHexStringLower(journalId)}");
        }

        X509Certificate2 signer;
        try
        {
            signer = X509CertificateLoader.LoadCertificate(receipt.SignerCertificate.Span);
        }
        catch (CryptographicException ex)
        {
            throw new MirrorReceiptException($"mirror receipt for seq {receipt.Seq}: signer certificate does not decode: {ex.Message}");
        }

        using (signer)
        {
            string key = Convert.ToBase64String(receipt.SignerCertificate.Span);
            if (!_trustedSigners.ContainsKey(key))
            {
                if (!HasReceiptEku(signer))
                {
                    throw new MirrorReceiptException($"mirror receipt for seq {receipt.Seq}: signer '{signer.Subject}' lacks the mirror-receipt EKU {Oids.MirrorReceiptEku}");
                }

                DateTime at;
                try
                {
                    at = JournalCodec.FromUnixMicros(receipt.TimeUnixMicros).UtcDateTime;
                }
                catch (ArgumentOutOfRangeException)
                {
                    throw new MirrorReceiptException($"mirror receipt for seq {receipt.Seq}: time is out of range");
                }

                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(_root);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                chain.ChainPolicy.VerificationTime = at;
                if (!chain.Build(signer))
                {
                    var why = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()));
                    throw new MirrorReceiptException($"mirror receipt for seq {receipt.Seq}: signer '{signer.Subject}' does not chain to the root '{_root.Subject}': {why}");
                }

                _trustedSigners.TryAdd(key, 0);
            }

            var data = MirrorReceiptFormat.CanonicalBytes(receipt.JournalId.Span, receipt.Seq, receipt.Hash.Span, receipt.TimeUnixMicros);
            using var ecdsa = signer.GetECDsaPublicKey();
            if (ecdsa is null)
            {
                throw new MirrorReceiptException($"mirror receipt for seq {receipt.Seq}: signer '{signer.Subject}' has no ECDSA key");
            }

            var hash = ecdsa.KeySize >= 384 ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA256;
            if (!EcdsaSignatureDer.IsStrict(receipt.Signature.Span, ecdsa) || !ecdsa.VerifyData(data, receipt.Signature.Span, hash, DSASignatureFormat.Rfc3279DerSequence))
            {
                throw new MirrorReceiptException($"mirror receipt for seq {receipt.Seq}: the signature does not verify");
            }
        }
    }
}

/// <summary>
/// The factory's durable record of the newest verified mirror receipt: one protobuf <see cref="MirrorReceipt"/> in a file
/// (FactoryCa:DataDirectory/mirror-receipt.pb), replaced atomically (write temp, fsync, rename). A receipt for seq N
/// confirms entries 1..N (hash chain), so only the newest is kept. Receipts are deliberately not journaled: the journal
/// records what the factory did, and a receipt entry would itself be a new unconfirmed entry.
/// </summary>
public sealed class MirrorReceiptStore
{
    /// <summary>File name of the receipt inside the factory data directory.</summary>
    public const string FileName = "mirror-receipt.pb";

    private readonly string _path;
    private readonly Lock _lock = new();
    private MirrorReceipt? _latest;

    /// <summary>Opens the store and reads the stored receipt, if any.</summary>
    /// <param name="path">The receipt file path.</param>
    /// <exception cref="InvalidDataException">The file exists but does not parse.</exception>
    public MirrorReceiptStore(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        _path = path;
        if (File.Exists(path))
        {
            try
            {
                _latest = MirrorReceipt.Parser.ParseFrom(File.ReadAllBytes(path));
            }
            catch (InvalidProtocolBufferException ex)
            {
                throw new InvalidDataException($"mirror receipt file {path} is damaged: {ex.Message}", ex);
            }
        }
    }

    /// <summary>The newest stored receipt, or null.</summary>
    public MirrorReceipt? Latest
    {
        get
        {
            lock (_lock)
            {
                return _latest;
            }
        }
    }

    /// <summary>The seq confirmed by the newest stored receipt (0 when none).</summary>
    public ulong ConfirmedSeq => Latest?.Seq ?? 0;

    /// <summary>Stores <paramref name="receipt"/> durably when it is newer than the stored one. The caller has verified it.</summary>
    /// <returns>True when stored; false when the stored receipt already confirms this seq or a later one.</returns>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public bool Store(MirrorReceipt receipt)
    {
        ArgumentNullException.ThrowIfNull(receipt);
        lock (_lock)
        {
            if (_latest is not null && _latest.Seq >= receipt.Seq)
            {
                return false;
            }

            string temp = _path + ".tmp";
            using (var f = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                receipt.WriteTo(f);
                f.Flush(flushToDisk: true);
            }

            File.Move(temp, _path, overwrite: true);
            _latest = receipt;
            return true;
        }
    }
}

/// <summary>
/// The factory's receipt intake: verifies a receipt (<see cref="MirrorReceiptVerifier"/>), checks that it names our own
/// entry hash at its seq, and stores it (<see cref="MirrorReceiptStore"/>). Used by the sync client and
/// <c>FactoryCa import-receipt</c>.
/// </summary>
public sealed class MirrorReceiptBook
{
    private readonly MirrorReceiptVerifier _verifier;
    private readonly MirrorReceiptStore _store;
    private readonly IJournalReader _reader;
    private byte[]? _journalId;

    /// <summary>Creates the book.</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public MirrorReceiptBook(MirrorReceiptVerifier verifier, MirrorReceiptStore store, IJournalReader reader)
    {
        ArgumentNullException.ThrowIfNull(verifier);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(reader);
        _verifier = verifier;
        _store = store;
        _reader = reader;
    }

    /// <summary>The store behind the book.</summary>
    public MirrorReceiptStore Store => _store;

    /// <summary>Verifies <paramref name="receipt"/> against our journal and stores it when it is newer.</summary>
    /// <returns>True when it advanced the confirmed seq; false when it was already covered.</returns>
    /// <exception cref="MirrorReceiptException">The receipt does not verify, or names a hash other than ours at its seq (fork).</exception>
    /// <exception cref="IOException">The receipt cannot be stored.</exception>
    public bool Accept(MirrorReceipt receipt)
    {
        ArgumentNullException.ThrowIfNull(receipt);
        _verifier.Verify(receipt, JournalId());
        var ours = receipt.Seq <= _reader.Head.Seq ? _reader.ReadFrom(receipt.Seq).FirstOrDefault() : null;
        if (ours is null || ours.Seq != receipt.Seq)
        {
            throw new MirrorReceiptException($"mirror receipt confirms seq {receipt.Seq}, beyond our journal head {_reader.Head.Seq}");
        }

        if (!ours.Hash.Span.SequenceEqual(receipt.Hash.Span))
        {
            throw new MirrorReceiptException($"mirror receipt for seq {receipt.Seq} names hash {Convert.ToHexStringLower(receipt.Hash.Span)}, ours is {Convert.ToHexStringLower(ours.Hash.Span)} (fork)");
        }

        return _store.Store(receipt);
    }

    private byte[] JournalId()
    {
        if (_journalId is null)
        {
            var first = _reader.ReadFrom(1).FirstOrDefault();
            if (first is null || first.Seq != 1 || first.Type != Journal.V1.EntryType.Genesis)
            {
                throw new MirrorReceiptException("our journal has no genesis entry; no receipt can match it");
            }

            _journalId = Journal.V1.Genesis.Parser.ParseFrom(first.Payload).JournalId.ToByteArray();
        }

        return _journalId;
    }
}
