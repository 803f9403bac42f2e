using Microsoft.Extensions.Logging;
using OfflinePki.Journal;

namespace OfflinePki.Tests.Journal;

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
