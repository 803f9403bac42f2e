using Microsoft.Extensions.Logging;
using OfflinePki.Journal;

namespace OfflinePki.Tests.Journal;

/// <summary>A clock the test moves by hand; its timers fire during <see cref="Advance"/>.</summary>
internal sealed class ManualTimeProvider(DateTimeOffset start) : TimeProvider
{
    private readonly Lock _lock = new();
    private readonly List<ManualTimer> _timers = [];
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow()
    {
        lock (_lock)
        {
            return _now;
        }
    }

    public void Advance(TimeSpan by)
    {
        List<ManualTimer> due;
        lock (_lock)
        {
            _now += by;
            due = _timers.Where(t => t.Due is { } d && d <= _now).ToList();
            foreach (var t in due)
            {
                t.Due = t.Period > TimeSpan.Zero ? _now + t.Period : null;
            }
        }

        foreach (var t in due)
        {
            t.Fire();
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var t = new ManualTimer(this, callback, state);
        lock (_lock)
        {
            _timers.Add(t);
        }

        t.Change(dueTime, period);
        return t;
    }

    private sealed class ManualTimer(ManualTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        public DateTimeOffset? Due { get; set; }
        public TimeSpan Period { get; private set; }

        public void Fire() => callback(state);

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (owner._lock)
            {
                Due = dueTime == Timeout.InfiniteTimeSpan ? null : owner._now + dueTime;
                Period = period == Timeout.InfiniteTimeSpan ? TimeSpan.Zero : period;
            }

            return true;
        }

        public void Dispose()
        {
            lock (owner._lock)
            {
                owner._timers.Remove(this);
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>Collects log lines.</summary>
internal sealed class ListLogger : ILogger
{
    public List<(LogLevel Level, string Message)> Lines { get; } = [];

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (Lines)
        {
            Lines.Add((logLevel, formatter(state, exception)));
        }
    }
}

/// <summary>A file storage with switches that make writes or fsyncs fail.</summary>
internal sealed class FaultyStorage(IJournalStorage inner) : IJournalStorage
{
    public bool FailFlush { get; set; }

    /// <summary>When set, each fsync signals <see cref="FlushEntered"/> and then waits for this gate before going on.</summary>
    public SemaphoreSlim? FlushGate { get; set; }

    /// <summary>Released once each time an fsync reaches <see cref="FlushGate"/>.</summary>
    public SemaphoreSlim FlushEntered { get; } = new(0);

    /// <summary>Bytes appended so far through this storage (written, not necessarily durable).</summary>
    public long Appended => Interlocked.Read(ref _appended);

    private long _appended;

    /// <summary>Write this many bytes of the next append, then throw.</summary>
    public int? FailWriteAfterBytes { get; set; }
    public int Flushes { get; private set; }

    public string Path => inner.Path;
    public long Length => inner.Length;

    public void Append(ReadOnlySpan<byte> data)
    {
        if (FailWriteAfterBytes is { } n)
        {
            inner.Append(data[..Math.Min(n, data.Length)]);
            inner.Flush();
            throw new IOException("No space left on device (injected)");
        }

        inner.Append(data);
        Interlocked.Add(ref _appended, data.Length);
    }

    public void Flush()
    {
        if (FlushGate is { } gate)
        {
            FlushEntered.Release();
            gate.Wait();
        }

        if (FailFlush)
        {
            throw new IOException("Input/output error (injected)");
        }

        inner.Flush();
        Flushes++;
    }

    public void Truncate(long length) => inner.Truncate(length);
    public Stream OpenRead() => inner.OpenRead();
    public void Dispose() => inner.Dispose();
}
