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

    /// <summary>The default profile (<see cref="CertificateProfileSet.Default"/> of <see cref="Profiles"/>).</summary>
    CertificateProfile Profile { get; }

    /// <summary>Every profile this issuer serves with its one issuing CA.</summary>
    CertificateProfileSet Profiles => new(Profile);

    /// <summary>Issues one certificate following <see cref="IssuanceRequest.Profile"/> (or the default profile).</summary>
    /// <param name="request">Device serial (PrintableString), SubjectPublicKeyInfo and optionally one of <see cref="Profiles"/>.</param>
    /// <returns>The signed, verified certificate.</returns>
    /// <exception cref="CertificateLintException">The prepared certificate broke a lint; nothing was signed.</exception>
    /// <exception cref="SigningKeyUnavailableException">The CA key cannot sign, or its signature did not verify with the CA certificate's public key (a faulty signer or HSM, or a key that does not match the certificate); the certificate is discarded.</exception>
    /// <exception cref="InvalidOperationException">No unused serial could be drawn.</exception>
    /// <exception cref="ArgumentException">The request names a profile this issuer does not serve.</exception>
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
/// serial uniqueness → sign → wrap Certificate → verify with the CA public key.
/// Signatures run concurrently: a software key is one OpenSSL EVP_PKEY, which is safe to share across threads, and a
/// PKCS#11 key goes through libp11, which takes a session from its per-slot session pool for each operation, so
/// concurrent issuances use several PKCS#11 sessions (PKCS#11 v2.40 §5.6: one operation per session at a time).
/// </summary>
public sealed class CertificateIssuer : ICertificateIssuer
{
    private const int MaxSerialAttempts = 4;
    private readonly Dictionary<string, (TbsCertificateBuilder Builder, CertificateLinter Linter)> _byProfile = new(StringComparer.Ordinal);
    private readonly IIssuedSerials _issued;
    private readonly string _signatureAlgorithm;
    private readonly SignatureCheckKey _caKey;
    private readonly ConcurrentDictionary<string, byte> _inFlight = new(StringComparer.Ordinal);

    /// <summary>Creates an issuer for one profile.</summary>
    /// <param name="authority">Issuing CA and key.</param>
    /// <param name="profile">The profile.</param>
    /// <param name="serials">Serial source (CSPRNG in production).</param>
    /// <param name="issued">Serials already used.</param>
    /// <param name="time">Clock for notBefore.</param>
    /// <param name="linter">Lints; the profile kind's set (<see cref="CertificateLinter.ForKind"/>) when null.</param>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    /// <exception cref="ArgumentException">The profile is invalid, or a Matter DAC profile with a CA that does not sign ecdsa-with-SHA256.</exception>
    public CertificateIssuer(IssuingAuthority authority, CertificateProfile profile, ISerialNumberSource serials, IIssuedSerials issued,
        TimeProvider time, CertificateLinter? linter = null)
        : this(authority, new CertificateProfileSet(profile ?? throw new ArgumentNullException(nameof(profile))), serials, issued, time, linter)
    {
    }

    /// <summary>Creates an issuer serving several profiles with one issuing CA.</summary>
    /// <param name="authority">Issuing CA and key.</param>
    /// <param name="profiles">The profiles, with a default.</param>
    /// <param name="serials">Serial source (CSPRNG in production).</param>
    /// <param name="issued">Serials already used.</param>
    /// <param name="time">Clock for notBefore.</param>
    /// <param name="linter">Lints for every profile; null to use each profile kind's set (<see cref="CertificateLinter.ForKind"/>).</param>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    /// <exception cref="ArgumentException">A Matter DAC profile with an issuing key that does not sign ecdsa-with-SHA256 (Matter Core §6.1), or an issuing key whose signature algorithm the issuer cannot verify.</exception>
    public CertificateIssuer(IssuingAuthority authority, CertificateProfileSet profiles, ISerialNumberSource serials, IIssuedSerials issued,
        TimeProvider time, CertificateLinter? linter = null)
    {
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentNullException.ThrowIfNull(profiles);
        ArgumentNullException.ThrowIfNull(issued);
        Authority = authority;
        Profiles = profiles;
        Profile = profiles.Default;
        string signatureAlgorithm = new AsnReader(authority.SigningKey.SignatureAlgorithmIdentifier, AsnEncodingRules.DER).ReadSequence().ReadObjectIdentifier();
        foreach (var p in profiles)
        {
            if (p.Kind == CertificateProfileKind.MatterDac && signatureAlgorithm != Oids.EcdsaWithSha256)
            {
                throw new ArgumentException($"profile {p.Name} is a Matter DAC, which must be signed with ecdsa-with-SHA256 by a P-256 CA key (Matter Core §6.1); the issuing CA key {authority.SigningKey.KeyId} signs otherwise", nameof(profiles));
            }

            _byProfile[p.Name] = (new TbsCertificateBuilder(p, authority, serials, time), linter ?? CertificateLinter.ForKind(p.Kind));
        }

        _issued = issued;

        // The CA public key, imported once with its precomputed table (verification with a shared key is safe across
        // threads), and the algorithm read once here: a lazily cached value could be read torn by concurrent first issuances.
        try
        {
            _caKey = SignatureCheckKey.FromCertificate(authority.Certificate, tableNow: true);
        }
        catch (CryptographicException)
        {
            throw new ArgumentException("issuing CA key is neither EC nor RSA", nameof(authority));
        }

        _signatureAlgorithm = _caKey.CanVerify(signatureAlgorithm) ? signatureAlgorithm
            : throw new ArgumentException($"the issuing CA key signs with {signatureAlgorithm}, which the issuer cannot verify");
    }

    /// <inheritdoc />
    public IssuingAuthority Authority { get; }

    /// <inheritdoc />
    public CertificateProfile Profile { get; }

    /// <inheritdoc />
    public CertificateProfileSet Profiles { get; }

    /// <inheritdoc />
    public IssuedCertificate Issue(IssuanceRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var profile = request.Profile ?? Profile;
        if (!Profiles.Contains(profile))
        {
            throw new ArgumentException($"profile {profile.Name} is not served by this issuer ({string.Join(", ", Profiles.Names)})", nameof(request));
        }

        var (builder, linter) = _byProfile[profile.Name];
        for (int attempt = 0; attempt < MaxSerialAttempts; attempt++)
        {
            var prepared = builder.Prepare(request);
            linter.Lint(new LintContext(Authority, profile, prepared));
            string key = Convert.ToHexString(prepared.Serial);
            if (_issued.Contains(prepared.Serial) || !_inFlight.TryAdd(key, 0))
            {
                continue;
            }

            try
            {
                byte[] signature = Authority.SigningKey.Sign(prepared.TbsDer);

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

    /// <summary>
    /// Checks the fresh signature with the CA public key, as boulder does, before anything leaves the issuer: the same
    /// check the mirror makes (<see cref="SignatureCheckKey"/>), with an EC key's precomputed table.
    /// </summary>
    private void Verify(byte[] tbs, byte[] signature)
    {
        if (!_caKey.VerifyX509Signature(_signatureAlgorithm, tbs, signature))
        {
            // Fail closed like a key that cannot sign: the station gets 503 with this reason, and nothing is journaled.
            throw new SigningKeyUnavailableException($"signature by key {Authority.SigningKey.KeyId} does not verify with the issuing CA certificate; certificate discarded");
        }
    }
}
