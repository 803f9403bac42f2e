using FsCheck;
using FsCheck.Fluent;
using NUnit.Framework;
using OfflinePki.Enrollment;
using OfflinePki.Policy;
using OfflinePki.Tests.Support;
using OfflinePki.Factory;

namespace OfflinePki.Tests.Factory.Device;

/// <summary>
/// Check digits: known-good vectors (computed with python-stdnum 1.18, stdnum.iso7064.mod_37_36 and stdnum.luhn, and the
/// ISO/IEC 7064 worked example A12425GABC1234002 → M), an independent Python implementation over random payloads, and
/// FsCheck properties that every single-character substitution is caught.
/// </summary>
public class DeviceIdFormatTests
{
    [TestCase("A12425GABC1234002", 'M')]
    [TestCase("DEV0001", 'D')]
    [TestCase("GW2026X00042", 'W')]
    [TestCase("0", '2')]
    [TestCase("Z", '4')]
    [TestCase("ABCDEF", 'C')]
    public void Mod37_36_known_vectors(string payload, char check)
    {
        Assert.That(DeviceIdFormat.Mod37_36CheckCharacter(payload), Is.EqualTo(check));
        Assert.That(DeviceIdFormat.IsValidMod37_36(payload + check), Is.True);
        Assert.That(DeviceIdFormat.Append(DeviceIdCheckDigit.Iso7064Mod37_36, payload), Is.EqualTo(payload + check));
    }

    [TestCase("7992739871", '3')]
    [TestCase("12345", '5')]
    [TestCase("0", '0')]
    [TestCase("35600000000000000", '6')]
    public void Luhn_known_vectors(string payload, char check)
    {
        Assert.That(DeviceIdFormat.LuhnCheckDigit(payload), Is.EqualTo(check));
        Assert.That(DeviceIdFormat.IsValidLuhn(payload + check), Is.True);
    }

    [Test]
    public void Both_schemes_agree_with_an_independent_python_implementation_on_random_payloads()
    {
        var rng = new Random(7064);
        var alnum = Enumerable.Range(0, 200).Select(_ => new string(Enumerable.Range(0, rng.Next(1, 24)).Select(_ => DeviceIdFormat.Alphabet36[rng.Next(36)]).ToArray())).ToList();
        var digits = Enumerable.Range(0, 200).Select(_ => new string(Enumerable.Range(0, rng.Next(1, 24)).Select(_ => (char)('0' + rng.Next(10))).ToArray())).ToList();
        // Written from the standards' text, not from the C#: MOD 37,36 as the hybrid recurrence; Luhn as "sum the digits of 2x".
        const string Py = """
            import sys
            A = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
            def mod3736(s):
                p = 36
                for ch in s:
                    p = (p + A.index(ch)) % 36 or 36
                    p = (2 * p) % 37
                return A[(37 - p) % 36]
            def luhn(s):
                total = 0
                for i, ch in enumerate(reversed(s)):
                    d = int(ch) * (2 if i % 2 == 0 else 1)
                    total += sum(int(x) for x in str(d))
                return str((10 - total % 10) % 10)
            for line in sys.stdin.read().split():
                kind, payload = line.split(":")
                print(mod3736(payload) if kind == "m" else luhn(payload))
            """;
        var input = string.Join("\n", alnum.Select(a => "m:" + a).Concat(digits.Select(d => "l:" + d)));
        var r = Tool.Run("/usr/bin/python3", ["-c", Py], stdin: System.Text.Encoding.ASCII.GetBytes(input)).EnsureSuccess("python3");
        var expected = r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(expected, Has.Length.EqualTo(400));
        for (int i = 0; i < 200; i++)
        {
            Assert.That(DeviceIdFormat.Mod37_36CheckCharacter(alnum[i]).ToString(), Is.EqualTo(expected[i]), alnum[i]);
            Assert.That(DeviceIdFormat.LuhnCheckDigit(digits[i]).ToString(), Is.EqualTo(expected[200 + i]), digits[i]);
        }
    }

    [FsCheck.NUnit.Property(MaxTest = 300)]
    public Property Mod37_36_catches_every_single_character_substitution() =>
        Prop.ForAll(Arb.From(PayloadGen(DeviceIdFormat.Alphabet36)), Arb.From(Gen.Choose(0, 1000)), Arb.From(Gen.Choose(1, 35)), (payload, pos, delta) =>
        {
            var id = DeviceIdFormat.Append(DeviceIdCheckDigit.Iso7064Mod37_36, payload).ToCharArray();
            int i = pos % id.Length;
            id[i] = DeviceIdFormat.Alphabet36[(DeviceIdFormat.Alphabet36.IndexOf(id[i], StringComparison.Ordinal) + delta) % 36];
            return !DeviceIdFormat.IsValidMod37_36(id);
        });

    [FsCheck.NUnit.Property(MaxTest = 300)]
    public Property Luhn_catches_every_single_digit_substitution() =>
        Prop.ForAll(Arb.From(PayloadGen("0123456789")), Arb.From(Gen.Choose(0, 1000)), Arb.From(Gen.Choose(1, 9)), (payload, pos, delta) =>
        {
            var id = DeviceIdFormat.Append(DeviceIdCheckDigit.Luhn, payload).ToCharArray();
            int i = pos % id.Length;
            id[i] = (char)('0' + ((id[i] - '0' + delta) % 10));
            return !DeviceIdFormat.IsValidLuhn(id);
        });

    [Test]
    public void Every_substitution_of_every_position_of_one_id_is_caught_exhaustively()
    {
        var id = DeviceIdFormat.Append(DeviceIdCheckDigit.Iso7064Mod37_36, "GW2026X00042");
        for (int i = 0; i < id.Length; i++)
        {
            foreach (char c in DeviceIdFormat.Alphabet36.Where(c => c != id[i]))
            {
                var bad = id[..i] + c + id[(i + 1)..];
                Assert.That(DeviceIdFormat.TryValidate(DeviceIdCheckDigit.Iso7064Mod37_36, bad, out _), Is.False, bad);
            }
        }
    }

    [TestCase("none", DeviceIdCheckDigit.None)]
    [TestCase("", DeviceIdCheckDigit.None)]
    [TestCase("Luhn", DeviceIdCheckDigit.Luhn)]
    [TestCase("iso7064-mod37-36", DeviceIdCheckDigit.Iso7064Mod37_36)]
    public void Configuration_names_parse(string name, DeviceIdCheckDigit expected) =>
        Assert.That(DeviceIdFormat.Parse(name, "deviceIdCheckDigit"), Is.EqualTo(expected));

    [Test]
    public void An_unknown_name_is_refused_naming_the_parameter_and_the_choices()
    {
        var ex = Assert.Throws<ArgumentException>(() => DeviceIdFormat.Parse("mod11", "deviceIdCheckDigit"))!;
        Assert.That(ex.ParamName, Is.EqualTo("deviceIdCheckDigit"));
        Assert.That(ex.Message, Does.Contain("none, luhn, iso7064-mod37-36"));
    }

    [TestCase(DeviceIdCheckDigit.Iso7064Mod37_36, "DEV0001E", "the last character should be D")]
    [TestCase(DeviceIdCheckDigit.Iso7064Mod37_36, "dev0001d", "must be 2 or more of 0-9 A-Z")]
    [TestCase(DeviceIdCheckDigit.Iso7064Mod37_36, "DEV-0001", "must be 2 or more of 0-9 A-Z")]
    [TestCase(DeviceIdCheckDigit.Luhn, "79927398710", "the last digit should be 3")]
    [TestCase(DeviceIdCheckDigit.Luhn, "DEV-0001", "must be 2 or more digits")]
    public void Enrollment_validation_refuses_with_DeviceIdCheckDigit_and_says_what_to_fix(DeviceIdCheckDigit scheme, string id, string message)
    {
        var ex = Assert.Throws<EnrollmentRejectedException>(() => DeviceIdFormat.Validate(scheme, id, "idevid"))!;
        Assert.That(ex.Code, Is.EqualTo(EnrollmentError.DeviceIdCheckDigit));
        Assert.That(ex.Message, Does.Contain(message).And.Contain("FactoryCa:Profile:DeviceIdCheckDigit"));
        Assert.That(ex.Report, Is.False);
    }

    [Test]
    public void None_accepts_anything() =>
        Assert.That(DeviceIdFormat.TryValidate(DeviceIdCheckDigit.None, "anything-at-all", out _), Is.True);

    private static Gen<string> PayloadGen(string alphabet) =>
        Gen.Choose(1, 30).SelectMany(n => Gen.Elements(alphabet.ToCharArray()).ArrayOf(n)).Select(cs => new string(cs));

    internal static string Luhn(string payload) => DeviceIdFormat.Append(DeviceIdCheckDigit.Luhn, payload);

    internal static string Mod(string payload) => DeviceIdFormat.Append(DeviceIdCheckDigit.Iso7064Mod37_36, payload);
}
