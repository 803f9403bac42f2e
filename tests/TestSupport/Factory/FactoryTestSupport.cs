using System.Collections.Concurrent;
using Google.Protobuf;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Keys;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Factory;

/// <summary>A hand-written IJournalAppender: records appends; can be switched to fail.</summary>
internal sealed class FakeJournalAppender : IJournalAppender
{
    private long _seq;

    public ConcurrentQueue<(EntryType Type, IMessage Payload)> Appends { get; } = new();

    public Exception? FailWith { get; set; }

    public int Count => Appends.Count;

    public Task<JournalEntry> AppendAsync(EntryType type, IMessage payload, CancellationToken cancellationToken = default)
    {
        if (FailWith is { } ex)
        {
            throw ex;
        }

        Appends.Enqueue((type, payload));
        ulong seq = (ulong)Interlocked.Increment(ref _seq);
        return Task.FromResult(new JournalEntry { Seq = seq, Type = type, Payload = payload.ToByteString() });
    }

    public Task<JournalEntry> CheckpointAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(new JournalEntry { Seq = (ulong)Interlocked.Increment(ref _seq), Type = EntryType.Checkpoint });
}

/// <summary>Wraps a real key and counts signatures (to prove a failed lint never reaches the signer).</summary>
internal sealed class CountingSigningKey(ISigningKey inner) : ISigningKey
{
    private int _count;

    public int Count => _count;

    public Exception? FailWith { get; set; }

    /// <summary>When set, returns the signature with one value bit flipped, as a faulty HSM might.</summary>
    public bool CorruptSignatures { get; set; }

    public string KeyId => inner.KeyId;

    public System.Security.Cryptography.X509Certificates.PublicKey PublicKey => inner.PublicKey;

    public byte[] SignatureAlgorithmIdentifier => inner.SignatureAlgorithmIdentifier;

    public byte[] Sign(ReadOnlySpan<byte> data)
    {
        Interlocked.Increment(ref _count);
        if (FailWith is { } ex)
        {
            throw ex;
        }

        byte[] signature = inner.Sign(data);
        if (CorruptSignatures)
        {
            signature[^1] ^= 0x01; // the last octet of s (ECDSA) or of the RSA signature
        }

        return signature;
    }
}

/// <summary>openssl-made CSRs and certificates in a per-run scratch directory.</summary>
internal static class Peers
{
    private static readonly Lazy<string> ScratchDir = new(() =>
    {
        var d = Path.Combine(Path.GetTempPath(), "offlinepki-tests", "factory-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(d);
        return d;
    });

    public static string Scratch => ScratchDir.Value;

    public static string NewPath(string suffix) => Path.Combine(Scratch, Guid.NewGuid().ToString("N")[..10] + suffix);

    /// <summary>openssl req -new -newkey ... -outform DER; returns the CSR DER.</summary>
    /// <param name="newKey">e.g. ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"], ["rsa:1024"], ["ed25519"].</param>
    public static byte[] Csr(string subject, params string[] newKey)
    {
        string key = NewPath(".key"), csr = NewPath(".der");
        var args = new List<string> { "req", "-new", "-newkey" };
        args.AddRange(newKey);
        args.AddRange(["-subj", subject, "-nodes", "-keyout", key, "-outform", "DER", "-out", csr]);
        Tool.Run("openssl", args).EnsureSuccess("openssl req");
        return File.ReadAllBytes(csr);
    }

    public static byte[] P256Csr(string deviceId) => Csr($"/serialNumber={deviceId}/CN=x", "ec", "-pkeyopt", "ec_paramgen_curve:P-256");

    /// <summary>Base64 with line breaks, as an EST client sends it.</summary>
    public static byte[] Base64Body(byte[] der) => System.Text.Encoding.ASCII.GetBytes(Convert.ToBase64String(der, Base64FormattingOptions.InsertLineBreaks));

    /// <summary>A self-signed rogue CA (NAME.crt/NAME.key in scratch).</summary>
    public static (string Crt, string Key) RogueCa()
    {
        string crt = NewPath("-rogue-ca.crt"), key = NewPath("-rogue-ca.key");
        Tool.OpenSsl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=Rogue CA",
            "-days", "30", "-keyout", key, "-out", crt, "-addext", "basicConstraints=critical,CA:true",
            "-addext", "keyUsage=critical,keyCertSign").EnsureSuccess("rogue ca");
        return (crt, key);
    }

    /// <summary>A TLS client certificate with CN=<paramref name="cn"/> and clientAuth, issued by the CA pair given.</summary>
    public static (string Crt, string Key) ClientCert(string cn, string caCrt, string caKey)
    {
        string crt = NewPath($"-{cn}.crt"), key = NewPath($"-{cn}.key"), csr = NewPath(".csr"), ext = NewPath(".cnf");
        File.WriteAllText(ext, "basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n");
        Tool.OpenSsl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", $"/CN={cn}",
            "-keyout", key, "-out", csr).EnsureSuccess("client csr");
        Tool.OpenSsl("x509", "-req", "-in", csr, "-CA", caCrt, "-CAkey", caKey, "-set_serial", "0x" + Convert.ToHexString(Guid.NewGuid().ToByteArray()),
            "-days", "30", "-sha256", "-extfile", ext, "-out", crt).EnsureSuccess("client cert");
        return (crt, key);
    }
}
