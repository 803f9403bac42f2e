using System.CommandLine;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OfflinePki.Journal;
using OfflinePki.Journal.Index;
using OfflinePki.Sync;

namespace OfflinePki.FactoryCa;

/// <summary><c>FactoryCa verify --journal J --root R</c>: verifies a journal offline.</summary>
public static class VerifyCommand
{
    /// <summary>The <c>verify</c> command.</summary>
    public static Command Create()
    {
        var journal = new Option<string>("--journal") { Description = "journal.log file (or the journal directory)", Required = true };
        var rootCert = new Option<string>("--root") { Description = "PEM or DER root CA certificate to verify against", Required = true };
        var command = new Command("verify", "Verify a journal with nothing but the journal and the root certificate");
        command.Options.Add(journal);
        command.Options.Add(rootCert);
        command.SetAction(parse => Run(parse.GetValue(journal)!, parse.GetValue(rootCert)!));
        return command;
    }

    /// <summary>verify: checks every hash, the chain, genesis against the root, every certificate and checkpoint signature.</summary>
    public static int Run(string journalPath, string rootPath)
    {
        X509Certificate2 root;
        try
        {
            root = X509CertificateLoader.LoadCertificateFromFile(rootPath);
        }
        catch (Exception ex) when (ex is IOException or System.Security.Cryptography.CryptographicException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"cannot load root certificate '{rootPath}': {ex.Message}");
            return 2;
        }

        try
        {
            var r = JournalFileVerifier.Verify(journalPath, root);
            Console.WriteLine($"journal {Convert.ToHexStringLower(r.JournalId)} of factory {r.FactoryId}: OK");
            Console.WriteLine($"  entries {r.Entries}, certificates issued {r.CertificatesIssued}, checkpoints {r.Checkpoints}");
            Console.WriteLine($"  head seq {r.HeadSeq} hash {Convert.ToHexStringLower(r.HeadHash)}");
            Console.WriteLine($"  last signed checkpoint: entry {r.LastCheckpointSeq}; entries after it (hash-chained, not yet signed): {r.UnverifiedTailEntries}");
            if (r.TornTailBytes > 0)
            {
                Console.WriteLine($"  torn tail: {r.TornTailBytes} bytes after the last complete record (never acknowledged; recovery drops them)");
            }

            return 0;
        }
        catch (JournalVerificationException ex)
        {
            Console.Error.WriteLine("journal verification FAILED: " + ex.Message);
            return 1;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JournalUnavailableException)
        {
            Console.Error.WriteLine($"cannot read journal '{journalPath}': {ex.Message}");
            return 2;
        }
    }
}
