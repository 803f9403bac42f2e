using System.Collections.Concurrent;
using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using OfflinePki.Asn1;
using OfflinePki.Keys;

namespace OfflinePki.Issuance;

/// <summary>A signed device certificate.</summary>
/// <param name="Der">Certificate DER.</param>
/// <param name="Serial">Normalised serial content octets.</param>
/// <param name="NotBefore">notBefore.</param>
/// <param name="NotAfter">notAfter.</param>
public sealed record IssuedCertificate(byte[] Der, byte[] Serial, DateTimeOffset NotBefore, DateTimeOffset NotAfter)
{
    /// <summary>Upper-case hex serial (the log/registry form).</summary>
    public string SerialHex => SerialNumber.ToHex(Serial);

    /// <summary>Lower-case hex SHA-256 of the DER.</summary>
    public string Sha256Fingerprint => Convert.ToHexStringLower(SHA256.HashData(Der));
}

/// <summary>Issues device certificates: prepare, lint, sign, verify. Does not journal (the caller does, before returning the certificate).</summary>
public interface ICertificateIssuer
{
    /// <summary>The issuing CA.</summary>
    IssuingAuthority Authority { get; }

    /// <summary>The profile every certificate follows.</summary>
    CertificateProfile Profile { get; }

    /// <summary>Issues one certificate.</summary>
    /// <param name="request">Device serial (PrintableString) and SubjectPublicKeyInfo.</param>
    /// <returns>The signed, verified certificate.</returns>
    /// <exception cref="CertificateLintException">The prepared certificate broke a lint; nothing was signed.</exception>
    /// <exception cref="SigningKeyUnavailableException">The CA key cannot sign.</exception>
    /// <exception cref="InvalidOperationException">No unused serial could be drawn, or the signature did not verify with the CA public key.</exception>
    IssuedCertificate Issue(IssuanceRequest request);
}

/// <summary>
/// Which serials this CA has already issued. Checked before signing so a serial is never used twice.
/// The journal index implements it; <see cref="InMemoryIssuedSerials"/> is the in-process default.
/// </summary>
public interface IIssuedSerials
{
    /// <summary>True when <paramref name="serial"/> (normalised content octets) was issued or is being issued.</summary>
    bool Contains(byte[] serial);
}

/// <summary>Records a serial once its certificate is durable in the journal.</summary>
public interface IIssuedSerialsRecorder
{
    /// <summary>Adds <paramref name="serial"/> (normalised content octets).</summary>
    void Record(byte[] serial);
}

/// <summary>A process-lifetime set of serials. Thread safe. Not durable: the journal index replaces it.</summary>
public sealed class InMemoryIssuedSerials : IIssuedSerials, IIssuedSerialsRecorder
{
    private readonly ConcurrentDictionary<string, byte> _serials = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public bool Contains(byte[] serial)
    {
        ArgumentNullException.ThrowIfNull(serial);
        return _serials.ContainsKey(Convert.ToHexString(serial));
    }

    /// <inheritdoc />
    public void Record(byte[] serial)
    {
        ArgumentNullException.ThrowIfNull(serial);
        _serials.TryAdd(Convert.ToHexString(serial), 0);
    }
}

/// <summary>
/// The default issuer. Prepare (<see cref="TbsCertificateBuilder"/>) → lint (<see cref="CertificateLinter"/>) →
/// serial uniqueness → sign (one signature at a time: HSM sessions are not assumed thread safe) →
/// wrap Certificate → verify with the CA public key.
/// </summary>
public sealed class CertificateIssuer : ICertificateIssuer
{
    private const int MaxSerialAttempts = 4;
    private readonly TbsCertificateBuilder _builder;
    private readonly CertificateLinter _linter;
    private readonly IIssuedSerials _issued;
    private readonly ECDsa? _verifyEcdsa;
    private readonly RSA? _verifyRsa;
    private readonly ConcurrentDictionary<string, byte> _inFlight = new(StringComparer.Ordinal);
    private readonly Lock _signLock = new();

    /// <summary>Creates the issuer.</summary>
    /// <param name="authority">Issuing CA and key.</param>
    /// <param name="profile">The IDevID profile.</param>
    /// <param name="serials">Serial source (CSPRNG in production).</param>
    /// <param name="issued">Serials already used.</param>
    /// <param name="time">Clock for notBefore.</param>
    /// <param name="linter">Lints; <see cref="CertificateLinter.Default"/> when null.</param>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    public CertificateIssuer(IssuingAuthority authority, CertificateProfile profile, ISerialNumberSource serials, IIssuedSerials issued,
        TimeProvider time, CertificateLinter? linter = null)
    {
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(issued);
        Authority = authority;
        Profile = profile;
        _builder = new TbsCertificateBuilder(profile, authority, serials, time);
        _linter = linter ?? CertificateLinter.Default;
        _issued = issued;

        // The CA public key, imported once (OpenSSL verification with a shared key is safe across threads).
        _verifyEcdsa = authority.Certificate.PublicKey.GetECDsaPublicKey();
        _verifyRsa = _verifyEcdsa is null
            ? authority.Certificate.PublicKey.GetRSAPublicKey() ?? throw new ArgumentException("issuing CA key is neither EC nor RSA", nameof(authority))
            : null;
    }

    /// <inheritdoc />
    public IssuingAuthority Authority { get; }

    /// <inheritdoc />
    public CertificateProfile Profile { get; }

    /// <inheritdoc />
    public IssuedCertificate Issue(IssuanceRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        for (int attempt = 0; attempt < MaxSerialAttempts; attempt++)
        {
            var prepared = _builder.Prepare(request);
            _linter.Lint(new LintContext(Authority, Profile, prepared));
            string key = Convert.ToHexString(prepared.Serial);
            if (_issued.Contains(prepared.Serial) || !_inFlight.TryAdd(key, 0))
            {
                continue;
            }

            try
            {
                byte[] signature;
                lock (_signLock)
                {
                    signature = Authority.SigningKey.Sign(prepared.TbsDer);
                }

                byte[] der = Wrap(prepared.TbsDer, Authority.SigningKey.SignatureAlgorithmIdentifier, signature);
                Verify(prepared.TbsDer, signature);
                return new IssuedCertificate(der, prepared.Serial, prepared.NotBefore, prepared.NotAfter);
            }
            finally
            {
                _inFlight.TryRemove(key, out _);
            }
        }

        throw new InvalidOperationException($"no unused serial number after {MaxSerialAttempts} attempts: check the serial number source");
    }

    private static byte[] Wrap(byte[] tbs, byte[] signatureAlgorithm, byte[] signature)
    {
        var w = new AsnWriter(AsnEncodingRules.DER);

        // Certificate ::= SEQUENCE {
        //   tbsCertificate       TBSCertificate,
        //   signatureAlgorithm   AlgorithmIdentifier,
        //   signatureValue       BIT STRING }
        using (w.PushSequence())
        {
            w.WriteEncodedValue(tbs);
            w.WriteEncodedValue(signatureAlgorithm);
            w.WriteBitString(signature);
        }

        return w.Encode();
    }

    /// <summary>Checks the fresh signature with the CA public key, as boulder does, before anything leaves the issuer.</summary>
    private void Verify(byte[] tbs, byte[] signature)
    {
        string alg = new AsnReader(Authority.SigningKey.SignatureAlgorithmIdentifier, AsnEncodingRules.DER).ReadSequence().ReadObjectIdentifier();
        HashAlgorithmName hash = alg switch
        {
            Oids.EcdsaWithSha256 or Oids.Sha256WithRsa => HashAlgorithmName.SHA256,
            Oids.EcdsaWithSha384 or "1.2.840.113549.1.1.12" => HashAlgorithmName.SHA384,
            "1.2.840.10045.4.3.4" or "1.2.840.113549.1.1.13" => HashAlgorithmName.SHA512,
            _ => throw new InvalidOperationException($"cannot verify signature algorithm {alg}"),
        };

        bool ok = _verifyEcdsa is not null
            ? _verifyEcdsa.VerifyData(tbs, signature, hash, DSASignatureFormat.Rfc3279DerSequence)
            : _verifyRsa!.VerifyData(tbs, signature, hash, RSASignaturePadding.Pkcs1);

        if (!ok)
        {
            throw new InvalidOperationException($"signature by key {Authority.SigningKey.KeyId} does not verify with the issuing CA certificate; certificate discarded");
        }
    }
}
