using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.Data.Sqlite;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Sync;

/// <summary>Helpers shared by the air-gap, receipt and many-factory sync tests.</summary>
internal static class SyncTestBed
{
    /// <summary>EST simpleenroll of a fresh P-256 key for <paramref name="deviceId"/>; the response body is buffered.</summary>
    public static async Task<HttpResponseMessage> EnrollAsync(HttpClient station, WebApplication factory, string deviceId)
    {
        string est = factory.Urls.Single(u => u.StartsWith("https://", StringComparison.Ordinal)).TrimEnd('/') + "/.well-known/est/simpleenroll";
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest($"CN={deviceId}, SERIALNUMBER={deviceId}", key, HashAlgorithmName.SHA256).CreateSigningRequest();
        using var content = new StringContent(Convert.ToBase64String(csr));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/pkcs10");
        var response = await station.PostAsync(est, content);
        await response.Content.LoadIntoBufferAsync();
        return response;
    }

    /// <summary>SHA-256 over the registry's journals, entries and certificates, in key order (what a sync or import writes).</summary>
    public static string RegistryDigest(string registryPath)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = registryPath, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        c.Open();
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var sql in new[]
        {
            "SELECT journal_id, factory_id, issuing_ca, issuer_key_hash, signer_cert, head_seq, head_hash FROM journals ORDER BY journal_id",
            "SELECT journal_id, seq, hash, type, raw FROM entries ORDER BY journal_id, seq",
            "SELECT issuer_key_hash, serial, device_id, station_id, batch_id, not_before, not_after, journal_id, seq, der FROM certificates ORDER BY issuer_key_hash, serial",
        })
        {
            using var cmd = c.CreateCommand();
            cmd.CommandText = sql;
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                for (int i = 0; i < r.FieldCount; i++)
                {
                    var v = r.GetValue(i);
                    byte[] bytes = v is byte[] b ? b : System.Text.Encoding.UTF8.GetBytes(Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture) ?? "");
                    sha.AppendData(BitConverter.GetBytes(bytes.Length));
                    sha.AppendData(bytes);
                }
            }
        }

        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}
