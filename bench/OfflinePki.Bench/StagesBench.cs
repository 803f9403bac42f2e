using System.CommandLine;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OfflinePki.FactoryCa;
using OfflinePki.Issuance;
using OfflinePki.Journal;
using OfflinePki.Policy;
using OfflinePki.Sync;
using OfflinePki.Enrollment;

namespace OfflinePki.Bench;

/// <summary>
/// Diagnostic: the cost of each issuance stage in one thread, without HTTP (station authorization, CSR intake with
/// proof of possession, prepare + lint + sign + self-verify, one journal append with its own fsync). Use it to see
/// where an issuance benchmark's time goes.
///
///   dotnet run -c Release --project bench/OfflinePki.Bench -- stages [--count 4000] [--enrollment-only]
/// </summary>
public static class StagesBench
{
    /// <summary>The <c>stages [--count 4000] [--enrollment-only]</c> verb.</summary>
    public static Command Command()
    {
        var count = BenchCli.Int("--count", 4000, "CSRs per stage (at least the 200 journal appends it times)", min: 200);
        var enrollmentOnly = BenchCli.Flag("--enrollment-only", "Measure only the whole enrollment, not each stage");
        return BenchCli.Verb("stages", "Diagnostic: the cost of each issuance stage in one thread, without HTTP", [count, enrollmentOnly],
            p => RunAsync(p.GetValue(count), p.GetValue(enrollmentOnly)));
    }

    /// <summary>Runs the diagnostic over <paramref name="n"/> CSRs; returns 0.</summary>
    public static async Task<int> RunAsync(int n, bool onlyEnrollment)
    {
        string pki = BenchSupport.CreatePki();
        await using var app = FactoryCaApp.Build(Path.Combine(pki, "factoryca.json"),
            s => { s.AddLogging(l => l.SetMinimumLevel(LogLevel.Warning)); s.PostConfigure<SyncOptions>(o => o.Enabled = false); },
            o => o.Est.Listen = "https://127.0.0.1:0");
        var csrs = new byte[n][];
        for (int i = 0; i < n; i++) { using var k = ECDsa.Create(ECCurve.NamedCurves.nistP256); csrs[i] = new CertificateRequest($"CN=x, SERIALNUMBER=DEV-{i:D6}", k, HashAlgorithmName.SHA256).CreateSigningRequest(); }
        var station = X509Certificate2.CreateFromPemFile(Path.Combine(pki, "station-01.crt"), Path.Combine(pki, "station-01.key"));
        var auth = app.Services.GetRequiredService<IStationAuthorizer>();
        var issuer = app.Services.GetRequiredService<ICertificateIssuer>();
        var intake = new CsrIntake(new System.Text.RegularExpressions.Regex("^[A-Za-z0-9-]{4,64}$"));
        var sw = Stopwatch.StartNew();
        if (onlyEnrollment)
        {
            goto enrollment;
        }

        for (int i = 0; i < n; i++) auth.Authorize(station); Console.WriteLine($"authorize {sw.Elapsed.TotalMicroseconds / n:F0} us");
        sw.Restart(); for (int i = 0; i < n; i++) CertificateRequest.LoadSigningRequest(csrs[i], HashAlgorithmName.SHA256, CertificateRequestLoadOptions.Default); Console.WriteLine($"LoadSigningRequest(verify) {sw.Elapsed.TotalMicroseconds / n:F0} us");
        sw.Restart(); for (int i = 0; i < n; i++) CertificateRequest.LoadSigningRequest(csrs[i], HashAlgorithmName.SHA256, CertificateRequestLoadOptions.SkipSignatureValidation); Console.WriteLine($"LoadSigningRequest(skip) {sw.Elapsed.TotalMicroseconds / n:F0} us");
        var v = new ValidatedCsr[n];
        sw.Restart(); for (int i = 0; i < n; i++) v[i] = intake.Validate(csrs[i]); Console.WriteLine($"csr intake {sw.Elapsed.TotalMicroseconds / n:F0} us");
        var builder = new TbsCertificateBuilder(issuer.Profile, issuer.Authority, new OfflinePki.Asn1.RandomSerialNumberSource(), TimeProvider.System);
        var linter = CertificateLinter.ForKind(issuer.Profile.Kind);
        var prepared = new PreparedCertificate[n];
        sw.Restart(); for (int i = 0; i < n; i++) prepared[i] = builder.Prepare(new IssuanceRequest(v[i].DeviceId, v[i].SubjectPublicKeyInfo)); Console.WriteLine($"  prepare (TBSCertificate) {sw.Elapsed.TotalMicroseconds / n:F0} us");
        sw.Restart(); for (int i = 0; i < n; i++) linter.Lint(new LintContext(issuer.Authority, issuer.Profile, prepared[i])); Console.WriteLine($"  lint {sw.Elapsed.TotalMicroseconds / n:F0} us");
        sw.Restart(); for (int i = 0; i < n; i++) issuer.Authority.SigningKey.Sign(prepared[i].TbsDer); Console.WriteLine($"  sign ({issuer.Authority.SigningKey.GetType().Name}) {sw.Elapsed.TotalMicroseconds / n:F0} us");
        var issued = new IssuedCertificate[n];
        sw.Restart(); for (int i = 0; i < n; i++) issued[i] = issuer.Issue(new IssuanceRequest(v[i].DeviceId, v[i].SubjectPublicKeyInfo)); Console.WriteLine($"issue {sw.Elapsed.TotalMicroseconds / n:F0} us");
        var journal = app.Services.GetRequiredService<JournalWriter>();
        sw.Restart(); for (int i = 0; i < 200; i++) await journal.AppendAsync(OfflinePki.Journal.V1.EntryType.CertificateIssued, new OfflinePki.Journal.V1.CertificateIssued { Certificate = Google.Protobuf.ByteString.CopyFrom(issued[i].Der), DeviceId = "x" }); Console.WriteLine($"append (serial, 1 fsync each) {sw.Elapsed.TotalMicroseconds / 200:F0} us");
        sw.Restart(); for (int i = 0; i < n; i++) { CertsOnlyPkcs7.Encode([issued[i].Der]); } Console.WriteLine($"PKCS#7 certs-only encode {sw.Elapsed.TotalMicroseconds / n:F0} us");
    enrollment:
        var enrollment = app.Services.GetRequiredService<IEnrollmentService>();
        var stationId = auth.Authorize(station);
        var bodies = csrs.Select(c => System.Text.Encoding.ASCII.GetBytes(Convert.ToBase64String(c))).ToArray();
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        sw.Restart();
        int next = -1;
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < n)
            {
                await enrollment.EnrollAsync(stationId, bodies[i], null, CancellationToken.None);
            }
        })));
        Console.WriteLine($"EnrollmentService, 8 tasks, no HTTP: {n / sw.Elapsed.TotalSeconds:F0} certificates/s, {(Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMicroseconds / n:F0} us process CPU each");
        return 0;
    }
}
