using System.Reflection;
using OfflinePki.Bench;

OfflinePki.OpenSsl.OpenSslAcceleration.Enable();

// Benchmarks, each measured against a peer in the same run. `dotnet run -c Release --project bench/OfflinePki.Bench -- VERB [options]`
// A verb NAME runs the static RunAsync(string[]) of the class named NAMEBench in this assembly.
var benches = typeof(BenchSupport).Assembly.GetTypes()
    .Where(t => t.IsClass && t.IsAbstract && t.IsSealed && t.Name.EndsWith("Bench", StringComparison.Ordinal))
    .Select(t => (Name: t.Name[..^"Bench".Length].ToLowerInvariant(), Run: t.GetMethod("RunAsync", BindingFlags.Public | BindingFlags.Static, [typeof(string[])])))
    .Where(b => b.Run is not null)
    .OrderBy(b => b.Name, StringComparer.Ordinal)
    .ToList();

if (args.Length == 0 || benches.All(b => b.Name != args[0].ToLowerInvariant()))
{
    Console.Error.WriteLine("usage: OfflinePki.Bench VERB [options]   verbs: " + string.Join(", ", benches.Select(b => b.Name)));
    return 2;
}

var bench = benches.Single(b => b.Name == args[0].ToLowerInvariant());
return await (Task<int>)bench.Run!.Invoke(null, [args[1..]])!;
