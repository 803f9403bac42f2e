using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using OfflinePki.Asn1;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Keys;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Journal;

/// <summary>Keys, certificates and hand-built journals for the journal tests (real dev PKI from ops/dev-pki.sh).</summary>
internal static class JournalTestData
{
    private static readonly Lazy<Material> Shared = new(() => new Material(TestPki.Default));

    public static Material M => Shared.Value;

    public sealed class Material
    {
        private readonly ECDsa _deviceKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        private int _serial;

        public Material(TestPki pki)
        {
            Pki = pki;
            Root = pki.Root;
            RootWithKey = pki.CertWithKey("root-ca");
            IssuingCa = pki.IssuingCa;
            SignerCert = pki.Cert("journal-signer-" + pki.FactoryId);
            SignerKey = SoftwareKeyLoader.Load(pki.PathOf("journal-signer-" + pki.FactoryId + ".key"));
        }

        public TestPki Pki { get; }
        public X509Certificate2 Root { get; }
        public X509Certificate2 RootWithKey { get; }
        public X509Certificate2 IssuingCa { get; }
        public X509Certificate2 SignerCert { get; }
        public AsymmetricSigningKey SignerKey { get; }
        public string FactoryId => Pki.FactoryId;

        /// <summary>A device certificate signed by <paramref name="ca"/> (default: the factory issuing CA).</summary>
        public byte[] DeviceCertificate(string deviceId, X509Certificate2? ca = null)
        {
            ca ??= IssuingCa;
            var req = new CertificateRequest("CN=" + deviceId + ", O=OfflinePki dev", _deviceKey, HashAlgorithmName.SHA256);
            int n = Interlocked.Increment(ref _serial);
            var raw = new byte[4];
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(raw, 0x1000_0000 + n);
            var serial = SerialNumber.Normalize(raw);
            var now = DateTimeOffset.UtcNow;
            using var cert = req.Create(ca, NotBefore(ca), now.AddDays(30), serial);
            return cert.RawData;
        }

        private static DateTimeOffset NotBefore(X509Certificate2 issuer)
        {
            var a = DateTimeOffset.UtcNow.AddMinutes(-5);
            var b = new DateTimeOffset(issuer.NotBefore.ToUniversalTime(), TimeSpan.Zero);
            return a > b ? a : b;
        }

        /// <summary>A self-signed CA with the same subject as the issuing CA but another key.</summary>
        public X509Certificate2 ImpostorCa(bool sameName = true)
        {
            var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var name = sameName ? IssuingCa.SubjectName : new X500DistinguishedName("CN=Impostor CA");
            var req = new CertificateRequest(name, key, HashAlgorithmName.SHA256);
            req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
            var now = DateTimeOffset.UtcNow;
            return req.CreateSelfSigned(now.AddDays(-1), now.AddDays(60));
        }

        /// <summary>A leaf signed by the root key, with or without the journal-signer EKU, and its key.</summary>
        public (X509Certificate2 Cert, AsymmetricSigningKey Key) RootSignedLeaf(bool withJournalEku, X509Certificate2? issuer = null)
        {
            var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var req = new CertificateRequest("CN=Rogue Signer", ec, HashAlgorithmName.SHA384);
            req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
            req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
            var eku = new OidCollection { new Oid(withJournalEku ? Oids.JournalSignerEku : Oids.ClientAuthEku) };
            req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(eku, true));
            var now = DateTimeOffset.UtcNow;
            issuer ??= RootWithKey;
            X509Certificate2 cert = issuer.HasPrivateKey
                ? req.Create(issuer, NotBefore(issuer), now.AddDays(60), [0x42, 0x01])
                : req.CreateSelfSigned(now.AddDays(-1), now.AddDays(60));
            return (cert, new AsymmetricSigningKey(ec));
        }
    }

    /// <summary>Builds a journal entry by entry, the way the writer does, so tests can tamper with it.</summary>
    public sealed class Builder
    {
        private readonly byte[] _signerSha256;

        public Builder(Material? m = null, byte[]? signerCertificate = null, IEnumerable<byte[]>? caChain = null, string? factoryId = null)
        {
            M = m ?? JournalTestData.M;
            JournalId = RandomNumberGenerator.GetBytes(16);
            SignerCertificate = signerCertificate ?? M.SignerCert.RawData;
            _signerSha256 = SHA256.HashData(SignerCertificate);
            Time = JournalCodec.ToUnixMicros(DateTimeOffset.UtcNow);
            var g = new Genesis
            {
                FactoryId = factoryId ?? M.FactoryId,
                JournalId = ByteString.CopyFrom(JournalId),
                JournalSignerCertificate = ByteString.CopyFrom(SignerCertificate),
                PolicySha256 = ByteString.CopyFrom(new byte[32]),
            };
            foreach (var der in caChain ?? [M.IssuingCa.RawData])
            {
                g.IssuingCaChain.Add(ByteString.CopyFrom(der));
            }

            Add(EntryType.Genesis, g);
        }

        public Material M { get; }
        public byte[] JournalId { get; }
        public byte[] SignerCertificate { get; }
        public long Time { get; set; }
        public List<JournalEntry> Entries { get; } = [];
        public JournalHead Head => Entries.Count == 0 ? JournalHead.Empty : JournalCodec.HeadOf(Entries[^1]);

        public JournalEntry Add(EntryType type, IMessage payload)
        {
            var e = JournalCodec.CreateNext(Head, Time++, type, payload);
            Entries.Add(e);
            return e;
        }

        public JournalEntry AddCertificate(string deviceId, X509Certificate2? ca = null) => Add(EntryType.CertificateIssued, new CertificateIssued
        {
            Certificate = ByteString.CopyFrom(M.DeviceCertificate(deviceId, ca)),
            DeviceId = deviceId,
            StationId = "station-01",
            Profile = "idevid",
            CsrSha256 = ByteString.CopyFrom(new byte[32]),
        });

        public JournalEntry AddBatchEvent(string detail = "") => Add(EntryType.BatchEvent, new BatchEvent { BatchId = "B1", Event = "opened", Detail = detail });

        public Checkpoint MakeCheckpoint(ISigningKey? key = null, byte[]? signerSha256 = null, byte[]? journalId = null)
        {
            var head = Head;
            long t = Time;
            var jid = journalId ?? JournalId;
            var sig = (key ?? M.SignerKey).Sign(JournalCodec.CheckpointSigningBytes(jid, head.Seq, head.Hash, t));
            return new Checkpoint
            {
                JournalId = ByteString.CopyFrom(jid),
                Seq = head.Seq,
                HeadHash = ByteString.CopyFrom(head.Hash),
                TimeUnixMicros = t,
                Signature = ByteString.CopyFrom(sig),
                SignerCertificateSha256 = ByteString.CopyFrom(signerSha256 ?? _signerSha256),
            };
        }

        public JournalEntry AddCheckpoint(ISigningKey? key = null, byte[]? signerSha256 = null, byte[]? journalId = null)
            => Add(EntryType.Checkpoint, MakeCheckpoint(key, signerSha256, journalId));
    }

    /// <summary>A copy of <paramref name="e"/> with its hash recomputed (what a forger would do).</summary>
    public static JournalEntry Rehash(JournalEntry e)
    {
        var c = e.Clone();
        c.Hash = ByteString.CopyFrom(JournalCodec.ComputeHash(c));
        return c;
    }

    public static ByteString Flip(ByteString b, int index)
    {
        var a = b.ToByteArray();
        a[index] ^= 0x01;
        return ByteString.CopyFrom(a);
    }
}
