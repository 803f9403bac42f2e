using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace OfflinePki.Bench;

/// <summary>
/// The bench's command line (System.CommandLine): one subcommand per benchmark, each with typed options and their
/// defaults. Unknown verbs and options, missing values and values that do not parse are refused before anything runs.
/// </summary>
public static class BenchCli
{
    /// <summary>Exit code for a command line that does not parse (the benchmarks' own failures use 1).</summary>
    public const int BadArguments = 2;

    /// <summary>
    /// The root command holding every benchmark verb. The <c>[diagram]</c> directive (first argument) prints how a
    /// command line parses, with each value and default, and runs nothing.
    /// </summary>
    public static RootCommand Root()
    {
        var root = new RootCommand("OfflinePki benchmarks, each measured against a peer in the same run: dotnet run -c Release --project bench/OfflinePki.Bench -- VERB [options]")
        {
            BareHttpBench.Command(),
            CrlBench.Command(),
            DevicePolicyBench.Command(),
            HsmBench.Command(),
            IssuanceBench.Command(),
            JournalBench.Command(),
            OcspBench.Command(),
            OrdersBench.Command(),
            ProfilesBench.Command(),
            StagesBench.Command(),
            StationBench.Command(),
            SyncBench.Command(),
        };
        root.Directives.Add(new DiagramDirective());
        return root;
    }

    /// <summary>
    /// Parses <paramref name="args"/> and runs the chosen benchmark. A command line with errors (an unknown verb or
    /// option, a missing or malformed value) prints each error and a pointer to <c>--help</c> on standard error and
    /// returns <see cref="BadArguments"/> without running anything (no verb at all is such an error too).
    /// </summary>
    public static async Task<int> RunAsync(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var root = Root();
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors)
            {
                await Console.Error.WriteLineAsync("error: " + error.Message).ConfigureAwait(false);
            }

            string verb = parsed.CommandResult.Command == root ? string.Empty : parsed.CommandResult.Command.Name + " ";
            await Console.Error.WriteLineAsync($"see: OfflinePki.Bench {verb}--help").ConfigureAwait(false);
            return BadArguments;
        }

        return await parsed.InvokeAsync().ConfigureAwait(false);
    }

    /// <summary>A benchmark verb with its options; <paramref name="run"/> reads their values from the parse result.</summary>
    public static Command Verb(string name, string description, IEnumerable<Option> options, Func<ParseResult, Task<int>> run)
    {
        var command = new Command(name, description);
        foreach (var option in options)
        {
            command.Options.Add(option);
        }

        command.SetAction((parseResult, _) => run(parseResult));
        return command;
    }

    /// <summary>An integer option of at least <paramref name="min"/>, with a default.</summary>
    public static Option<int> Int(string name, int defaultValue, string description, int min = 1) =>
        Number(name, defaultValue, description, $"a whole number of at least {min}", s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= min ? v : null);

    /// <summary>A 64-bit integer option of at least <paramref name="min"/>, with a default.</summary>
    public static Option<long> Long(string name, long defaultValue, string description, long min = 1) =>
        Number(name, defaultValue, description, $"a whole number of at least {min}", s => long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) && v >= min ? v : null);

    /// <summary>A number option (invariant culture, e.g. <c>0.5</c>) above zero, with a default.</summary>
    public static Option<double> Positive(string name, double defaultValue, string description) =>
        Number(name, defaultValue, description, "a number above 0", s => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v > 0 && double.IsFinite(v) ? v : null);

    /// <summary>A comma-separated list of integers of at least 1 (e.g. <c>1,8,64</c>), with a default.</summary>
    public static Option<int[]> IntList(string name, int[] defaultValue, string description) => new(name)
    {
        Description = $"{description} (comma-separated, e.g. {string.Join(',', defaultValue)})",
        DefaultValueFactory = _ => defaultValue,
        CustomParser = result =>
        {
            if (result.Tokens.Count == 0)
            {
                return defaultValue;
            }

            string text = result.Tokens[0].Value;
            var values = new List<int>();
            foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
            {
                if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < 1)
                {
                    result.AddError($"{name} '{text}': '{part}' is not a whole number of at least 1 (give e.g. {string.Join(',', defaultValue)})");
                    return defaultValue;
                }

                values.Add(v);
            }

            return [.. values];
        },
    };

    /// <summary>A text option (a path, a mode); null when absent unless <paramref name="defaultValue"/> is given.</summary>
    public static Option<string?> Text(string name, string description, string? defaultValue = null) => new(name)
    {
        Description = description,
        DefaultValueFactory = defaultValue is null ? null : _ => defaultValue,
    };

    /// <summary>A switch that takes no value.</summary>
    public static Option<bool> Flag(string name, string description) => new(name) { Description = description, Arity = ArgumentArity.Zero };

    private static Option<T> Number<T>(string name, T defaultValue, string description, string rule, Func<string, T?> parse)
        where T : struct => new(name)
        {
            Description = description,
            DefaultValueFactory = _ => defaultValue,
            CustomParser = result =>
            {
                if (result.Tokens.Count == 0)
                {
                    return defaultValue;
                }

                string text = result.Tokens[0].Value;
                if (parse(text) is { } value)
                {
                    return value;
                }

                result.AddError(string.Create(CultureInfo.InvariantCulture, $"{name} '{text}' is not {rule} (default {defaultValue})"));
                return defaultValue;
            },
        };
}
