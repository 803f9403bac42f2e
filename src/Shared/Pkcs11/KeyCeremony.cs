using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using OfflinePki.Asn1;

namespace OfflinePki.Keys.Pkcs11;

/// <summary>
/// The key ceremony, in PKCS#11 tokens through Pkcs11Interop (as Boulder's cmd/ceremony does it in Go): tokens
/// initialised with generated PINs, keys generated in the tokens, a CSR signed in the token for every subordinate key
/// (proof of possession, checked before issuance), certificates issued by the root key in its token, and a ceremony
/// record signed with the root key.
/// <para>
/// Tokens: <c>ceremony-root</c> (root key, P-384, kept offline), <c>factory-F</c> (issuing CA and journal signer of
/// factory F), <c>mirror</c> (every factory's issuing CA clone, each OCSP responder, the mirror receipt key). The
/// issuing CA key must sit in both the factory and the mirror token, so it is generated in this process's memory,
/// imported into both (sensitive, not extractable there) and zeroed; it never touches a disk. Every CA certificate
/// carries O="OfflinePki ENV"; daemons refuse a root of another environment.
/// </para>
/// <para>
/// PINs: generated here (random hex) and written to <c>pins/TOKEN.pin</c> and <c>pins/TOKEN.so-pin</c> (mode 0600); no
/// PIN is ever passed on a command line, printed, or written to the record.
/// </para>
/// </summary>
public sealed class KeyCeremony
{
    private const string Label = "ceremony";
    private readonly string _module;
    private readonly string _work;
    private readonly string _environment;
    private readonly string _operator;
    private readonly IReadOnlyList<string> _factories;
    private readonly TimeProvider _time;
    private readonly TextWriter _progress;
    private readonly StringBuilder _record = new();

    /// <summary>Prepares a ceremony; <see cref="Run"/> performs it.</summary>
    /// <param name="modulePath">PKCS#11 module (for SoftHSM2, SOFTHSM2_CONF selects the token store).</param>
    /// <param name="workDirectory">Receives pins/, certs/ and the record; created if missing.</param>
    /// <param name="environment">dev, test, staging or production.</param>
    /// <param name="operatorName">The operator, written into the signed record.</param>
    /// <param name="factories">Factory ids, 1 to 32 of [A-Za-z0-9_-] each; at least one.</param>
    /// <param name="time">Clock for validity periods and the record.</param>
    /// <param name="progress">Progress lines (no secrets).</param>
    /// <exception cref="ArgumentException">A bad environment, operator or factory id; the message names the option.</exception>
    public KeyCeremony(string modulePath, string workDirectory, string environment, string operatorName, IReadOnlyList<string> factories, TimeProvider time, TextWriter progress)
    {
        ArgumentException.ThrowIfNullOrEmpty(modulePath);
        ArgumentException.ThrowIfNullOrEmpty(workDirectory);
        ArgumentNullException.ThrowIfNull(factories);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(progress);
        if (environment is not ("dev" or "test" or "staging" or "production"))
        {
            throw new ArgumentException("--env must be dev, test, staging or production", nameof(environment));
        }

        if (string.IsNullOrWhiteSpace(operatorName) || operatorName.Any(char.IsControl))
        {
            throw new ArgumentException("--operator is required (one line; it goes into the signed ceremony record)", nameof(operatorName));
        }

        if (factories.Count == 0 || factories.Any(f => !System.Text.RegularExpressions.Regex.IsMatch(f, "^[A-Za-z0-9_-]{1,32}$")))
        {
            throw new ArgumentException("--factory must be given at least once, each 1-32 of [A-Za-z0-9_-]", nameof(factories));
        }

        _module = modulePath;
        _work = Path.GetFullPath(workDirectory);
        _environment = environment;
        _operator = operatorName;
        _factories = factories;
        _time = time;
        _progress = progress;
    }

    /// <summary>Runs the ceremony. Returns the path of the signed record (its detached signature is the path + ".sig").</summary>
    /// <exception cref="InvalidOperationException">A ceremony token exists already in the module, or the work directory has a record; nothing is changed.</exception>
    /// <exception cref="SigningKeyUnavailableException">The module or a token refuses an operation (the CKR code is named).</exception>
    public string Run()
    {
        string org = "OfflinePki " + _environment;
        string pins = Path.Combine(_work, "pins"), certs = Path.Combine(_work, "certs");
        string recordPath = Path.Combine(_work, "ceremony-record.txt");
        if (File.Exists(recordPath))
        {
            throw new InvalidOperationException($"{recordPath} exists: refusing to run a second ceremony into {_work}");
        }

        var admin = new TokenAdministration(Label, _module);
        var tokens = new List<string> { "ceremony-root", "mirror" };
        tokens.AddRange(_factories.Select(f => "factory-" + f));
        var existing = admin.TokenLabels().Intersect(tokens, StringComparer.Ordinal).ToList();
        if (existing.Count > 0)
        {
            throw new InvalidOperationException($"token(s) {string.Join(", ", existing)} exist already in module '{_module}': refusing to run a second ceremony over them");
        }

        foreach (var d in new[] { _work, pins, certs })
        {
            Directory.CreateDirectory(d);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(d, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }

        Line("OfflinePki key ceremony");
        Line("environment: " + _environment);
        Line("operator: " + _operator);
        Line("started: " + Timestamp());
        Line("module: " + _module);

        foreach (var t in tokens)
        {
            InitToken(admin, t, pins);
        }

        // 1. Root, self-signed.
        admin.GenerateEcKeyPair("ceremony-root", Pin(pins, "ceremony-root"), "root-ca", [0x01], Oids.Secp384r1);
        using var root = Open("ceremony-root", "root-ca", pins);
        var rootName = Name(org, org + " Root CA");
        var now = _time.GetUtcNow();
        var rootRequest = new CertificateRequest(rootName, root.PublicKey, root.HashAlgorithm);
        rootRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        rootRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        rootRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(root.PublicKey, false));
        using var rootCert = rootRequest.Create(rootName, new SigningKeySignatureGenerator(root), now, now.AddDays(7300), Serial());
        Save(certs, "root-ca", rootCert);
        Line($"key root-ca token=ceremony-root spki-sha256={Spki(rootCert)} cert=certs/root-ca.crt subject={rootCert.SubjectName.Format(false)}");

        // 2. Mirror receipt key.
        admin.GenerateEcKeyPair("mirror", Pin(pins, "mirror"), "mirror-receipt", [0x10], Oids.Secp256r1);
        using (var cert = Issue("mirror", "mirror-receipt", pins, certs, Name(org, "Mirror Receipt Signer"), root, rootCert, 3650, Profile.MirrorReceipt))
        {
            Line($"key mirror-receipt token=mirror spki-sha256={Spki(cert)} cert=certs/mirror-receipt.crt");
        }

        // 3. Per factory: issuing CA (in both tokens), journal signer, OCSP responder.
        byte n = 0;
        foreach (string f in _factories)
        {
            n++;
            string token = "factory-" + f;
            using (var issuing = ECDsa.Create(ECCurve.NamedCurves.nistP256))
            {
                admin.ImportEcKey(token, Pin(pins, token), "issuing-ca", [0x01], issuing);
                admin.ImportEcKey("mirror", Pin(pins, "mirror"), "issuing-ca-" + f, [0x20, n], issuing);
            }

            using var issuingKey = Open(token, "issuing-ca", pins);
            using var issuingCert = Issue(token, "issuing-ca", pins, certs, Name(org, $"Factory {f} Issuing CA"), root, rootCert, 3650, Profile.Issuing, "issuing-ca-" + f, issuingKey);
            Line($"key issuing-ca-{f} tokens={token},mirror spki-sha256={Spki(issuingCert)} cert=certs/issuing-ca-{f}.crt (generated in ceremony memory, imported into both, zeroed)");

            admin.GenerateEcKeyPair(token, Pin(pins, token), "journal-signer", [0x02], Oids.Secp256r1);
            using (var cert = Issue(token, "journal-signer", pins, certs, Name(org, $"Factory {f} Journal Signer"), root, rootCert, 3650, Profile.JournalSigner, "journal-signer-" + f))
            {
                Line($"key journal-signer-{f} token={token} spki-sha256={Spki(cert)} cert=certs/journal-signer-{f}.crt");
            }

            admin.GenerateEcKeyPair("mirror", Pin(pins, "mirror"), "ocsp-" + f, [0x30, n], Oids.Secp256r1);
            using (var cert = Issue("mirror", "ocsp-" + f, pins, certs, Name(org, $"Factory {f} OCSP Responder"), issuingKey, issuingCert, 30, Profile.Ocsp))
            {
                Line($"key ocsp-{f} token=mirror spki-sha256={Spki(cert)} cert=certs/ocsp-{f}.crt");
            }
        }

        Line("tokens: " + string.Join(' ', admin.TokenLabels()));
        Line("finished: " + Timestamp());

        // 4. The record, signed with the root key (detached ECDSA-SHA384 over the text, DER).
        byte[] text = Encoding.UTF8.GetBytes(_record.ToString());
        File.WriteAllBytes(recordPath, text);
        byte[] signature = root.Sign(text);
        using (var check = rootCert.GetECDsaPublicKey()!)
        {
            if (!check.VerifyData(text, signature, root.HashAlgorithm, DSASignatureFormat.Rfc3279DerSequence))
            {
                throw new InvalidOperationException("the ceremony record signature does not verify with the root certificate");
            }
        }

        File.WriteAllBytes(recordPath + ".sig", signature);
        _progress.WriteLine($"ceremony complete: {recordPath} (signed: {recordPath}.sig)");
        return recordPath;
    }

    private enum Profile { Issuing, JournalSigner, MirrorReceipt, Ocsp }

    private void InitToken(TokenAdministration admin, string token, string pins)
    {
        byte[] user = Encoding.ASCII.GetBytes(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12)));
        byte[] so = Encoding.ASCII.GetBytes(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)));
        try
        {
            WriteSecret(Path.Combine(pins, token + ".pin"), user);
            WriteSecret(Path.Combine(pins, token + ".so-pin"), so);
            admin.InitToken(token, so, user);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(user);
            CryptographicOperations.ZeroMemory(so);
        }

        _progress.WriteLine($"token {token} initialised (PINs in pins/{token}.pin and pins/{token}.so-pin)");
    }

    private Pkcs11Key Open(string token, string label, string pins) =>
        new($"{Label}:{token}:{label}", $"pkcs11:token={token};object={label};type=private", _module, Pin(pins, token), time: _time);

    /// <summary>A CSR signed in the token (proof of possession, verified), then the certificate issued by <paramref name="issuer"/>.</summary>
    private X509Certificate2 Issue(string token, string label, string pins, string certs, X500DistinguishedName subject, ISigningKey issuer, X509Certificate2 issuerCert,
        int days, Profile profile, string? file = null, Pkcs11Key? opened = null)
    {
        Pkcs11Key? own = opened is null ? Open(token, label, pins) : null;
        var key = opened ?? own!;
        try
        {
            var csr = new CertificateRequest(subject, key.PublicKey, key.HashAlgorithm).CreateSigningRequest(new SigningKeySignatureGenerator(key));
            File.WriteAllText(Path.Combine(certs, (file ?? label) + ".csr"), PemEncoding.WriteString("CERTIFICATE REQUEST", csr));
            var request = CertificateRequest.LoadSigningRequest(csr, key.HashAlgorithm, CertificateRequestLoadOptions.Default); // verifies the CSR signature
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(profile == Profile.Issuing, profile == Profile.Issuing, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(
                profile == Profile.Issuing ? X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign : X509KeyUsageFlags.DigitalSignature, true));
            string? eku = profile switch
            {
                Profile.JournalSigner => Oids.JournalSignerEku,
                Profile.MirrorReceipt => Oids.MirrorReceiptEku,
                Profile.Ocsp => Oids.OcspSigningEku,
                _ => null,
            };
            if (eku is not null)
            {
                request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(eku)], true));
            }

            if (profile == Profile.Ocsp)
            {
                request.CertificateExtensions.Add(new X509Extension(Oids.OcspNoCheck, [0x05, 0x00], false)); // id-pkix-ocsp-nocheck NULL, RFC 6960 §4.2.2.2.1
            }

            request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
            request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuerCert, includeKeyIdentifier: true, includeIssuerAndSerial: false));
            var now = _time.GetUtcNow();
            var notAfter = now.AddDays(days) < issuerCert.NotAfter ? now.AddDays(days) : new DateTimeOffset(issuerCert.NotAfter);
            var cert = request.Create(issuerCert.SubjectName, new SigningKeySignatureGenerator(issuer), now, notAfter, Serial());
            Save(certs, file ?? label, cert);
            return cert;
        }
        finally
        {
            own?.Dispose();
        }
    }

    private static X500DistinguishedName Name(string organization, string commonName)
    {
        // X500DistinguishedNameBuilder encodes the last added RDN first: this is O=..., CN=... in DER order.
        var b = new X500DistinguishedNameBuilder();
        b.AddCommonName(commonName);
        b.AddOrganizationName(organization);
        return b.Build();
    }

    /// <summary>16 random octets, top bit clear and non-zero leading nibble: a positive, minimal serial (RFC 5280 §4.1.2.2).</summary>
    private static byte[] Serial()
    {
        byte[] s = RandomNumberGenerator.GetBytes(16);
        s[0] = (byte)(0x40 | (s[0] & 0x3F));
        return s;
    }

    private static void Save(string certs, string name, X509Certificate2 cert) =>
        File.WriteAllText(Path.Combine(certs, name + ".crt"), PemEncoding.WriteString("CERTIFICATE", cert.RawData));

    private static string Spki(X509Certificate2 cert) => Convert.ToHexStringLower(SHA256.HashData(cert.PublicKey.ExportSubjectPublicKeyInfo()));

    private static Func<byte[]> Pin(string pins, string token) => () => ReadPinFile(Path.Combine(pins, token + ".pin"));

    /// <summary>The first line of a PIN file as UTF-8 bytes (the caller zeroes them).</summary>
    /// <exception cref="SigningKeyUnavailableException">The file is unreadable or its first line is empty; the message names the file, not the PIN.</exception>
    public static byte[] ReadPinFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new SigningKeyUnavailableException($"PIN file '{path}' cannot be read: {ex.Message}", ex);
        }

        int nl = text.IndexOfAny(['\r', '\n']);
        string line = nl < 0 ? text : text[..nl];
        return line.Length > 0 ? Encoding.UTF8.GetBytes(line) : throw new SigningKeyUnavailableException($"PIN file '{path}' is empty");
    }

    private static void WriteSecret(string path, byte[] secret)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using var f = new FileStream(path, options);
        f.Write(secret);
        f.WriteByte((byte)'\n');
    }

    private string Timestamp() => _time.GetUtcNow().ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);

    private void Line(string line) => _record.Append(line).Append('\n');
}
