using System.CommandLine;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Policy;

namespace OfflinePki.FactoryCa;

/// <summary><c>FactoryCa revoke-station</c>: revokes a station's TLS certificate on this factory.</summary>
public static class RevokeStationCommand
{
    /// <summary>The <c>revoke-station</c> command.</summary>
    public static Command Create()
    {
        var config = FactoryCli.ConfigOption();
        var fingerprint = new Option<string?>("--fingerprint") { Description = "SHA-256 (hex) of the station certificate DER" };
        var stationCert = new Option<string?>("--cert") { Description = "the station certificate (PEM or DER)" };
        var reason = new Option<string>("--reason") { Description = "why (journaled; 1-200 printable ASCII characters)", Required = true };
        var command = new Command("revoke-station", "Revoke a station's TLS certificate on this factory (durable; the daemon refuses it from then on; journaled as PolicyChanged)");
        foreach (var option in new Option[] { config, fingerprint, stationCert, reason })
        {
            command.Options.Add(option);
        }

        command.SetAction((parse, ct) => RunAsync(parse.GetValue(config)!, parse.GetValue(fingerprint), parse.GetValue(stationCert), parse.GetValue(reason)!, ct));
        return command;
    }

    /// <summary>
    /// revoke-station: with the daemon running, through its control socket (in force at once, journaled at once);
    /// otherwise written to DataDirectory/revoked-stations and journaled when the daemon next starts.
    /// Exit codes: 0 revoked (or already revoked), 1 failed, 2 bad arguments.
    /// </summary>
    /// <param name="configPath">The FactoryCa config.</param>
    /// <param name="fingerprint">Hex SHA-256 of the station certificate DER, or null when <paramref name="certPath"/> is given.</param>
    /// <param name="certPath">PEM or DER station certificate, or null.</param>
    /// <param name="reason">Why (1-200 printable ASCII characters).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public static async Task<int> RunAsync(string configPath, string? fingerprint, string? certPath, string reason, CancellationToken cancellationToken)
    {
        if ((fingerprint is null) == (certPath is null))
        {
            Console.Error.WriteLine("give exactly one of --fingerprint <sha256 hex> or --cert <station certificate file>");
            return 2;
        }

        string fp;
        try
        {
            if (certPath is not null)
            {
                using var cert = X509CertificateLoader.LoadCertificateFromFile(certPath);
                fp = Convert.ToHexStringLower(SHA256.HashData(cert.RawData));
            }
            else
            {
                fp = RevokedStationStore.NormalizeFingerprint(fingerprint!);
            }
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"revoke-station: {StationRevocation.FirstLine(ex.Message)}");
            return 2;
        }

        string data = FactoryCli.DataDirectoryOf(configPath);
        using (var client = ControlEndpoints.CreateClient(data))
        {
            try
            {
                var uri = new Uri($"control/revoke-station?fingerprint={fp}&reason={Uri.EscapeDataString(reason)}", UriKind.Relative);
                using var response = await client.PostAsync(uri, null, cancellationToken).ConfigureAwait(false);
                string body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    Console.WriteLine(body);
                    return 0;
                }

                Console.Error.Write(body);
                return response.StatusCode == System.Net.HttpStatusCode.BadRequest ? 2 : 1;
            }
            catch (HttpRequestException)
            {
                // Daemon not running: write the file; the daemon journals it when it starts.
            }
        }

        try
        {
            var (entry, added) = new RevokedStationStore(data, TimeProvider.System).Revoke(fp, reason);
            Console.WriteLine($"station certificate sha256={entry.Sha256} {(added ? "revoked" : "was already revoked")} in {Path.Combine(data, RevokedStationStore.FileName)}; the daemon is not running: it refuses the certificate and journals the change when it starts");
            return 0;
        }
        catch (ArgumentException ex)
        {
            Console.Error.WriteLine($"revoke-station: {StationRevocation.FirstLine(ex.Message)}");
            return 2;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            Console.Error.WriteLine($"revoke-station: cannot write the revocation file: {ex.Message}");
            return 1;
        }
    }
}
