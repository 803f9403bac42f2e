using System.Text.Json.Nodes;
using OfflinePki.Tests.Factory;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Orders;

/// <summary>Order JSON and OEM-signed order files, made with ops/sign-order.sh (openssl cms) as the OEM would.</summary>
internal static class OrderFiles
{
    /// <summary>A valid order JSON object (valid 2026-01-01..2030-01-01, devices ORD-00001..ORD-00999, profile idevid).</summary>
    public static JsonObject Json(string orderId, long quantity = 10, string? factoryId = null) => new()
    {
        ["orderId"] = orderId,
        ["sku"] = "GW-100",
        ["profile"] = "idevid",
        ["quantity"] = quantity,
        ["deviceIds"] = new JsonObject { ["from"] = "ORD-00001", ["to"] = "ORD-00999" },
        ["notBefore"] = "2026-01-01T00:00:00Z",
        ["notAfter"] = "2030-01-01T00:00:00Z",
        ["factoryId"] = factoryId,
        ["reworkWindowHours"] = 72,
    };

    /// <summary>Signs raw JSON text with <paramref name="signer"/> (a PKI file stem, e.g. "order-signer") through ops/sign-order.sh.</summary>
    public static byte[] SignText(TestPki pki, string jsonText, string signer = "order-signer")
    {
        string json = Peers.NewPath(".json"), output = Peers.NewPath(".p7");
        File.WriteAllText(json, jsonText);
        Tool.Run("bash", [Path.Combine(TestPki.RepoRoot, "ops", "sign-order.sh"), json, output, "--signer", pki.PathOf(signer)]).EnsureSuccess("ops/sign-order.sh");
        return File.ReadAllBytes(output);
    }

    /// <summary>Signs an order object (null members are dropped).</summary>
    public static byte[] Sign(TestPki pki, JsonObject order, string signer = "order-signer")
    {
        foreach (var k in order.Where(kv => kv.Value is null).Select(kv => kv.Key).ToList())
        {
            order.Remove(k);
        }

        return SignText(pki, order.ToJsonString(), signer);
    }

    /// <summary>Signs with a key/certificate pair given by paths, without the script's checks.</summary>
    public static byte[] SignWith(string json, string crt, string key, bool detached = false)
    {
        string input = Peers.NewPath(".json"), output = Peers.NewPath(".p7");
        File.WriteAllText(input, json);
        var args = new List<string> { "cms", "-sign", "-binary", "-outform", "DER", "-md", "sha256", "-in", input, "-signer", crt, "-inkey", key, "-out", output };
        if (!detached)
        {
            args.Insert(2, "-nodetach");
        }

        Tool.OpenSsl([.. args]).EnsureSuccess("openssl cms -sign");
        return File.ReadAllBytes(output);
    }
}
