using System.CommandLine;
using OfflinePki.FactoryCa;

// Issue 16 finding 7: every verb (serve, export, import, rebuild-index...) creates its files private (umask 077).
OfflinePki.Hosting.PrivateFiles.Restrict();
OfflinePki.OpenSsl.OpenSslAcceleration.Enable();

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

var fromSeq = new Option<ulong>("--from") { Description = "first seq", DefaultValueFactory = _ => 1 };
var toSeq = new Option<ulong>("--to") { Description = "last seq (extended to the next checkpoint; 0: the head)", DefaultValueFactory = _ => 0 };
var outFile = new Option<string>("--out") { Description = "bundle file to write", Required = true };
var export = new Command("export", "Write a signed air-gap bundle of a seq range (asks a running daemon to checkpoint first)");
foreach (var opt in new Option[] { config, fromSeq, toSeq, outFile })
{
    export.Options.Add(opt);
}

export.SetAction((parse, ct) => FactoryCli.ExportAsync(parse.GetValue(config)!, parse.GetValue(fromSeq), parse.GetValue(toSeq), parse.GetValue(outFile)!, ct));
var inFile = new Option<string>("--in") { Description = "receipt file written by MirrorCa import", Required = true };
var importReceipt = new Command("import-receipt", "Verify and store a mirror receipt carried back from an air-gapped mirror");
importReceipt.Options.Add(config);
importReceipt.Options.Add(inFile);
importReceipt.SetAction((parse, ct) => FactoryCli.ImportReceiptAsync(parse.GetValue(config)!, parse.GetValue(inFile)!, ct));

var fingerprint = new Option<string?>("--fingerprint") { Description = "SHA-256 (hex) of the station certificate DER" };
var stationCert = new Option<string?>("--cert") { Description = "the station certificate (PEM or DER)" };
var reason = new Option<string>("--reason") { Description = "why (journaled; 1-200 printable ASCII characters)", Required = true };
var revokeStation = new Command("revoke-station", "Revoke a station's TLS certificate on this factory (durable; the daemon refuses it from then on; journaled as PolicyChanged)");
foreach (var opt in new Option[] { config, fingerprint, stationCert, reason })
{
    revokeStation.Options.Add(opt);
}

revokeStation.SetAction((parse, ct) => StationRevocation.CliAsync(parse.GetValue(config)!, parse.GetValue(fingerprint), parse.GetValue(stationCert), parse.GetValue(reason)!, ct));

var root = new RootCommand("OfflinePki FactoryCa: offline factory CA for IEEE 802.1AR device identity");
foreach (var c in new[] { serve, check, syncNow, status, verify, rebuild, export, importReceipt, revokeStation })
{
    root.Subcommands.Add(c);
}

var orderFile = new Argument<string>("order") { Description = "signed order file (DER CMS, see ops/sign-order.sh)" };
var importOrder = new Command("import-order", "Send a signed production order to the running daemon, which verifies and journals it (OrderAccepted)");
importOrder.Options.Add(config);
importOrder.Arguments.Add(orderFile);
importOrder.SetAction((parse, ct) => FactoryCli.ImportOrderAsync(parse.GetValue(config)!, parse.GetValue(orderFile)!, ct));

var orders = new Command("orders", "List the running daemon's accepted production orders: quantity, issued, in flight, remaining");
orders.Options.Add(config);
orders.SetAction((parse, ct) => FactoryCli.OrdersAsync(parse.GetValue(config)!, ct));

var batchOrder = new Option<string>("--order") { Description = "accepted production order id the certificates consume", Required = true };
var csrDir = new Option<string>("--csr-dir") { Description = "folder of *.csr, *.pem, *.der, *.req PKCS#10 files (PEM or DER)", Required = true };
var batchOut = new Option<string>("--out") { Description = "output folder: <basename>.crt, chain.pem, refused.csv, batch-report.csv/.json", Required = true };
var batchOperator = new Option<string?>("--operator") { Description = "operator id journaled with each certificate" };
var batchProfile = new Option<string?>("--profile") { Description = "certificate profile (default: the order's)" };
var signBatch = new Command("sign-batch", "Offline: sign a folder of CSRs under a production order (daemon stopped; station batch-signer); exit 1 if any was refused");
foreach (var opt in new Option[] { config, batchOrder, csrDir, batchOut, batchOperator, batchProfile })
{
    signBatch.Options.Add(opt);
}

signBatch.SetAction((parse, ct) => BatchSigner.CliAsync(parse.GetValue(config)!, parse.GetValue(batchOrder)!, parse.GetValue(csrDir)!, parse.GetValue(batchOut)!,
    parse.GetValue(batchOperator), parse.GetValue(batchProfile), ct));
root.Subcommands.Add(signBatch);
root.Subcommands.Add(CeremonyCommand.Create());
root.Subcommands.Add(importOrder);
root.Subcommands.Add(orders);

return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
