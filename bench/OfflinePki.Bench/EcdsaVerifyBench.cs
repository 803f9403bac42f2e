using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using OfflinePki.Enrollment;
using OfflinePki.Keys;

namespace OfflinePki.Bench;

/// <summary>
/// <c>ecdsa-verify [--iterations N]</c> (issue 16 finding 4): µs per ECDSA verify on one thread, P-256 and P-384, for
/// the fixed-key table verifier against the runtime's ECDsa.VerifyData on the same key, and for the CSR path's point
/// verifier (EcdsaPointVerifier, key given as a point per call) against importing the key and verifying with the
/// runtime. The peers run in the same process, interleaved per curve.
/// </summary>
public static class EcdsaVerifyBench
{
    /// <summary>Runs the measurement and prints one line per curve and path.</summary>
    /// <param name="args">Options after the verb.</param>
    /// <returns>0.</returns>
    public static Task<int> RunAsync(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        int iterations = args.Length >= 2 && args[0] == "--iterations" ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5000;
        foreach (var (name, curve, hash, size) in new[] { ("P-256", ECCurve.NamedCurves.nistP256, HashAlgorithmName.SHA256, 32), ("P-384", ECCurve.NamedCurves.nistP384, HashAlgorithmName.SHA384, 48) })
        {
            using var key = ECDsa.Create(curve);
            byte[] data = new byte[200];
            RandomNumberGenerator.Fill(data);
            byte[] sig = key.SignData(data, hash, DSASignatureFormat.Rfc3279DerSequence);
            var p = key.ExportParameters(false);
            byte[] point = [0x04, .. p.Q.X!, .. p.Q.Y!];
            using var table = FixedKeyEcdsaVerifier.TryCreate(key);
            double runtime = Measure(iterations, () => key.VerifyData(data, sig, hash, DSASignatureFormat.Rfc3279DerSequence));
            double fixedKey = table is null ? double.NaN : Measure(iterations, () => table.Verify(data, hash, sig));
            double pointPath = Measure(iterations, () => EcdsaPointVerifier.TryVerify(size, point, data, hash, sig) == true);
            double importPath = Measure(iterations, () =>
            {
                using var k = ECDsa.Create(new ECParameters { Curve = curve, Q = p.Q });
                return k.VerifyData(data, sig, hash, DSASignatureFormat.Rfc3279DerSequence);
            });
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name}: fixed key: table {fixedKey:F1} µs, runtime {runtime:F1} µs ({runtime / fixedKey:F2}x); per-call key (CSR): point verifier {pointPath:F1} µs, runtime import+verify {importPath:F1} µs ({importPath / pointPath:F2}x)"));
        }

        return Task.FromResult(0);
    }

    private static double Measure(int iterations, Func<bool> verify)
    {
        for (int i = 0; i < Math.Min(200, iterations); i++)
        {
            if (!verify())
            {
                throw new InvalidOperationException("a valid signature did not verify");
            }
        }

        var watch = Stopwatch.StartNew();
        for (int i = 0; i < iterations; i++)
        {
            verify();
        }

        return watch.Elapsed.TotalMicroseconds / iterations;
    }
}
