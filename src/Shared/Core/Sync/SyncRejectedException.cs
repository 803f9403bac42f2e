using OfflinePki.Journal;

namespace OfflinePki.Sync;

/// <summary>
/// Why the mirror refused a sync call. The core names the kind of fault; the host maps each kind to one transport
/// status at its edge (conventions §12), so a new front end never edits the applier.
/// </summary>
public enum SyncFault
{
    /// <summary>The request itself is malformed: a missing or wrong-sized field, entries before metadata. The caller must fix it.</summary>
    InvalidRequest,

    /// <summary>A pushed entry is invalid on its own: bad hash, bad signature, unknown signer, foreign certificate, malformed, out of range.</summary>
    InvalidEntry,

    /// <summary>
    /// The push does not fit the mirror's state: a gap, a fork, a stale checkpoint, another journal, or an unknown journal
    /// not starting at seq 1. Retrying the same push cannot succeed; an operator or the factory's resume logic must act.
    /// </summary>
    Conflict,

    /// <summary>The authenticated caller may not touch this journal (it belongs to another factory).</summary>
    PermissionDenied,

    /// <summary>A limit was reached, e.g. too many bytes of entries without a checkpoint.</summary>
    ResourceExhausted,

    /// <summary>A dependency of the mirror is down, e.g. the receipt key cannot sign. Retry later.</summary>
    Unavailable,
}

/// <summary>
/// The mirror's sync core refused a call (JournalSync.GetHead or PushEntries, or an air-gap import). Whenever it is
/// thrown by a push, nothing of that push was applied (except <see cref="SyncFault.Unavailable"/> from the receipt,
/// which is raised after the commit). The message says what to do and carries no secrets; it travels to the peer.
/// </summary>
public sealed class SyncRejectedException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="fault">The kind of refusal.</param>
    /// <param name="seq">The seq of the offending entry, or null when the refusal is not about one entry.</param>
    /// <param name="message">What is wrong and what to do; no secrets.</param>
    /// <param name="inner">Optional cause (never sent to the peer).</param>
    public SyncRejectedException(SyncFault fault, ulong? seq, string message, Exception? inner = null)
        : base(message, inner)
    {
        Fault = fault;
        Seq = seq;
    }

    /// <summary>The kind of refusal.</summary>
    public SyncFault Fault { get; }

    /// <summary>The offending seq, or null.</summary>
    public ulong? Seq { get; }

    /// <summary>The journal verification fault behind an <see cref="SyncFault.InvalidEntry"/> or <see cref="SyncFault.Conflict"/>, or null.</summary>
    public JournalFault? JournalFault => (InnerException as JournalVerificationException)?.Fault;

    /// <summary>
    /// The sync fault of a journal verification fault: <see cref="SyncFault.Conflict"/> for state conflicts (gap, fork,
    /// stale checkpoint, wrong journal), else <see cref="SyncFault.InvalidEntry"/>.
    /// </summary>
    /// <param name="fault">The verification fault.</param>
    /// <returns>The sync fault.</returns>
    public static SyncFault FaultFor(JournalFault fault) => fault switch
    {
        Journal.JournalFault.Gap or Journal.JournalFault.Fork or Journal.JournalFault.StaleCheckpoint or Journal.JournalFault.WrongJournal => SyncFault.Conflict,
        _ => SyncFault.InvalidEntry,
    };
}
