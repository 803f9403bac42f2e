using Microsoft.Extensions.Options;

namespace OfflinePki.Journal;

/// <summary>Configuration of the factory journal (section <c>FactoryCa:Journal</c>).</summary>
public sealed class JournalWriterOptions
{
    /// <summary>The configuration section these options bind to.</summary>
    public const string SectionName = "FactoryCa:Journal";

    /// <summary>The journal directory; it holds <c>journal.log</c> and is created if missing.</summary>
    public string Directory { get; set; } = string.Empty;

    /// <summary>Write a checkpoint after this many entries since the last one (1 to 1,000,000; default 1000).</summary>
    public int CheckpointEveryEntries { get; set; } = 1000;

    /// <summary>Write a checkpoint this often when entries were added since the last one (1 s to 24 h; default 5 min).</summary>
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Largest serialized entry accepted by an append, in bytes (4 KiB to 16 MiB; default 1 MiB).</summary>
    public int MaxEntryBytes { get; set; } = 1 << 20;

    /// <summary>Checks every field; the message names the configuration key.</summary>
    /// <exception cref="OptionsValidationException">One or more fields are out of range.</exception>
    public void Validate()
    {
        var errors = Errors().ToList();
        if (errors.Count > 0)
        {
            throw new OptionsValidationException(SectionName, typeof(JournalWriterOptions), errors);
        }
    }

    /// <summary>The validation failures, each naming its configuration key; empty when valid.</summary>
    public IEnumerable<string> Errors()
    {
        if (string.IsNullOrWhiteSpace(Directory))
        {
            yield return $"{SectionName}:Directory is required (the directory that holds journal.log)";
        }

        if (CheckpointEveryEntries is < 1 or > 1_000_000)
        {
            yield return $"{SectionName}:CheckpointEveryEntries must be between 1 and 1000000 (got {CheckpointEveryEntries})";
        }

        if (CheckpointInterval < TimeSpan.FromSeconds(1) || CheckpointInterval > TimeSpan.FromHours(24))
        {
            yield return $"{SectionName}:CheckpointInterval must be between 00:00:01 and 24:00:00 (got {CheckpointInterval})";
        }

        if (MaxEntryBytes is < 4096 or > 16 << 20)
        {
            yield return $"{SectionName}:MaxEntryBytes must be between 4096 and 16777216 (got {MaxEntryBytes})";
        }
    }
}

/// <summary>Validates <see cref="JournalWriterOptions"/> at startup (<c>ValidateOnStart</c>).</summary>
public sealed class JournalWriterOptionsValidator : IValidateOptions<JournalWriterOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, JournalWriterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Errors().ToList();
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>What a new journal's genesis entry records (brief, "The journal": factory ID, CA chain, signer certificate, policy hash).</summary>
/// <param name="FactoryId">The factory id; an existing journal must have the same.</param>
/// <param name="IssuingCaChain">DER certificates: [0] the issuing CA, then intermediates, root excluded.</param>
/// <param name="PolicySha256">SHA-256 of the policy in force (32 bytes).</param>
public sealed record GenesisParameters(string FactoryId, IReadOnlyList<byte[]> IssuingCaChain, byte[] PolicySha256);

/// <summary>The writer's health: a failed journal stays failed until the process restarts (fail closed).</summary>
/// <param name="IsHealthy">False once any write, fsync or signing step failed.</param>
/// <param name="Failure">Why it failed (no secrets); null while healthy.</param>
/// <param name="DurableSeq">The last durable seq.</param>
public sealed record JournalHealth(bool IsHealthy, string? Failure, ulong DurableSeq);
