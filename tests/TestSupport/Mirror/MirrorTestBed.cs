using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using OfflinePki.Asn1;
using OfflinePki.Registry;
using OfflinePki.Tests.Support;
using OfflinePki.Revocation;

namespace OfflinePki.Tests.Mirror;

/// <summary>
/// A mirror test bed over <see cref="TestPki.Default"/>: a private config file (own data directory) next to the
/// PKI, a registry, and device certificates signed by the real issuing CA key, recorded through IJournalSink the
/// way sync would.
/// </summary>
internal sealed class MirrorTestBed : IDisposable
{
    private ulong _seq;

    public MirrorTestBed()
    {
        Pki = TestPki.Default;
        var id = Guid.NewGuid().ToString("N")[..10];
        DataDirectory = Pki.PathOf("data-" + id);
        ConfigPath = Pki.PathOf($"mirrorca-{id}.json");
        File.WriteAllText(ConfigPath, File.ReadAllText(Pki.PathOf("mirrorca.json")).Replace("data/mirror", "data-" + id, StringComparison.Ordinal));
        IssuingCa = Pki.IssuingCa;
        JournalId = RandomNumberGenerator.GetBytes(16);
        Registry = new MirrorRegistry(Path.Combine(DataDirectory, "registry.sqlite"), TimeProvider.System);
        using var tx = Registry.BeginApply();
        tx.SetJournal(new JournalState(JournalId, Pki.FactoryId, IssuingCa.RawData, Pki.Cert("journal-signer-" + Pki.FactoryId).RawData, 0, new byte[32]));
        tx.Commit();
    }

    public TestPki Pki { get; }

    public string DataDirectory { get; }

    public string ConfigPath { get; }

    public X509Certificate2 IssuingCa { get; }

    public byte[] JournalId { get; }

    public MirrorRegistry Registry { get; }

    public byte[] IssuerKeyHash => IssuerHashes.KeyHash(IssuingCa);

    /// <summary>Makes a device certificate signed by the issuing CA; records it in the registry unless <paramref name="record"/> is false.</summary>
    public Device Issue(bool record = true, string? ocspUrl = null, string station = "station-01", string batch = "batch-1", DateTimeOffset? notBefore = null,
        Func<byte[], string>? cdpUrl = null)
    {
        var serial = new RandomSerialNumberSource().Next();
        var deviceId = "DEV-" + Convert.ToHexString(serial.AsSpan(0, 4));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var subject = new X500DistinguishedNameBuilder();
        subject.AddOrganizationName("OfflinePki test");
        subject.AddCommonName(deviceId);
        subject.Add(Oids.SerialNumberAttribute, deviceId, System.Formats.Asn1.UniversalTagNumber.PrintableString);
        var req = new CertificateRequest(subject.Build(), key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(IssuingCa, true, false));
        if (cdpUrl is not null)
        {
            req.CertificateExtensions.Add(CertificateRevocationListBuilder.BuildCrlDistributionPointExtension([cdpUrl(SerialNumber.Normalize(serial))]));
        }

        if (ocspUrl is not null)
        {
            req.CertificateExtensions.Add(new X509AuthorityInformationAccessExtension([ocspUrl], null));
        }

        var issuedAt = notBefore ?? DateTimeOffset.UtcNow.AddMinutes(-5);
        var notAfter = issuedAt.AddYears(5);
        using var caKey = IssuingCa.GetECDsaPrivateKey()!;
        using var cert = req.Create(IssuingCa.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), issuedAt, notAfter, serial);
        var der = cert.RawData;
        if (record)
        {
            _seq++;
            var hash = SHA256.HashData(der);
            using var tx = Registry.BeginApply();
            tx.AddEntry(JournalId, _seq, hash, 2, der);
            tx.AddCertificate(new IssuedCertificateRecord(serial, IssuerKeyHash, der, deviceId, station, batch, issuedAt, notAfter, JournalId, _seq));
            tx.SetJournal(new JournalState(JournalId, Pki.FactoryId, IssuingCa.RawData, Pki.Cert("journal-signer-" + Pki.FactoryId).RawData, _seq, hash));
            tx.Commit();
        }

        var pem = Path.Combine(DataDirectory, deviceId + ".pem");
        File.WriteAllText(pem, PemEncoding.WriteString("CERTIFICATE", der));
        return new Device(serial, deviceId, der, pem);
    }

    public void Dispose()
    {
        Registry.Dispose();
        IssuingCa.Dispose();
    }

    internal sealed record Device(byte[] Serial, string DeviceId, byte[] Der, string PemPath)
    {
        public string SerialHex => SerialNumber.ToHex(Serial);
    }
}
