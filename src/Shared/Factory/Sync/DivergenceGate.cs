using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OfflinePki.Enrollment;
using OfflinePki.Journal;
using OfflinePki.Factory;

namespace OfflinePki.Sync;

/// <summary>What the factory does once too much of its journal lacks a mirror receipt.</summary>
public enum DivergenceMode
{
    /// <summary>Log a warning and show it in status; keep issuing.</summary>
    WarnOnly = 0,

    /// <summary>Refuse enrollment (EST 503) until the mirror confirms enough entries.</summary>
    StopTheLine = 1,
}

/// <summary>Bounded divergence policy (FactoryCa:Divergence).</summary>
public sealed class DivergenceOptions
{
    /// <summary>Configuration section name under FactoryCa.</summary>
    public const string Section = "Divergence";

    /// <summary>Most journal entries (certificates, checkpoints, ...) allowed without a mirror receipt (default 100,000).</summary>
    public long MaxUnconfirmedEntries { get; set; } = 100_000;

    /// <summary>Oldest an unconfirmed entry may be (default 24 h).</summary>
    public TimeSpan MaxUnconfirmedAge { get; set; } = TimeSpan.FromHours(24);

    /// <summary>What to do beyond either bound (default <see cref="DivergenceMode.WarnOnly"/>).</summary>
    public DivergenceMode Mode { get; set; } = DivergenceMode.WarnOnly;

    /// <summary>Validation errors, each naming its key under <paramref name="prefix"/> (e.g. "FactoryCa:Divergence").</summary>
    public IEnumerable<string> Validate(string prefix)
    {
        if (MaxUnconfirmedEntries < 1)
        {
            yield return $"{prefix}:MaxUnconfirmedEntries: {MaxUnconfirmedEntries} must be at least 1";
        }

        if (MaxUnconfirmedAge <= TimeSpan.Zero)
        {
            yield return $"{prefix}:MaxUnconfirmedAge: {MaxUnconfirmedAge} must be positive";
        }

        if (!Enum.IsDefined(Mode))
        {
            yield return $"{prefix}:Mode: must be StopTheLine or WarnOnly";
        }
    }
}

/// <summary>How far the factory's journal runs ahead of the mirror's newest receipt.</summary>
/// <param name="HeadSeq">Our journal head.</param>
/// <param name="ConfirmedSeq">Seq of the newest stored mirror receipt (0 when none).</param>
/// <param name="UnconfirmedEntries">HeadSeq − ConfirmedSeq.</param>
/// <param name="OldestUnconfirmedAt">Time of entry ConfirmedSeq+1, or null when everything is confirmed.</param>
/// <param name="UnconfirmedAge">Now − OldestUnconfirmedAt (zero when everything is confirmed).</param>
/// <param name="Exceeded">Null when within bounds; else the reason ("5000 journal entries not yet confirmed ...").</param>
public sealed record DivergenceStatus(ulong HeadSeq, ulong ConfirmedSeq, ulong UnconfirmedEntries, DateTimeOffset? OldestUnconfirmedAt,
    TimeSpan UnconfirmedAge, string? Exceeded);

/// <summary>
/// Bounded divergence (issue 3): before each signature, compares our journal head with the newest mirror receipt. Beyond
/// <see cref="DivergenceOptions.MaxUnconfirmedEntries"/> or <see cref="DivergenceOptions.MaxUnconfirmedAge"/> it stops the
/// line (<see cref="EnrollmentUnavailableException"/>, EST 503) or only warns, per <see cref="DivergenceOptions.Mode"/>.
/// The time of the oldest unconfirmed entry is read once per receipt seq and cached.
/// </summary>
public sealed class DivergenceGate : IIssuanceGate
{
    private readonly IJournalReader _reader;
    private readonly MirrorReceiptStore _receipts;
    private readonly DivergenceOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private ulong _cachedFor = ulong.MaxValue;
    private DateTimeOffset? _cachedOldest;
    private DateTimeOffset _lastWarning = DateTimeOffset.MinValue;

    /// <summary>Creates the gate.</summary>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    public DivergenceGate(IJournalReader reader, MirrorReceiptStore receipts, DivergenceOptions options, TimeProvider timeProvider, ILogger<DivergenceGate>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(receipts);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        _reader = reader;
        _receipts = receipts;
        _options = options;
        _time = timeProvider;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>The policy in force.</summary>
    public DivergenceOptions Options => _options;

    /// <summary>The current divergence (for status).</summary>
    public DivergenceStatus Status()
    {
        ulong head = _reader.Head.Seq;
        ulong confirmed = Math.Min(_receipts.ConfirmedSeq, head);
        ulong unconfirmed = head - confirmed;
        DateTimeOffset? oldest = unconfirmed == 0 ? null : OldestUnconfirmed(confirmed);
        var now = _time.GetUtcNow();
        var age = oldest is { } o && now > o ? now - o : TimeSpan.Zero;
        string? exceeded = null;
        if (unconfirmed > (ulong)_options.MaxUnconfirmedEntries)
        {
            exceeded = $"{unconfirmed} journal entries (certificates) not yet confirmed by the mirror (limit FactoryCa:Divergence:MaxUnconfirmedEntries = {_options.MaxUnconfirmedEntries}; last receipt at seq {confirmed})";
        }
        else if (age > _options.MaxUnconfirmedAge)
        {
            exceeded = $"the oldest of {unconfirmed} journal entries not yet confirmed by the mirror is {age:d\\.hh\\:mm\\:ss} old (limit FactoryCa:Divergence:MaxUnconfirmedAge = {_options.MaxUnconfirmedAge}; last receipt at seq {confirmed})";
        }

        return new DivergenceStatus(head, confirmed, unconfirmed, oldest, age, exceeded);
    }

    /// <inheritdoc />
    public void EnsureOpen()
    {
        var s = Status();
        if (s.Exceeded is null)
        {
            return;
        }

        if (_options.Mode == DivergenceMode.StopTheLine)
        {
            _logger.LogError("line stopped: {Reason}", s.Exceeded);
            throw new EnrollmentUnavailableException("line stopped: " + s.Exceeded);
        }

        var now = _time.GetUtcNow();
        if (now - _lastWarning >= TimeSpan.FromMinutes(1))
        {
            _lastWarning = now;
            _logger.LogWarning("divergence beyond policy (WarnOnly, issuing continues): {Reason}", s.Exceeded);
        }
    }

    private DateTimeOffset? OldestUnconfirmed(ulong confirmed)
    {
        lock (_lock)
        {
            if (_cachedFor == confirmed)
            {
                return _cachedOldest;
            }
        }

        var entry = _reader.ReadFrom(confirmed + 1).FirstOrDefault();
        if (entry is null || entry.Seq != confirmed + 1)
        {
            return null;
        }

        var at = JournalCodec.FromUnixMicros(entry.TimeUnixMicros);
        lock (_lock)
        {
            _cachedFor = confirmed;
            _cachedOldest = at;
        }

        return at;
    }
}
