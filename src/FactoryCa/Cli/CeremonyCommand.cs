using System.CommandLine;
using System.Security.Cryptography;
using OfflinePki.Asn1;
using OfflinePki.Keys;
using OfflinePki.Keys.Pkcs11;

namespace OfflinePki.FactoryCa;

/// <summary>
/// <c>factoryca ceremony</c>: the key ceremony through PKCS#11 (<see cref="KeyCeremony"/>), and the token steps the demo
/// scripts need (<c>init-token</c>, <c>generate-key</c>, <c>import-key</c>). PINs are read from files only, never from
/// the command line. Exit codes: 0 done, 1 refused by the module or a token (or a second ceremony), 2 bad arguments.
/// </summary>
public static class CeremonyCommand
{
    private const string DefaultModule = "/usr/lib/softhsm/libsofthsm2.so";

    /// <summary>The <c>ceremony</c> command with its subcommands.</summary>
    public static Command Create()
    {
        var module = new Option<string>("--module") { Description = "PKCS#11 module (.so); for SoftHSM2, SOFTHSM2_CONF selects the token store", DefaultValueFactory = _ => DefaultModule };
        var work = new Option<string>("--work") { Description = "directory receiving pins/, certs/ and the signed ceremony record", Required = true };
        var env = new Option<string>("--env") { Description = "dev, test, staging or production (goes into O= of every CA certificate)", Required = true };
        var op = new Option<string>("--operator") { Description = "the operator's name, written into the signed record", Required = true };
        var factory = new Option<string[]>("--factory") { Description = "factory id (repeat for several; default F1)", AllowMultipleArgumentsPerToken = false };
        var ceremony = new Command("ceremony", "Key ceremony in PKCS#11 tokens: tokens, keys generated in them, CSRs, certificates and a record signed with the root key");
        foreach (var o in new Option[] { module, work, env, op, factory })
        {
            ceremony.Options.Add(o);
        }

        ceremony.SetAction(parse => Run(() =>
        {
            var ids = parse.GetValue(factory) is { Length: > 0 } given ? given : ["F1"];
            _ = new KeyCeremony(parse.GetValue(module)!, parse.GetValue(work)!, parse.GetValue(env)!, parse.GetValue(op)!, ids, TimeProvider.System, Console.Out).Run();
        }));

        var token = new Option<string>("--token") { Description = "token label", Required = true };
        var pinFile = new Option<string>("--pin-file") { Description = "file holding the user PIN (first line)", Required = true };
        var soPinFile = new Option<string>("--so-pin-file") { Description = "file holding the security officer PIN (first line)", Required = true };
        var label = new Option<string>("--label") { Description = "object label (CKA_LABEL)", Required = true };
        var id = new Option<string>("--id") { Description = "object id (CKA_ID), hex", Required = true };
        var curve = new Option<string>("--curve") { Description = "P-256 or P-384", DefaultValueFactory = _ => "P-256" };
        curve.AcceptOnlyFromAmong("P-256", "P-384");
        var keyFile = new Option<string>("--key") { Description = "PEM EC private key to import (PKCS#8 or SEC1)", Required = true };

        var init = new Command("init-token", "Initialise a token in a free slot (C_InitToken) and set its user PIN (C_InitPIN)");
        foreach (var o in new Option[] { module, token, pinFile, soPinFile })
        {
            init.Options.Add(o);
        }

        init.SetAction(parse => Run(() =>
        {
            byte[] so = Secret("--so-pin-file", parse.GetValue(soPinFile)!), user = Secret("--pin-file", parse.GetValue(pinFile)!);
            try
            {
                new TokenAdministration("ceremony init-token", parse.GetValue(module)!).InitToken(parse.GetValue(token)!, so, user);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(so);
                CryptographicOperations.ZeroMemory(user);
            }
        }));

        var generate = new Command("generate-key", "Generate an EC key pair in a token (private key sensitive, never extractable)");
        foreach (var o in new Option[] { module, token, pinFile, label, id, curve })
        {
            generate.Options.Add(o);
        }

        generate.SetAction(parse => Run(() => new TokenAdministration("ceremony generate-key", parse.GetValue(module)!).GenerateEcKeyPair(
            parse.GetValue(token)!, () => Secret("--pin-file", parse.GetValue(pinFile)!), parse.GetValue(label)!, Id(parse.GetValue(id)!),
            parse.GetValue(curve) == "P-384" ? Oids.Secp384r1 : Oids.Secp256r1)));

        var import = new Command("import-key", "Import a PEM EC private key and its public key into a token (same CKA_ID)");
        foreach (var o in new Option[] { module, token, pinFile, label, id, keyFile })
        {
            import.Options.Add(o);
        }

        import.SetAction(parse => Run(() =>
        {
            using var ec = ECDsa.Create();
            try
            {
                ec.ImportFromPem(File.ReadAllText(parse.GetValue(keyFile)!));
            }
            catch (Exception ex) when (ex is ArgumentException or CryptographicException)
            {
                throw new ArgumentException($"--key '{parse.GetValue(keyFile)}' is not a PEM EC private key: {ex.Message}", ex);
            }

            new TokenAdministration("ceremony import-key", parse.GetValue(module)!).ImportEcKey(
                parse.GetValue(token)!, () => Secret("--pin-file", parse.GetValue(pinFile)!), parse.GetValue(label)!, Id(parse.GetValue(id)!), ec);
        }));

        ceremony.Subcommands.Add(init);
        ceremony.Subcommands.Add(generate);
        ceremony.Subcommands.Add(import);
        return ceremony;
    }

    private static int Run(Action action)
    {
        try
        {
            action();
            return 0;
        }
        catch (ArgumentException ex)
        {
            Console.Error.WriteLine("ceremony: " + ex.Message);
            return 2;
        }
        catch (Exception ex) when (ex is SigningKeyUnavailableException or InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine("ceremony: " + ex.Message);
            return 1;
        }
    }

    private static byte[] Secret(string option, string path)
    {
        try
        {
            return KeyCeremony.ReadPinFile(path);
        }
        catch (SigningKeyUnavailableException ex)
        {
            throw new ArgumentException(option + ": " + ex.Message, ex);
        }
    }

    private static byte[] Id(string hex)
    {
        try
        {
            byte[] id = Convert.FromHexString(hex);
            return id.Length > 0 ? id : throw new ArgumentException("--id must not be empty");
        }
        catch (FormatException ex)
        {
            throw new ArgumentException($"--id '{hex}' is not hex", ex);
        }
    }
}
