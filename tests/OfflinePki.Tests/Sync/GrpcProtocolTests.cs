using Google.Protobuf;
using NUnit.Framework;
using OfflinePki.Sync.Grpc;
using OfflinePki.Sync.V1;

namespace OfflinePki.Tests.Sync;

public class GrpcProtocolTests
{
    [TestCase("100m", 100 * TimeSpan.TicksPerMillisecond)]
    [TestCase("30S", 30 * TimeSpan.TicksPerSecond)]
    [TestCase("2M", 2 * TimeSpan.TicksPerMinute)]
    [TestCase("1H", TimeSpan.TicksPerHour)]
    [TestCase("1500u", 15_000L)]
    [TestCase("99999999n", 999_999L)]
    public void Timeout_parses_every_unit(string value, long ticks)
    {
        Assert.That(GrpcTimeout.TryParse(value, out var t), Is.True);
        Assert.That(t.Ticks, Is.EqualTo(ticks));
    }

    [TestCase("")]
    [TestCase("S")]
    [TestCase("123456789S")]
    [TestCase("10s")]
    [TestCase("-1S")]
    [TestCase("1.5S")]
    public void Timeout_rejects_malformed_values(string value) => Assert.That(GrpcTimeout.TryParse(value, out _), Is.False);

    [Test]
    public void Timeout_format_fits_8_digits_and_never_shortens()
    {
        foreach (var t in new[] { TimeSpan.FromTicks(1), TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(30), TimeSpan.FromHours(30), TimeSpan.FromDays(20000) })
        {
            var s = GrpcTimeout.Format(t);
            Assert.That(s.Length, Is.LessThanOrEqualTo(9), s);
            Assert.That(GrpcTimeout.TryParse(s, out var back), Is.True, s);
            Assert.That(back, Is.GreaterThanOrEqualTo(t), s);
        }

        Assert.That(GrpcTimeout.Format(TimeSpan.FromMilliseconds(100)), Is.EqualTo("100000u"));
        Assert.That(GrpcTimeout.Format(TimeSpan.FromSeconds(30)), Is.EqualTo("30000000u"));
    }

    [Test]
    public void Message_is_percent_encoded_per_spec()
    {
        Assert.That(GrpcMessageEncoding.Encode("seq 7: 100% über\n"), Is.EqualTo("seq 7: 100%25 %C3%BCber%0A"));
        Assert.That(GrpcMessageEncoding.Decode("seq 7: 100%25 %C3%BCber%0A"), Is.EqualTo("seq 7: 100% über\n"));
        Assert.That(GrpcMessageEncoding.Decode("bad %zz and %4"), Is.EqualTo("bad %zz and %4"));
    }

    [Test]
    public async Task Framing_round_trips_and_enforces_limits()
    {
        var msg = new GetHeadRequest { FactoryId = "F1", JournalId = ByteString.CopyFrom(new byte[16]) };
        var ms = new MemoryStream();
        await GrpcFraming.WriteMessageAsync(ms, msg, 1024, default);
        await GrpcFraming.WriteMessageAsync(ms, msg, 1024, default);
        ms.Position = 0;
        var all = new List<GetHeadRequest>();
        await foreach (var m in GrpcFraming.ReadMessagesAsync(ms, GetHeadRequest.Parser, 1024, GrpcStatusCode.InvalidArgument))
        {
            all.Add(m);
        }

        Assert.That(all, Is.EqualTo(new[] { msg, msg }));

        var big = Assert.Throws<GrpcException>(() => GrpcFraming.Encode(msg, 3))!;
        Assert.That(big.StatusCode, Is.EqualTo(GrpcStatusCode.ResourceExhausted));

        ms.Position = 0;
        var tooBig = await GrpcAssert.ThrowsAsync(async () => await GrpcFraming.ReadMessageAsync(ms, 3, default));
        Assert.That(tooBig.StatusCode, Is.EqualTo(GrpcStatusCode.ResourceExhausted));

        var compressed = new MemoryStream([1, 0, 0, 0, 1, 0]);
        var c = await GrpcAssert.ThrowsAsync(async () => await GrpcFraming.ReadMessageAsync(compressed, 1024, default));
        Assert.That(c.StatusCode, Is.EqualTo(GrpcStatusCode.Unimplemented));

        var truncated = new MemoryStream([0, 0, 0, 0, 9, 1, 2]);
        var t = await GrpcAssert.ThrowsAsync(async () => await GrpcFraming.ReadMessageAsync(truncated, 1024, default));
        Assert.That(t.StatusCode, Is.EqualTo(GrpcStatusCode.Internal));
    }
}
