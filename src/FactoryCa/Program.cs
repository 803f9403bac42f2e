using OfflinePki.FactoryCa;

// Issue 16 finding 7: every verb (serve, export, import, rebuild-index...) creates its files private (umask 077).
OfflinePki.Hosting.PrivateFiles.Restrict();
OfflinePki.OpenSsl.OpenSslAcceleration.Enable();

// One file per verb in Cli/; this only assembles them.
var root = new System.CommandLine.RootCommand("OfflinePki FactoryCa: offline factory CA for IEEE 802.1AR device identity");
foreach (var command in new[]
{
    ServeCommand.Create(), CheckConfigCommand.Create(), SyncNowCommand.Create(), StatusCommand.Create(), VerifyCommand.Create(),
    RebuildIndexCommand.Create(), ExportCommand.Create(), ImportReceiptCommand.Create(), RevokeStationCommand.Create(),
    SignBatchCommand.Create(), CeremonyCommand.Create(), ImportOrderCommand.Create(), OrdersCommand.Create(),
})
{
    root.Subcommands.Add(command);
}

return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
