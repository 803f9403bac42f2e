using SharpFuzz;

namespace OfflinePki.Fuzz;

/// <summary>
/// Entry point. "OfflinePki.Fuzz TARGET" runs under afl-fuzz (SharpFuzz out-of-process loop);
/// "OfflinePki.Fuzz replay TARGET FILE|DIR..." runs saved inputs once each; "OfflinePki.Fuzz list" names the targets.
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length == 1 && args[0] == "list")
        {
            foreach (var t in FuzzTarget.All)
            {
                Console.WriteLine(t.Name);
            }

            return 0;
        }

        if (args.Length >= 3 && args[0] == "replay")
        {
            var target = FuzzTarget.Find(args[1]);
            if (target is null)
            {
                return Usage();
            }

            int failures = 0;
            foreach (var file in args.Skip(2).SelectMany(p => Directory.Exists(p) ? Directory.GetFiles(p) : [p]).Order(StringComparer.Ordinal))
            {
                try
                {
                    target.Run(File.ReadAllBytes(file));
                }
#pragma warning disable CA1031 // the replay reports every unexpected exception, whatever its type
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    failures++;
                    Console.Error.WriteLine($"{file}: {ex}");
                }
            }

            return failures == 0 ? 0 : 1;
        }

        if (args.Length == 1 && FuzzTarget.Find(args[0]) is { } fuzzTarget)
        {
            Fuzzer.OutOfProcess.Run(stream =>
            {
                using var buffer = new MemoryStream();
                stream.CopyTo(buffer);
                fuzzTarget.Run(buffer.ToArray());
            });
            return 0;
        }

        return Usage();
    }

    private static int Usage()
    {
        Console.Error.WriteLine("usage: OfflinePki.Fuzz TARGET | replay TARGET FILE|DIR... | list");
        Console.Error.WriteLine("targets: " + string.Join(", ", FuzzTarget.All.Select(t => t.Name)));
        return 2;
    }
}
