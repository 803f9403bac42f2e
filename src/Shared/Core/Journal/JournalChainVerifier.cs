using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using OfflinePki.Asn1;
using OfflinePki.Keys;
using OfflinePki.Journal.V1;

namespace OfflinePki.Journal;

/// <summary>An entry that passed <see cref="JournalChainVerifier.Accept(JournalEntry)"/>.</summary>
/// <param name="Entry">The entry as received.</param>
/// <param name="Payload">Its parsed payload (<see cref="Genesis"/>, <see cref="CertificateIssued"/>, ... as named by the type).</param>
/// <param name="IssuedCertificate">
/// For <see cref="EntryType.CertificateIssued"/>, the certificate (its signature already checked against the issuing CA);
/// null for other types, or when <see cref="JournalChainVerifier.MaterializeIssuedCertificates"/> is off.
/// </param>
public sealed record VerifiedEntry(JournalEntry Entry, IMessage Payload, X509Certificate2? IssuedCertificate)
{
    private X509Certificate2? _issued = IssuedCertificate;
    private ReadOnlyMemory<byte> _lazyDer;

    /// <summary>
    /// For <see cref="EntryType.CertificateIssued"/>, the certificate (its signature already checked against the issuing CA);
    /// null for other types, or when <see cref="JournalChainVerifier.MaterializeIssuedCertificates"/> is off.
    /// Built on first access (a native certificate object: several times the cost of the signature check itself), then
    /// the same instance is returned; the caller owns it and may dispose it.
    /// </summary>
    /// <exception cref="System.Security.Cryptography.CryptographicException">(Not expected: the DER was parsed during verification.)</exception>
    public X509Certificate2? IssuedCertificate
    {
        get
        {
            if (_issued is null && !_lazyDer.IsEmpty)
            {
                var cert = X509CertificateLoader.LoadCertificate(_lazyDer.Span);
                if (Interlocked.CompareExchange(ref _issued, cert, null) is not null)
                {
                    cert.Dispose();
                }
            }

            return _issued;
        }

        init => _issued = value;
    }

    /// <summary>The verified certificate DER from which <see cref="IssuedCertificate"/> is built on first access.</summary>
    internal ReadOnlyMemory<byte> LazyCertificateDer
    {
        init => _lazyDer = value;
    }
}

/// <summary>
/// Verifies a journal entry by entry, in seq order (brief, "The journal" and "Sync"): contiguous seqs, the hash
/// chain, each entry's canonical hash, the genesis CA chain and journal signer against the trusted root, that
/// each issued certificate was signed by the journal's issuing CA, and each checkpoint's signature over the head.
/// </summary>
/// <remarks>
/// <para>Not thread-safe: one verifier follows one journal from one thread. After a rejected entry the verifier
/// state is unchanged (the head stays at the last accepted entry), so a caller may retry with a correct entry.</para>
/// <para>Replays are the caller's business: an entry whose seq is at or below the head is reported as
/// <see cref="JournalFault.Fork"/>. Compare it with the stored entry of that seq first.</para>
/// <para>Cost per entry: one SHA-256 over the canonical encoding and one protobuf parse. A certificate entry adds
/// one signature verification with the cached issuing CA public key (about 60 µs for P-256 on one core), done on the
/// raw TBSCertificate bytes without building an <see cref="X509Certificate2"/>. <see cref="VerifiedEntry.IssuedCertificate"/>
/// is built lazily, on first access: building it costs a native certificate object, measured at 3-4 times the
/// signature check, so a caller that needs only serial, notAfter or the DER should use <see cref="DerCertificateParts"/>
/// on <c>CertificateIssued.certificate</c> instead of touching it.
/// The genesis entry costs two X509Chain builds, once per journal.</para>
/// </remarks>
public sealed class JournalChainVerifier : IDisposable
{
    private readonly X509Certificate2? _root;
    private readonly bool _verifyIssuedCertificates;
    private readonly int _maxEntryBytes;
    private ulong _headSeq;
    private byte[] _headHash;
    private JournalHead _head;
    private SignatureCheckKey? _caKey;
    private byte[]? _caSubject;
    private SignatureCheckKey? _signerKey;
    private byte[]? _signerSha256;
    private readonly byte[] _hashScratch = new byte[JournalCodec.HashSize];
    private readonly HashSet<JournalEntry> _caSignatureChecked = new(ReferenceEqualityComparer.Instance);

    /// <summary>Creates a verifier that starts at <paramref name="head"/>.</summary>
    /// <param name="trustedRoot">The root certificate the genesis CA chain and journal signer must chain to.</param>
    /// <param name="anchor">
    /// The journal's identity, already verified when its genesis was first seen; required to resume mid-journal
    /// (<paramref name="head"/> seq &gt; 0). With an anchor and an empty head, a genesis entry must match it.
    /// </param>
    /// <param name="head">The last entry already accepted; <see cref="JournalHead.Empty"/> (the default) to start at seq 1.</param>
    /// <param name="maxEntryBytes">Largest serialized <see cref="JournalEntry"/> accepted, in bytes (default 1 MiB).</param>
    /// <exception cref="ArgumentNullException"><paramref name="trustedRoot"/> is null.</exception>
    /// <exception cref="ArgumentException">A non-empty head without an anchor, a head hash that is not 32 bytes, or anchor certificates that cannot be decoded.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxEntryBytes"/> is not positive.</exception>
    public JournalChainVerifier(X509Certificate2 trustedRoot, JournalAnchor? anchor = null, JournalHead? head = null, int maxEntryBytes = 1 << 20)
        : this(trustedRoot ?? throw new ArgumentNullException(nameof(trustedRoot)), anchor, head, maxEntryBytes, verifyIssuedCertificates: true)
    {
    }

    /// <summary>For the journal writer's own recovery: no root (genesis CA and signer chains are not built) and, optionally, no per-certificate signature checks.</summary>
    internal JournalChainVerifier(X509Certificate2? trustedRoot, JournalAnchor? anchor, JournalHead? head, int maxEntryBytes, bool verifyIssuedCertificates)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxEntryBytes);
        head ??= JournalHead.Empty;
        if (head.Hash is null || head.Hash.Length != JournalCodec.HashSize)
        {
            throw new ArgumentException($"head hash must be {JournalCodec.HashSize} bytes", nameof(head));
        }

        if (head.Seq > 0 && anchor is null)
        {
            throw new ArgumentException("resuming a journal mid-way (head seq > 0) needs its anchor", nameof(anchor));
        }

        _root = trustedRoot;
        _maxEntryBytes = maxEntryBytes;
        _verifyIssuedCertificates = verifyIssuedCertificates;
        _headSeq = head.Seq;
        _headHash = (byte[])head.Hash.Clone();
        _head = new JournalHead(_headSeq, (byte[])_headHash.Clone());
        if (anchor is not null)
        {
            if (anchor.JournalId is null || anchor.JournalId.Length != JournalCodec.JournalIdSize)
            {
                throw new ArgumentException($"anchor journal id must be {JournalCodec.JournalIdSize} bytes", nameof(anchor));
            }

            try
            {
                using var ca = X509CertificateLoader.LoadCertificate(anchor.IssuingCaCertificate);
                using var signer = X509CertificateLoader.LoadCertificate(anchor.JournalSignerCertificate);
                SetTrust(ca, signer, anchor);
            }
            catch (CryptographicException ex)
            {
                throw new ArgumentException($"anchor certificates cannot be decoded: {ex.Message}", nameof(anchor), ex);
            }
        }
    }

    /// <summary>The last accepted entry (or the head given at construction).</summary>
    public JournalHead Head => _head;

    /// <summary>The journal's identity: known once genesis is accepted, or as given at construction.</summary>
    public JournalAnchor? Anchor { get; private set; }

    /// <summary>Seq of the last checkpoint ENTRY accepted since construction; 0 if none.</summary>
    public ulong LastCheckpointSeq { get; private set; }

    /// <summary>
    /// Whether <see cref="VerifiedEntry.IssuedCertificate"/> is available (built lazily on first access) for certificate
    /// entries (default true). When false it is always null.
    /// </summary>
    public bool MaterializeIssuedCertificates { get; init; } = true;

    /// <summary>
    /// Checks, in parallel on every core, the issuing CA's signature on the certificates of a batch of entries about to
    /// be <see cref="Accept(JournalEntry)"/>ed in order. After <see cref="TrustCheckedAhead"/> (on the accepting
    /// thread), <see cref="Accept(JournalEntry)"/> skips that one check for these exact entry objects, and only if it
    /// passed: a failure is still reported, in seq order, by <see cref="Accept(JournalEntry)"/> itself. Safe to run on
    /// another thread while this verifier accepts earlier entries (it reads only the CA key, fixed once the genesis is
    /// known). Checks nothing before the genesis or when certificates are not verified. Costs one payload parse per
    /// certificate entry more; the signature check (one ECDSA verification) is the expensive part.
    /// </summary>
    /// <param name="entries">Entries in the order they will be accepted; they must not be changed until then.</param>
    /// <returns>The certificate entries whose CA signature verified, with the key that verified them.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="entries"/> is null.</exception>
    public CheckedAhead CheckCertificateSignaturesAhead(IReadOnlyList<JournalEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var key = Volatile.Read(ref _caKey);
        if (key is null || !_verifyIssuedCertificates || entries.Count < 2)
        {
            return new CheckedAhead(null, []);
        }

        var passed = new bool[entries.Count];
        try
        {
            Parallel.For(0, entries.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
            {
                var entry = entries[i];
                if (entry.Type != EntryType.CertificateIssued || entry.CalculateSize() > _maxEntryBytes)
                {
                    return;
                }

                try
                {
                    var c = CertificateIssued.Parser.ParseFrom(entry.Payload);
                    var parts = DerCertificateParts.Parse(c.Certificate.Memory);
                    passed[i] = key.VerifyX509Signature(parts.SignatureAlgorithmOid, parts.Tbs.Span, parts.Signature.Span);
                }
                catch (Exception ex) when (ex is InvalidProtocolBufferException or CryptographicException)
                {
                    // Left to Accept, which reports it with the seq.
                }
            });
        }
        catch (AggregateException ex) when (ex.InnerExceptions.All(e => e is ObjectDisposedException))
        {
            // The verifier was disposed meanwhile: nothing is trusted.
            return new CheckedAhead(null, []);
        }

        return new CheckedAhead(key, entries.Where((_, i) => passed[i]).ToArray());
    }

    /// <summary>Lets <see cref="Accept(JournalEntry)"/> skip the CA signature check of the entries checked ahead, if they were checked with the current CA key.</summary>
    /// <param name="checkedAhead">A result of <see cref="CheckCertificateSignaturesAhead"/>.</param>
    /// <returns>How many entries are now trusted.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="checkedAhead"/> is null.</exception>
    public int TrustCheckedAhead(CheckedAhead checkedAhead)
    {
        ArgumentNullException.ThrowIfNull(checkedAhead);
        if (checkedAhead.Key is null || !ReferenceEquals(checkedAhead.Key, _caKey))
        {
            return 0;
        }

        int n = 0;
        foreach (var entry in checkedAhead.Entries)
        {
            if (_caSignatureChecked.Add(entry))
            {
                n++;
            }
        }

        return n;
    }

    /// <summary>Verifies <paramref name="entry"/> as the next entry and, if it passes, makes it the head.</summary>
    /// <param name="entry">The entry claiming seq head + 1.</param>
    /// <returns>The entry with its parsed payload.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="entry"/> is null.</exception>
    /// <exception cref="JournalVerificationException">
    /// The entry is rejected; <see cref="JournalVerificationException.Fault"/> says why:
    /// <see cref="JournalFault.OutOfRange"/> (seq 0 or ulong.MaxValue, over the size limit, unknown type, genesis after seq 1),
    /// <see cref="JournalFault.Gap"/> (seq above head + 1), <see cref="JournalFault.Fork"/> (seq at or below the head, or prev_hash not the head hash),
    /// <see cref="JournalFault.BadHash"/>, <see cref="JournalFault.Malformed"/> (bad lengths, unparsable payload or certificate, seq 1 not a genesis),
    /// <see cref="JournalFault.UnknownSigner"/> (genesis CA or signer does not chain to the root, the CA is not a CA, the signer lacks the EKU; a checkpoint by another signer),
    /// <see cref="JournalFault.ForeignCertificate"/> (an issued certificate not signed by the issuing CA),
    /// <see cref="JournalFault.StaleCheckpoint"/> (a checkpoint over another seq/hash than the head),
    /// <see cref="JournalFault.BadSignature"/> (checkpoint signature), <see cref="JournalFault.WrongJournal"/> (another journal id, or a genesis that does not match the anchor).
    /// </exception>
    public VerifiedEntry Accept(JournalEntry entry) => Accept(entry, hashAlreadyChecked: false);

    /// <summary>As <see cref="Accept(JournalEntry)"/>; the writer's recovery has already checked the hash (lengths and value).</summary>
    internal VerifiedEntry Accept(JournalEntry entry, bool hashAlreadyChecked)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ulong seq = entry.Seq;
        int size = entry.CalculateSize();
        if (size > _maxEntryBytes)
        {
            throw Fail(seq, JournalFault.OutOfRange, $"entry is {size} bytes, over the {_maxEntryBytes}-byte limit");
        }

        if (seq == 0 || seq == ulong.MaxValue)
        {
            throw Fail(seq, JournalFault.OutOfRange, "seq must be between 1 and 2^64-2");
        }

        if (seq > _headSeq + 1)
        {
            throw Fail(seq, JournalFault.Gap, $"expected seq {_headSeq + 1}; entries {_headSeq + 1}..{seq - 1} are missing");
        }

        if (seq <= _headSeq)
        {
            throw Fail(seq, JournalFault.Fork, $"seq {seq} is at or below the head {_headSeq} (a replay must be compared with the stored entry before verifying)");
        }

        var parser = JournalCodec.PayloadParser(entry.Type);
        if (parser is null)
        {
            throw Fail(seq, JournalFault.OutOfRange, $"unknown entry type {(int)entry.Type}");
        }

        if (entry.PrevHash.Length != JournalCodec.HashSize || entry.Hash.Length != JournalCodec.HashSize)
        {
            throw Fail(seq, JournalFault.Malformed, $"prev_hash and hash must be {JournalCodec.HashSize} bytes (got {entry.PrevHash.Length} and {entry.Hash.Length})");
        }

        if (!hashAlreadyChecked)
        {
            JournalCodec.ComputeHash(seq, entry.TimeUnixMicros, entry.Type, entry.Payload.Span, entry.PrevHash.Span, _hashScratch);
        }

        if (!hashAlreadyChecked && !_hashScratch.AsSpan().SequenceEqual(entry.Hash.Span))
        {
            throw Fail(seq, JournalFault.BadHash, "the entry hash does not match its canonical encoding");
        }

        if (!entry.PrevHash.Span.SequenceEqual(_headHash))
        {
            throw Fail(seq, JournalFault.Fork, $"prev_hash does not match the hash of seq {_headSeq}");
        }

        if (seq == 1 && entry.Type != EntryType.Genesis)
        {
            throw Fail(seq, JournalFault.Malformed, "seq 1 must be the genesis entry");
        }

        IMessage payload;
        try
        {
            payload = parser.ParseFrom(entry.Payload);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw Fail(seq, JournalFault.Malformed, $"{entry.Type} payload does not parse: {ex.Message}");
        }

        ReadOnlyMemory<byte> issued = ReadOnlyMemory<byte>.Empty;
        switch (payload)
        {
            case Genesis g:
                AcceptGenesis(entry, g);
                break;
            case CertificateIssued c:
                issued = CheckIssued(seq, c, _caSignatureChecked.Remove(entry));
                break;
            case Checkpoint cp:
                CheckCheckpoint(seq, cp);
                LastCheckpointSeq = seq;
                break;
        }

        // Commit: the entry becomes the head.
        _headSeq = seq;
        _headHash = entry.Hash.ToByteArray();
        _head = new JournalHead(seq, (byte[])_headHash.Clone()); // callers get their own copy of the hash
        return new VerifiedEntry(entry, payload, null) { LazyCertificateDer = issued };
    }

    private void AcceptGenesis(JournalEntry entry, Genesis g)
    {
        ulong seq = entry.Seq;
        if (seq != 1)
        {
            throw Fail(seq, JournalFault.OutOfRange, "a genesis entry is only allowed at seq 1");
        }

        if (g.JournalId.Length != JournalCodec.JournalIdSize || string.IsNullOrEmpty(g.FactoryId)
            || g.IssuingCaChain.Count == 0 || g.JournalSignerCertificate.IsEmpty)
        {
            throw Fail(seq, JournalFault.Malformed, "genesis needs a 16-byte journal id, a factory id, an issuing CA chain and a journal signer certificate");
        }

        var anchor = new JournalAnchor(g.JournalId.ToByteArray(), g.FactoryId, g.IssuingCaChain[0].ToByteArray(), g.JournalSignerCertificate.ToByteArray());
        if (Anchor is not null)
        {
            if (!Anchor.JournalId.AsSpan().SequenceEqual(anchor.JournalId) || Anchor.FactoryId != anchor.FactoryId
                || !Anchor.IssuingCaCertificate.AsSpan().SequenceEqual(anchor.IssuingCaCertificate)
                || !Anchor.JournalSignerCertificate.AsSpan().SequenceEqual(anchor.JournalSignerCertificate))
            {
                throw Fail(seq, JournalFault.WrongJournal, $"genesis (factory {g.FactoryId}, journal {Convert.ToHexStringLower(anchor.JournalId)}) does not match the expected journal (factory {Anchor.FactoryId}, journal {Convert.ToHexStringLower(Anchor.JournalId)})");
            }
        }

        var chain = new List<X509Certificate2>();
        X509Certificate2? signer = null;
        try
        {
            try
            {
                foreach (var der in g.IssuingCaChain)
                {
                    chain.Add(X509CertificateLoader.LoadCertificate(der.Span));
                }

                signer = X509CertificateLoader.LoadCertificate(g.JournalSignerCertificate.Span);
            }
            catch (CryptographicException ex)
            {
                throw Fail(seq, JournalFault.Malformed, $"genesis certificate does not decode: {ex.Message}");
            }

            var ca = chain[0];
            var bc = ca.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault();
            if (bc is null || !bc.CertificateAuthority)
            {
                throw Fail(seq, JournalFault.UnknownSigner, $"issuing CA '{ca.Subject}' is not a CA certificate (basicConstraints cA)");
            }

            var eku = signer.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault();
            if (eku is null || !eku.EnhancedKeyUsages.Cast<Oid>().Any(o => o.Value == Oids.JournalSignerEku))
            {
                throw Fail(seq, JournalFault.UnknownSigner, $"journal signer '{signer.Subject}' lacks the journal-signer EKU {Oids.JournalSignerEku}");
            }

            if (_root is not null)
            {
                DateTime at;
                try
                {
                    at = JournalCodec.FromUnixMicros(entry.TimeUnixMicros).UtcDateTime;
                }
                catch (ArgumentOutOfRangeException)
                {
                    throw Fail(seq, JournalFault.Malformed, "genesis time is out of range");
                }

                if (!ChainsToRoot(ca, chain.Skip(1), at, out var why))
                {
                    throw Fail(seq, JournalFault.UnknownSigner, $"issuing CA '{ca.Subject}' does not chain to the trusted root '{_root.Subject}' at {at:O}: {why}");
                }

                if (!ChainsToRoot(signer, chain, at, out why))
                {
                    throw Fail(seq, JournalFault.UnknownSigner, $"journal signer '{signer.Subject}' does not chain to the trusted root '{_root.Subject}' at {at:O}: {why}");
                }
            }

            try
            {
                SetTrust(ca, signer, anchor);
            }
            catch (CryptographicException ex)
            {
                throw Fail(seq, JournalFault.Malformed, $"genesis public key is unusable: {ex.Message}");
            }
        }
        finally
        {
            foreach (var c in chain)
            {
                c.Dispose();
            }

            signer?.Dispose();
        }
    }

    private void SetTrust(X509Certificate2 ca, X509Certificate2 signer, JournalAnchor anchor)
    {
        var caKey = SignatureCheckKey.FromCertificate(ca);
        var signerKey = SignatureCheckKey.FromCertificate(signer);
        _caKey?.Dispose();
        _signerKey?.Dispose();
        _caKey = caKey;
        _signerKey = signerKey;
        _caSignatureChecked.Clear();
        _caSubject = ca.SubjectName.RawData;
        _signerSha256 = SHA256.HashData(anchor.JournalSignerCertificate);
        Anchor = anchor;
    }

    private bool ChainsToRoot(X509Certificate2 leaf, IEnumerable<X509Certificate2> extra, DateTime at, out string why)
    {
        using var chain = new X509Chain();
        var p = chain.ChainPolicy;
        p.TrustMode = X509ChainTrustMode.CustomRootTrust;
        p.CustomTrustStore.Add(_root!);
        foreach (var c in extra)
        {
            p.ExtraStore.Add(c);
        }

        p.RevocationMode = X509RevocationMode.NoCheck;
        p.DisableCertificateDownloads = true;
        p.VerificationTime = at;
        bool ok = chain.Build(leaf);
        why = ok ? string.Empty : string.Join("; ", chain.ChainStatus.Select(s => $"{s.Status} ({s.StatusInformation.Trim()})"));
        foreach (var element in chain.ChainElements)
        {
            if (!ReferenceEquals(element.Certificate, leaf))
            {
                element.Certificate.Dispose();
            }
        }

        return ok;
    }

    private ReadOnlyMemory<byte> CheckIssued(ulong seq, CertificateIssued c, bool signatureChecked)
    {
        if (_caKey is null)
        {
            throw Fail(seq, JournalFault.Malformed, "certificate entry before genesis");
        }

        if (_verifyIssuedCertificates)
        {
            DerCertificateParts parts;
            try
            {
                parts = DerCertificateParts.Parse(c.Certificate.Memory);
            }
            catch (CryptographicException ex)
            {
                throw Fail(seq, JournalFault.Malformed, $"issued certificate does not decode: {ex.Message}");
            }

            if (!parts.Issuer.Span.SequenceEqual(_caSubject))
            {
                throw Fail(seq, JournalFault.ForeignCertificate, "the certificate's issuer name is not the issuing CA's subject");
            }

            if (!signatureChecked && !_caKey.VerifyX509Signature(parts.SignatureAlgorithmOid, parts.Tbs.Span, parts.Signature.Span))
            {
                throw Fail(seq, JournalFault.ForeignCertificate, $"the certificate (serial {Convert.ToHexString(parts.SerialNumber.Span)}) is not signed by the issuing CA");
            }
        }

        return MaterializeIssuedCertificates ? c.Certificate.Memory : ReadOnlyMemory<byte>.Empty;
    }

    private void CheckCheckpoint(ulong seq, Checkpoint cp)
    {
        if (Anchor is null || _signerKey is null)
        {
            throw Fail(seq, JournalFault.Malformed, "checkpoint before genesis");
        }

        if (!cp.JournalId.Span.SequenceEqual(Anchor.JournalId))
        {
            throw Fail(seq, JournalFault.WrongJournal, $"checkpoint names journal {Convert.ToHexStringLower(cp.JournalId.Span)}, expected {Convert.ToHexStringLower(Anchor.JournalId)}");
        }

        if (cp.Seq != _headSeq || !cp.HeadHash.Span.SequenceEqual(_headHash))
        {
            throw Fail(seq, JournalFault.StaleCheckpoint, $"checkpoint covers seq {cp.Seq}, but the head is seq {_headSeq} (or its hash differs)");
        }

        if (!cp.SignerCertificateSha256.Span.SequenceEqual(_signerSha256))
        {
            throw Fail(seq, JournalFault.UnknownSigner, "checkpoint names a signer certificate other than the genesis journal signer");
        }

        var signed = JournalCodec.CheckpointSigningBytes(Anchor.JournalId, cp.Seq, _headHash, cp.TimeUnixMicros);
        if (!_signerKey.VerifySigningKeySignature(signed, cp.Signature.Span))
        {
            throw Fail(seq, JournalFault.BadSignature, "checkpoint signature does not verify with the journal signer key");
        }
    }

    private static JournalVerificationException Fail(ulong seq, JournalFault fault, string detail) => new(seq, fault, detail);

    /// <summary>Entries whose issuing-CA signature verified ahead of <see cref="Accept(JournalEntry)"/>, and the key that verified them.</summary>
    public sealed class CheckedAhead
    {
        internal CheckedAhead(object? key, IReadOnlyList<JournalEntry> entries)
        {
            Key = key;
            Entries = entries;
        }

        /// <summary>The certificate entries that passed.</summary>
        public IReadOnlyList<JournalEntry> Entries { get; }

        /// <summary>The CA key used (null: nothing was checked).</summary>
        internal object? Key { get; }
    }

    /// <summary>Releases the cached public keys.</summary>
    public void Dispose()
    {
        _caKey?.Dispose();
        _signerKey?.Dispose();
        _caKey = null;
        _signerKey = null;
    }
}
