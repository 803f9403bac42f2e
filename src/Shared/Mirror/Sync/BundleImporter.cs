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
