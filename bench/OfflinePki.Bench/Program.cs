using OfflinePki.Bench;

OfflinePki.OpenSsl.OpenSslAcceleration.Enable();

// Benchmarks, each measured against a peer in the same run. `dotnet run -c Release --project bench/OfflinePki.Bench -- VERB [options]`
// `-- --help` lists the verbs, `-- VERB --help` a verb's options and their defaults (BenchCli).
return await BenchCli.RunAsync(args);
