using System.Formats.Asn1;
using NUnit.Framework;
using OfflinePki.Asn1;

namespace OfflinePki.Tests;

public class Asn1Tests
{
    [Test]
    public void Serial_is_positive_minimal_and_bounded()
    {
        Assert.That(SerialNumber.Normalize([0x00, 0x00, 0x01]), Is.EqualTo(new byte[] { 0x01 }));
        Assert.That(SerialNumber.Normalize([0x80]), Is.EqualTo(new byte[] { 0x00, 0x80 }));
        Assert.Throws<ArgumentException>(() => SerialNumber.Normalize([0, 0]));
        Assert.Throws<ArgumentException>(() => SerialNumber.Normalize(Enumerable.Repeat((byte)0xFF, 20).ToArray()));
    }

    [Test]
    public void Random_serials_carry_at_least_64_bits_and_never_repeat_in_a_sample()
    {
        var source = new RandomSerialNumberSource();
        var seen = new HashSet<string>();
        for (int i = 0; i < 10_000; i++)
        {
            var s = source.Next();
            Assert.That(s.Length, Is.InRange(9, SerialNumber.MaxOctets));
            Assert.That(s[0] & 0x80, Is.Zero);
            Assert.That(seen.Add(Convert.ToHexString(s)), Is.True);
        }
    }

    [TestCase(2049, UniversalTagNumber.UtcTime)]
    [TestCase(2050, UniversalTagNumber.GeneralizedTime)]
    [TestCase(9999, UniversalTagNumber.GeneralizedTime)]
    public void Time_switches_to_GeneralizedTime_in_2050(int year, UniversalTagNumber expected)
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        DerTime.WriteTime(w, new DateTimeOffset(year, 12, 31, 23, 59, 59, TimeSpan.Zero));
        var tag = new AsnReader(w.Encode(), AsnEncodingRules.DER).PeekTag();
        Assert.That(tag.TagValue, Is.EqualTo((int)expected));
    }

    [Test]
    public void No_well_defined_expiration_is_99991231235959Z()
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        DerTime.WriteTime(w, DerTime.NoWellDefinedExpiration);
        var der = w.Encode();
        Assert.That(System.Text.Encoding.ASCII.GetString(der, 2, der.Length - 2), Is.EqualTo("99991231235959Z"));
    }
}
