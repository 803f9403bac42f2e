using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using OfflinePki.Orders;
using OfflinePki.Tests.Factory;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Orders;

/// <summary>
/// The order file format: signed by openssl cms (ops/sign-order.sh) as the OEM does, verified by
/// <see cref="ProductionOrderVerifier"/>; every bad file is refused with a message naming what is wrong.
/// </summary>
public class ProductionOrderTests
{
    private static TestPki Pki => TestPki.Default;
    // An hour from now: after the test PKI (and its order signer) was made, within the orders' 2026-2030 windows.
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds());

    private static ProductionOrderVerifier Verifier(string? factory = "F1", DateTimeOffset? at = null) =>
        new(Pki.Root, factory, new FakeTimeProvider(at ?? Now));

    [Test]
    public void An_order_signed_with_openssl_cms_verifies_and_every_field_is_read()
    {
        var signed = OrderFiles.Sign(Pki, OrderFiles.Json("PO-1", 5000, "F1"));
        var order = Verifier().Verify(signed);
        Assert.That(order.OrderId, Is.EqualTo("PO-1"));
        Assert.That(order.Sku, Is.EqualTo("GW-100"));
        Assert.That(order.Profile, Is.EqualTo("idevid"));
        Assert.That(order.Quantity, Is.EqualTo(5000));
        Assert.That(order.FactoryId, Is.EqualTo("F1"));
        Assert.That(order.ReworkWindow, Is.EqualTo(TimeSpan.FromHours(72)));
        Assert.That(order.NotBefore, Is.EqualTo(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero)));
        Assert.That(order.NotAfter, Is.EqualTo(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero)));
        Assert.That(order.SignedBytes, Is.EqualTo(signed));
        Assert.That(order.Sha256, Is.EqualTo(System.Security.Cryptography.SHA256.HashData(signed)));
        Assert.That(order.DeviceIds.Contains("ORD-00001") && order.DeviceIds.Contains("ORD-00999") && order.DeviceIds.Contains("ORD-00500"), Is.True);
        Assert.That(order.DeviceIds.Contains("ORD-01000") || order.DeviceIds.Contains("ORD-0001") || order.DeviceIds.Contains("ORD-00000"), Is.False);

        // The same file verifies with openssl, the OEM's own tool, against the root.
        string file = Peers.NewPath(".p7");
        File.WriteAllBytes(file, signed);
        var v = Tool.OpenSsl("cms", "-verify", "-inform", "DER", "-in", file, "-CAfile", Pki.PathOf("root-ca.crt"), "-purpose", "any");
        Assert.That(v.StdErr, Does.Contain("Verification successful"));
    }

    [Test]
    public void Pattern_rules_match_the_whole_device_ID()
    {
        var json = OrderFiles.Json("PO-PAT");
        json["deviceIds"] = new JsonObject { ["pattern"] = "GW[0-9]{4}" };
        var order = Verifier().Verify(OrderFiles.Sign(Pki, json));
        Assert.That(order.DeviceIds.Contains("GW1234"), Is.True);
        Assert.That(order.DeviceIds.Contains("GW12345"), Is.False, "the pattern is anchored at both ends");
        Assert.That(order.DeviceIds.Contains("XGW1234"), Is.False);
    }

    [Test]
    public void A_tampered_order_fails_the_signature_check()
    {
        var signed = OrderFiles.Sign(Pki, OrderFiles.Json("PO-TAMPER", 10));
        // Same length, so the DER stays well formed: only the signature (messageDigest) can catch it.
        var text = Encoding.Latin1.GetString(signed).Replace("\"quantity\":10", "\"quantity\":90", StringComparison.Ordinal);
        var tampered = Encoding.Latin1.GetBytes(text);
        Assert.That(tampered, Is.Not.EqualTo(signed));
        var ex = Assert.Throws<OrderRejectedException>(() => Verifier().Verify(tampered))!;
        Assert.That(ex.Fault, Is.EqualTo(OrderFault.BadSignature), ex.Message);
        Assert.That(ex.Message, Does.Contain("does not verify"));
    }

    [Test]
    public void A_signer_without_the_order_signing_EKU_is_refused()
    {
        // The journal signer chains to the same root but carries another EKU.
        var signed = OrderFiles.Sign(Pki, OrderFiles.Json("PO-EKU"), signer: "journal-signer-F1");
        var ex = Assert.Throws<OrderRejectedException>(() => Verifier().Verify(signed))!;
        Assert.That(ex.Fault, Is.EqualTo(OrderFault.WrongEku));
        Assert.That(ex.Message, Does.Contain(OfflinePki.Asn1.Oids.OrderSignerEku));
    }

    [Test]
    public void A_signer_from_another_root_is_refused()
    {
        var (caCrt, caKey) = Peers.RogueCa();
        string crt = Peers.NewPath(".crt"), key = Peers.NewPath(".key"), csr = Peers.NewPath(".csr"), ext = Peers.NewPath(".cnf");
        File.WriteAllText(ext, "basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical," + OfflinePki.Asn1.Oids.OrderSignerEku + "\n");
        Tool.OpenSsl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=Rogue Order Signer", "-keyout", key, "-out", csr).EnsureSuccess("csr");
        Tool.OpenSsl("x509", "-req", "-in", csr, "-CA", caCrt, "-CAkey", caKey, "-set_serial", "7", "-days", "30", "-extfile", ext, "-out", crt).EnsureSuccess("x509");
        var signed = OrderFiles.SignWith(OrderFiles.Json("PO-ROGUE").ToJsonString(), crt, key);
        var ex = Assert.Throws<OrderRejectedException>(() => Verifier(at: DateTimeOffset.UtcNow).Verify(signed))!;
        Assert.That(ex.Fault, Is.EqualTo(OrderFault.UntrustedSigner), ex.Message);
        Assert.That(ex.Message, Does.Contain("does not chain to the OEM root"));
    }

    [Test]
    public void An_expired_signer_or_an_ended_order_is_refused()
    {
        var signed = OrderFiles.Sign(Pki, OrderFiles.Json("PO-TIME"));
        var late = Assert.Throws<OrderRejectedException>(() => Verifier(at: DateTimeOffset.UtcNow.AddYears(20)).Verify(signed))!;
        Assert.That(late.Fault, Is.EqualTo(OrderFault.SignerNotValidNow), late.Message);

        var json = OrderFiles.Json("PO-ENDED");
        json["notBefore"] = "2025-01-01T00:00:00Z";
        json["notAfter"] = "2025-06-01T00:00:00Z";
        var ended = Assert.Throws<OrderRejectedException>(() => Verifier().Verify(OrderFiles.Sign(Pki, json)))!;
        Assert.That(ended.Fault, Is.EqualTo(OrderFault.Expired));
        Assert.That(ended.Message, Does.Contain("PO-ENDED ended at 2025-06-01"));
    }

    [Test]
    public void An_order_for_another_factory_is_refused_by_the_factory_and_accepted_by_the_mirror()
    {
        var signed = OrderFiles.Sign(Pki, OrderFiles.Json("PO-F2", factoryId: "F2"));
        var ex = Assert.Throws<OrderRejectedException>(() => Verifier("F1").Verify(signed))!;
        Assert.That(ex.Fault, Is.EqualTo(OrderFault.WrongFactory));
        Assert.That(ex.Message, Does.Contain("for factory F2, this is factory F1"));
        Assert.That(Verifier(null).Verify(signed).FactoryId, Is.EqualTo("F2"));
    }

    [Test]
    public void Files_that_are_not_embedded_CMS_SignedData_are_malformed()
    {
        var notCms = Assert.Throws<OrderRejectedException>(() => Verifier().Verify(Encoding.UTF8.GetBytes(OrderFiles.Json("PO-X").ToJsonString())))!;
        Assert.That(notCms.Fault, Is.EqualTo(OrderFault.Malformed));
        Assert.That(notCms.Message, Does.Contain("not a DER CMS SignedData"));

        var detached = OrderFiles.SignWith(OrderFiles.Json("PO-DET").ToJsonString(), Pki.PathOf("order-signer.crt"), Pki.PathOf("order-signer.key"), detached: true);
        var d = Assert.Throws<OrderRejectedException>(() => Verifier().Verify(detached))!;
        Assert.That(d.Fault, Is.EqualTo(OrderFault.Malformed));
        Assert.That(d.Message, Does.Contain("no embedded content"));

        var empty = Assert.Throws<OrderRejectedException>(() => Verifier().Verify([]))!;
        Assert.That(empty.Fault, Is.EqualTo(OrderFault.Malformed));
    }

    private static IEnumerable<TestCaseData> SchemaCases()
    {
        static TestCaseData Case(string name, Action<JsonObject> edit, string message) => new TestCaseData(edit, message).SetName("Schema_" + name);
        yield return Case("missing_orderId", j => j.Remove("orderId"), "field 'orderId': required");
        yield return Case("bad_orderId", j => j["orderId"] = "PO 1/2", "field 'orderId'");
        yield return Case("missing_sku", j => j.Remove("sku"), "field 'sku': required");
        yield return Case("sku_not_string", j => j["sku"] = 7, "field 'sku': must be a non-empty string");
        yield return Case("missing_profile", j => j.Remove("profile"), "field 'profile': required");
        yield return Case("missing_quantity", j => j.Remove("quantity"), "field 'quantity': required");
        yield return Case("zero_quantity", j => j["quantity"] = 0, "field 'quantity': must be an integer");
        yield return Case("fractional_quantity", j => j["quantity"] = 2.5, "field 'quantity'");
        yield return Case("string_quantity", j => j["quantity"] = "10", "field 'quantity'");
        yield return Case("missing_deviceIds", j => j.Remove("deviceIds"), "field 'deviceIds': required");
        yield return Case("range_lengths_differ", j => j["deviceIds"] = new JsonObject { ["from"] = "A001", ["to"] = "A0010" }, "field 'deviceIds.to'");
        yield return Case("range_reversed", j => j["deviceIds"] = new JsonObject { ["from"] = "A009", ["to"] = "A001" }, "sorts before 'from'");
        yield return Case("range_half", j => j["deviceIds"] = new JsonObject { ["from"] = "A001" }, "needs both 'from' and 'to'");
        yield return Case("pattern_and_range", j => j["deviceIds"] = new JsonObject { ["pattern"] = "A.*", ["from"] = "A1", ["to"] = "A2" }, "not both");
        yield return Case("bad_regex", j => j["deviceIds"] = new JsonObject { ["pattern"] = "([" }, "field 'deviceIds.pattern'");
        yield return Case("missing_notBefore", j => j.Remove("notBefore"), "field 'notBefore': required");
        yield return Case("local_time", j => j["notBefore"] = "2026-01-01T00:00:00+02:00", "field 'notBefore'");
        yield return Case("date_only", j => j["notAfter"] = "2030-01-01", "field 'notAfter'");
        yield return Case("window_reversed", j => j["notAfter"] = "2025-01-01T00:00:00Z", "field 'notAfter'");
        yield return Case("factoryId_number", j => j["factoryId"] = 1, "field 'factoryId'");
        yield return Case("rework_negative", j => j["reworkWindowHours"] = -1, "field 'reworkWindowHours'");
        yield return Case("unknown_field", j => j["price"] = 3, "field 'price': unknown");
    }

    [TestCaseSource(nameof(SchemaCases))]
    public void Every_schema_violation_names_its_field(Action<JsonObject> edit, string message)
    {
        var json = OrderFiles.Json("PO-SCHEMA");
        edit(json);
        var ex = Assert.Throws<OrderRejectedException>(() => Verifier().Verify(OrderFiles.Sign(Pki, json)))!;
        Assert.That(ex.Fault, Is.EqualTo(OrderFault.Schema), ex.Message);
        Assert.That(ex.Message, Does.Contain(message));
    }

    [Test]
    public void Content_that_is_not_a_JSON_object_is_a_schema_error()
    {
        foreach (var text in new[] { "[1,2]", "{\"orderId\": \"PO-1\",}", "not json", "{\"orderId\":\"A\",\"orderId\":\"B\"}" })
        {
            var ex = Assert.Throws<OrderRejectedException>(() => Verifier().Verify(OrderFiles.SignWith(text, Pki.PathOf("order-signer.crt"), Pki.PathOf("order-signer.key"))))!;
            Assert.That(ex.Fault, Is.EqualTo(OrderFault.Schema), text + ": " + ex.Message);
        }
    }
}
