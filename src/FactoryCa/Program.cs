using System.CommandLine;
using OfflinePki.FactoryCa;

var config = new Option<string>("--config") { Description = "JSON config file with a FactoryCa section", Required = true };
var journal = new Option<string>("--journal") { Description = "journal.log file (or the journal directory)", Required = true };
var rootCert = new Option<string>("--root") { Description = "PEM or DER root CA certificate to verify against", Required = true };

var serve = new Command("serve", "Run the EST enrollment service, the journal and the scheduled sync");
serve.Options.Add(config);
serve.SetAction((parse, ct) => FactoryCli.ServeAsync(parse.GetValue(config)!, ct));

var check = new Command("check-config", "Validate the config file and exit");
check.Options.Add(config);
check.SetAction((parse, ct) => FactoryCli.CheckConfigAsync(parse.GetValue(config)!));

var syncNow = new Command("sync-now", "Ask the running daemon to sync its journal to the mirror now, and print the result");
syncNow.Options.Add(config);
syncNow.SetAction((parse, ct) => FactoryCli.SyncNowAsync(parse.GetValue(config)!, ct));

var status = new Command("status", "Print the running daemon's journal, index and sync status");
status.Options.Add(config);
status.SetAction((parse, ct) => FactoryCli.StatusAsync(parse.GetValue(config)!, ct));

var verify = new Command("verify", "Verify a journal with nothing but the journal and the root certificate");
verify.Options.Add(journal);
verify.Options.Add(rootCert);
verify.SetAction(parse => FactoryCli.Verify(parse.GetValue(journal)!, parse.GetValue(rootCert)!));

var rebuild = new Command("rebuild-index", "Delete and rebuild the local SQLite index from the journal (daemon stopped)");
rebuild.Options.Add(config);
rebuild.SetAction((parse, ct) => FactoryCli.RebuildIndexAsync(parse.GetValue(config)!, ct));

var root = new RootCommand("OfflinePki FactoryCa: offline factory CA for IEEE 802.1AR device identity");
foreach (var c in new[] { serve, check, syncNow, status, verify, rebuild })
{
    root.Subcommands.Add(c);
}

return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
