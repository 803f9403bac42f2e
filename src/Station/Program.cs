using OfflinePki.Station;

return await StationCli.RunAsync(args, Console.Out, Console.Error).ConfigureAwait(false);
