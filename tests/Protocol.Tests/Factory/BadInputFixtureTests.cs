using System.Text.RegularExpressions;
using NUnit.Framework;
using OfflinePki.Enrollment;
using OfflinePki.Factory;

namespace OfflinePki.Tests.Factory;

/// <summary>Every file in testdata/factory/csr is refused with the error listed in expected.tsv.</summary>
public class BadInputFixtureTests
{
    internal static string Dir => Path.Combine(AppContext.BaseDirectory, "testdata", "factory", "csr");

    public static IEnumerable<TestCaseData> Cases() =>
        File.ReadAllLines(Path.Combine(Dir, "expected.tsv"))
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split('\t'))
            .Select(p => new TestCaseData(p[0], Enum.Parse<EnrollmentError>(p[1]), p[2]).SetName("BadCsr_" + p[0]));

    [TestCaseSource(nameof(Cases))]
    public void Intake_refuses(string file, EnrollmentError code, string message)
    {
        var intake = new CsrIntake(new Regex("^[A-Za-z0-9-]{4,64}$", RegexOptions.None, TimeSpan.FromMilliseconds(100)));
        var body = File.ReadAllBytes(Path.Combine(Dir, file));
        var ex = Assert.Throws<EnrollmentRejectedException>(() => intake.Validate(CsrIntake.DecodeBody(body)))!;
        Assert.That(ex.Code, Is.EqualTo(code), ex.Message);
        Assert.That(ex.Message, Does.Contain(message));
    }
}
