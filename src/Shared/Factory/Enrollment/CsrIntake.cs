using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.RegularExpressions;
using OfflinePki.Asn1;
using OfflinePki.Factory;

namespace OfflinePki.Enrollment;

/// <summary>A PKCS#10 request that passed intake: well formed, self-signed (proof of possession), an allowed key, a valid device ID.</summary>
/// <param name="Der">The CSR DER as received.</param>
/// <param name="Sha256">SHA-256 of <paramref name="Der"/> (32 bytes), journaled as csr_sha256.</param>
/// <param name="SubjectPublicKeyInfo">DER SubjectPublicKeyInfo of the device key, re-encoded canonically.</param>
/// <param name="KeyDescription">"P-256", "P-384" or "RSA-n"; for logs and lints.</param>
/// <param name="DeviceId">The IEEE 802.1AR device serial: the CSR subject's serialNumber (2.5.4.5).</param>
public sealed record ValidatedCsr(byte[] Der, byte[] Sha256, byte[] SubjectPublicKeyInfo, string KeyDescription, string DeviceId)
{
    /// <summary>The operator id from the CSR attribute <c>OperatorIdAttribute</c>, or null when absent.</summary>
    public string? OperatorId { get; init; }
}

/// <summary>
/// Decodes and checks an EST enrollment body (RFC 7030 §4.2.1: base64 of a DER PKCS#10 request, line breaks
/// allowed). Pure function of its input and the device-ID pattern; thread safe.
/// </summary>
public sealed class CsrIntake
{
    /// <summary>The keys a device may hold, as stated in refusals.</summary>
    public const string AllowedKeysText = "P-256, P-384, RSA >= 2048";

    /// <summary>Smallest RSA modulus accepted, in bits.</summary>
    public const int MinRsaBits = 2048;

    /// <summary>Largest RSA modulus accepted, in bits (bounds verification cost).</summary>
    public const int MaxRsaBits = 16384;

    private static readonly HashSet<string> AllowedSignatureAlgorithms =
    [
        Oids.EcdsaWithSha256, Oids.EcdsaWithSha384, "1.2.840.10045.4.3.4",
        Oids.Sha256WithRsa, "1.2.840.113549.1.1.12", "1.2.840.113549.1.1.13", "1.2.840.113549.1.1.10",
    ];

    private readonly Regex _deviceIdPattern;
    private readonly Issuance.CertificateProfile? _profile;

    /// <summary>Creates the intake.</summary>
    /// <param name="deviceIdPattern">Pattern a device serial must match in full (anchor it); compiled with a match timeout by the caller.</param>
    /// <exception cref="ArgumentNullException"><paramref name="deviceIdPattern"/> is null.</exception>
    public CsrIntake(Regex deviceIdPattern)
    {
        ArgumentNullException.ThrowIfNull(deviceIdPattern);
        _deviceIdPattern = deviceIdPattern;
    }

    /// <summary>Creates the intake for one profile: its device-ID pattern and its key types (<see cref="Issuance.CertificateProfile.AllowedKeyTypes"/>).</summary>
    /// <param name="profile">The profile.</param>
    /// <exception cref="ArgumentNullException"><paramref name="profile"/> is null.</exception>
    public CsrIntake(Issuance.CertificateProfile profile)
        : this((profile ?? throw new ArgumentNullException(nameof(profile))).DeviceIdPattern)
    {
        _profile = profile;
    }

    /// <summary>Decodes an RFC 7030 §4.2.1 body: base64 text (whitespace and line breaks allowed) or PEM "CERTIFICATE REQUEST".</summary>
    /// <param name="body">The HTTP body bytes (ASCII).</param>
    /// <returns>The DER bytes.</returns>
    /// <exception cref="EnrollmentRejectedException"><see cref="EnrollmentError.MalformedBody"/>: empty, non-ASCII, or not base64.</exception>
    public static byte[] DecodeBody(ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty)
        {
            throw new EnrollmentRejectedException(EnrollmentError.MalformedBody, "empty body: expected base64 of a DER PKCS#10 request (RFC 7030 §4.2.1)");
        }

        foreach (byte b in body)
        {
            if (b >= 0x80 || (b < 0x20 && b is not (byte)'\r' and not (byte)'\n' and not (byte)'\t'))
            {
                throw new EnrollmentRejectedException(EnrollmentError.MalformedBody, "body is not base64 text: it holds binary bytes (send base64 of the DER PKCS#10, RFC 7030 §4.2.1)");
            }
        }

        string text = Encoding.ASCII.GetString(body);
        if (text.Contains("-----BEGIN", StringComparison.Ordinal))
        {
            if (PemEncoding.TryFind(text, out var fields))
            {
                var label = text.AsSpan()[fields.Label];
                if (label is "CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST")
                {
                    text = text[fields.Base64Data];
                }
                else
                {
                    throw new EnrollmentRejectedException(EnrollmentError.MalformedBody, $"PEM body has label '{label}': expected CERTIFICATE REQUEST");
                }
            }
            else
            {
                throw new EnrollmentRejectedException(EnrollmentError.MalformedBody, "body looks like PEM but cannot be decoded");
            }
        }

        var compact = new StringBuilder(text.Length);
        foreach (char c in text)
        {
            if (!char.IsWhiteSpace(c))
            {
                compact.Append(c);
            }
        }

        var chars = compact.ToString();
        var buffer = new byte[(chars.Length / 4 * 3) + 3];
        if (chars.Length == 0 || !Convert.TryFromBase64String(chars, buffer, out int written))
        {
            throw new EnrollmentRejectedException(EnrollmentError.MalformedBody, "body is not valid base64 (RFC 7030 §4.2.1 requires base64 of the DER PKCS#10 request)");
        }

        return buffer[..written];
    }

    /// <summary>
    /// Checks a DER PKCS#10 request: structure (RFC 2986 §4), an allowed key, an allowed signature algorithm,
    /// the signature (proof of possession: ECDSA over an uncompressed P-256/P-384 point is verified directly, anything
    /// else by <see cref="CertificateRequest.LoadSigningRequest(byte[], HashAlgorithmName, CertificateRequestLoadOptions, RSASignaturePadding?)"/>),
    /// and the device ID in the subject serialNumber.
    /// </summary>
    /// <param name="der">The CSR DER.</param>
    /// <returns>The validated request.</returns>
    /// <exception cref="EnrollmentRejectedException">Any rule fails; <see cref="EnrollmentRejectedException.Code"/> names which.</exception>
    public ValidatedCsr Validate(byte[] der)
    {
        ArgumentNullException.ThrowIfNull(der);
        ReadOnlyMemory<byte> subject, spki, requestInfo, signature;
        string sigAlg;
        string? operatorId;
        try
        {
            // CertificationRequest ::= SEQUENCE {
            //   certificationRequestInfo CertificationRequestInfo,
            //   signatureAlgorithm AlgorithmIdentifier,
            //   signature BIT STRING }
            // CertificationRequestInfo ::= SEQUENCE {
            //   version INTEGER { v1(0) }, subject Name,
            //   subjectPKInfo SubjectPublicKeyInfo, attributes [0] Attributes }
            var top = new AsnReader(der, AsnEncodingRules.DER);
            var outer = top.ReadSequence();
            top.ThrowIfNotEmpty();
            requestInfo = outer.PeekEncodedValue();
            var info = outer.ReadSequence();
            if (!info.TryReadInt32(out int version) || version != 0)
            {
                throw new EnrollmentRejectedException(EnrollmentError.MalformedCsr, "CSR version is not v1(0) (RFC 2986 §4.1)");
            }

            subject = info.ReadEncodedValue();
            spki = info.ReadEncodedValue();
            operatorId = ReadOperatorId(info);
            var algId = outer.ReadSequence();
            sigAlg = algId.ReadObjectIdentifier();
            if (algId.HasData && sigAlg.StartsWith("1.2.840.10045.4.", StringComparison.Ordinal))
            {
                // RFC 5758 §3.2: ecdsa-with-SHA224/256/384/512 AlgorithmIdentifiers MUST omit the parameters field.
                throw new EnrollmentRejectedException(EnrollmentError.MalformedCsr,
                    $"CSR signatureAlgorithm {sigAlg} carries parameters; RFC 5758 §3.2 requires them absent");
            }

            signature = outer.ReadBitString(out _);
            outer.ThrowIfNotEmpty();
        }
        catch (AsnContentException ex)
        {
            throw new EnrollmentRejectedException(EnrollmentError.MalformedCsr, $"body is not a DER PKCS#10 request (RFC 2986 §4): {ex.Message}");
        }

        // Structure only here: the signature check below imports (and so validates) the key; a key that does not
        // import is classified precisely on that failure path.
        string keyDescription = ClassifyKey(spki, importKey: false);
        if (_profile is { } profile && !profile.AllowsKey(keyDescription))
        {
            throw new EnrollmentRejectedException(EnrollmentError.KeyNotAllowed,
                $"{keyDescription} key refused: profile {profile.Name} allows {string.Join(", ", profile.AllowedKeyTypes)}");
        }

        if (!AllowedSignatureAlgorithms.Contains(sigAlg))
        {
            throw new EnrollmentRejectedException(EnrollmentError.SignatureAlgorithmNotAllowed,
                $"CSR signature algorithm {sigAlg} refused: allowed are ECDSA or RSA with SHA-256/384/512");
        }

        // Issue 16 finding 5: one signature, one verdict: strict DER ahead of every verifier (fast path or runtime).
        if (sigAlg.StartsWith("1.2.840.10045.4.", StringComparison.Ordinal) && keyDescription is "P-256" or "P-384"
            && !EcdsaSignatureDer.IsStrict(signature.Span, keyDescription == "P-256" ? 256 : 384))
        {
            throw new EnrollmentRejectedException(EnrollmentError.ProofOfPossessionFailed,
                "CSR signature is not a strict DER Ecdsa-Sig-Value (RFC 3279 §2.2.3: two minimal positive INTEGERs below the curve order, nothing after)");
        }

        byte[] publicKeyInfo;
        switch (VerifyEcProofOfPossession(spki, keyDescription, sigAlg, requestInfo, signature))
        {
            case true:
                publicKeyInfo = spki.ToArray();
                break;
            case false:
                throw new EnrollmentRejectedException(EnrollmentError.ProofOfPossessionFailed, "CSR signature does not verify (proof of possession failed)");
            default:
                publicKeyInfo = LoadAndVerify(der, spki).PublicKey.ExportSubjectPublicKeyInfo();
                break;
        }

        string deviceId = ReadDeviceId(new X500DistinguishedName(subject.Span));
        return new ValidatedCsr(der, SHA256.HashData(der), publicKeyInfo, keyDescription, deviceId) { OperatorId = operatorId };
    }

    /// <summary>
    /// Proof of possession (RFC 2986 §3) for a P-256/P-384 key given as an uncompressed point (SEC 1 §2.3.3) with an
    /// ECDSA signature: the point is imported as <see cref="ECParameters"/> (OpenSSL checks that it is on the curve)
    /// and the signature over the DER CertificationRequestInfo is verified. This is the same check
    /// <see cref="CertificateRequest.LoadSigningRequest(byte[], HashAlgorithmName, CertificateRequestLoadOptions, RSASignaturePadding?)"/>
    /// makes, at about 80 % of its cost (no SubjectPublicKeyInfo re-parse and no request object); measured with
    /// <c>bench stages</c>.
    /// </summary>
    /// <returns>True if the signature verifies, false if it does not, null for any other key or signature form
    /// (RSA, a compressed point): the caller then uses the runtime's loader.</returns>
    /// <exception cref="EnrollmentRejectedException">The point is not on the curve (<see cref="EnrollmentError.MalformedCsr"/>).</exception>
    private static bool? VerifyEcProofOfPossession(ReadOnlyMemory<byte> spki, string keyDescription, string sigAlg, ReadOnlyMemory<byte> requestInfo, ReadOnlyMemory<byte> signature)
    {
        (ECCurve curve, int size) = keyDescription switch
        {
            "P-256" => (ECCurve.NamedCurves.nistP256, 32),
            "P-384" => (ECCurve.NamedCurves.nistP384, 48),
            _ => (default(ECCurve), 0),
        };
        HashAlgorithmName hash = sigAlg switch
        {
            Oids.EcdsaWithSha256 => HashAlgorithmName.SHA256,
            Oids.EcdsaWithSha384 => HashAlgorithmName.SHA384,
            "1.2.840.10045.4.3.4" => HashAlgorithmName.SHA512,
            _ => default,
        };
        if (size == 0 || hash == default)
        {
            return null;
        }

        ReadOnlyMemory<byte> point;
        try
        {
            var r = new AsnReader(spki, AsnEncodingRules.DER).ReadSequence();
            r.ReadSequence();
            point = r.ReadBitString(out int unused);
            if (unused != 0 || point.Length != 1 + (2 * size) || point.Span[0] != 0x04)
            {
                return null;
            }
        }
        catch (AsnContentException)
        {
            return null;
        }

        EnrollmentRejectedException BadKey() =>
            new(EnrollmentError.MalformedCsr, $"CSR {keyDescription} public key cannot be decoded (invalid point or modulus)");

        bool? fast;
        try
        {
            fast = EcdsaPointVerifier.TryVerify(size, point.Span, requestInfo.Span, hash, signature.Span);
        }
        catch (CryptographicException)
        {
            throw BadKey();
        }

        if (fast is { } verified)
        {
            return verified;
        }

        ECDsa key;
        try
        {
            key = ECDsa.Create(new ECParameters
            {
                Curve = curve,
                Q = new ECPoint { X = point.Span.Slice(1, size).ToArray(), Y = point.Span.Slice(1 + size, size).ToArray() },
            });
        }
        catch (CryptographicException)
        {
            throw BadKey();
        }

        using (key)
        {
            return key.VerifyData(requestInfo.Span, signature.Span, hash, DSASignatureFormat.Rfc3279DerSequence);
        }
    }

    /// <summary>The runtime's loader, for keys <see cref="VerifyEcProofOfPossession"/> does not take.</summary>
    private static CertificateRequest LoadAndVerify(byte[] der, ReadOnlyMemory<byte> spki)
    {
        try
        {
            // Default options verify the request signature with the request's own key: proof of possession (RFC 2986 §3).
            // Requested extensions (extensionRequest) are not loaded: the profile alone decides the extensions.
            return CertificateRequest.LoadSigningRequest(der, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.Default);
        }
        catch (CryptographicException)
        {
            // Only on failure: an undecodable key (invalid point or modulus) is reported as such, and the request is
            // loaded again without the signature check, so that a structure the runtime refuses is not mistaken for a
            // bad signature. The happy path imports the key and parses the request once.
            ClassifyKey(spki);
            try
            {
                CertificateRequest.LoadSigningRequest(der, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.SkipSignatureValidation);
            }
            catch (CryptographicException ex)
            {
                throw new EnrollmentRejectedException(EnrollmentError.MalformedCsr, $"CSR cannot be loaded: {ex.Message}");
            }

            throw new EnrollmentRejectedException(EnrollmentError.ProofOfPossessionFailed, "CSR signature does not verify (proof of possession failed)");
        }
    }

    /// <summary>
    /// serverkeygen (RFC 7030 §4.4.1): the CSR only names the device, its public key and signature are ignored
    /// because the server makes the key. Checks the structure (RFC 2986 §4) and the device ID.
    /// </summary>
    /// <param name="der">The CSR DER.</param>
    /// <returns>The device ID and the CSR operator id attribute (or null).</returns>
    /// <exception cref="EnrollmentRejectedException"><see cref="EnrollmentError.MalformedCsr"/>, <see cref="EnrollmentError.DeviceIdMissing"/> or <see cref="EnrollmentError.DeviceIdInvalid"/>.</exception>
    public (string DeviceId, string? OperatorId) ReadServerKeyGenRequest(byte[] der)
    {
        ArgumentNullException.ThrowIfNull(der);
        ReadOnlyMemory<byte> subject;
        string? operatorId;
        try
        {
            var top = new AsnReader(der, AsnEncodingRules.DER);
            var outer = top.ReadSequence();
            top.ThrowIfNotEmpty();
            var info = outer.ReadSequence();
            if (!info.TryReadInt32(out int version) || version != 0)
            {
                throw new EnrollmentRejectedException(EnrollmentError.MalformedCsr, "CSR version is not v1(0) (RFC 2986 §4.1)");
            }

            subject = info.ReadEncodedValue();
            info.ReadEncodedValue();
            operatorId = ReadOperatorId(info);
        }
        catch (AsnContentException ex)
        {
            throw new EnrollmentRejectedException(EnrollmentError.MalformedCsr, $"body is not a DER PKCS#10 request (RFC 2986 §4): {ex.Message}");
        }

        return (ReadDeviceId(new X500DistinguishedName(subject.Span)), operatorId);
    }

    // attributes [0] IMPLICIT SET OF Attribute; Attribute ::= SEQUENCE { type OBJECT IDENTIFIER, values SET SIZE(1..MAX) OF ANY }
    private static string? ReadOperatorId(AsnReader info)
    {
        var attrTag = new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true);
        if (!info.HasData || !info.PeekTag().HasSameClassAndValue(attrTag))
        {
            return null;
        }

        string? found = null;
        var attributes = info.ReadSetOf(skipSortOrderValidation: true, expectedTag: attrTag);
        while (attributes.HasData)
        {
            var attribute = attributes.ReadSequence();
            if (attribute.ReadObjectIdentifier() != Oids.OperatorIdAttribute)
            {
                continue;
            }

            var values = attribute.ReadSetOf(skipSortOrderValidation: true);
            var tag = values.PeekTag();
            if (found is not null || tag.TagClass != TagClass.Universal
                || (UniversalTagNumber)tag.TagValue is not (UniversalTagNumber.UTF8String or UniversalTagNumber.PrintableString))
            {
                throw new EnrollmentRejectedException(EnrollmentError.OperatorIdInvalid,
                    $"the CSR operator id attribute ({Oids.OperatorIdAttribute}) must appear once with one UTF8String or PrintableString value");
            }

            found = values.ReadCharacterString((UniversalTagNumber)tag.TagValue);
            if (values.HasData)
            {
                throw new EnrollmentRejectedException(EnrollmentError.OperatorIdInvalid,
                    $"the CSR operator id attribute ({Oids.OperatorIdAttribute}) must have exactly one value");
            }
        }

        return found;
    }

    /// <summary>
    /// Names the key in a SubjectPublicKeyInfo and refuses all but P-256, P-384 and RSA 2048..16384 bits.
    /// </summary>
    /// <param name="spki">DER SubjectPublicKeyInfo.</param>
    /// <param name="importKey">
    /// True: also import the key, which validates the EC point or RSA modulus (one scalar multiplication for EC).
    /// False: check the structure only (algorithm, curve, RSA modulus length), for callers whose key is validated
    /// elsewhere, e.g. by the CSR signature check, which imports it.
    /// </param>
    /// <returns>"P-256", "P-384" or "RSA-n".</returns>
    /// <exception cref="EnrollmentRejectedException"><see cref="EnrollmentError.KeyNotAllowed"/> or <see cref="EnrollmentError.MalformedCsr"/>.</exception>
    public static string ClassifyKey(ReadOnlyMemory<byte> spki, bool importKey = true)
    {
        string algorithm;
        string? parameter = null;
        try
        {
            // SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
            // AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }
            var r = new AsnReader(spki, AsnEncodingRules.DER).ReadSequence();
            var alg = r.ReadSequence();
            algorithm = alg.ReadObjectIdentifier();
            if (alg.HasData && alg.PeekTag().HasSameClassAndValue(Asn1Tag.ObjectIdentifier))
            {
                parameter = alg.ReadObjectIdentifier();
            }
        }
        catch (AsnContentException ex)
        {
            throw new EnrollmentRejectedException(EnrollmentError.MalformedCsr, $"CSR public key is not a valid SubjectPublicKeyInfo: {ex.Message}");
        }

        string name;
        switch (algorithm)
        {
            case Oids.EcPublicKey:
                name = parameter switch
                {
                    Oids.Secp256r1 => "P-256",
                    Oids.Secp384r1 => "P-384",
                    "1.3.132.0.35" => "P-521",
                    "1.3.132.0.10" => "secp256k1",
                    null => "EC (explicit curve parameters)",
                    _ => "EC curve " + parameter,
                };
                if (name is "P-256" or "P-384")
                {
                    if (importKey)
                    {
                        EnsureImports(spki, rsa: false, name);
                    }

                    return name;
                }

                break;
            case Oids.RsaEncryption:
                int bits = importKey ? EnsureImports(spki, rsa: true, "RSA") : RsaModulusBits(spki);
                name = $"RSA-{bits}";
                if (bits is >= MinRsaBits and <= MaxRsaBits)
                {
                    return name;
                }

                break;
            case "1.3.101.112": name = "Ed25519"; break;
            case "1.3.101.113": name = "Ed448"; break;
            case "1.3.101.110": name = "X25519"; break;
            case "1.2.840.10040.4.1": name = "DSA"; break;
            case "1.2.840.113549.1.1.10": name = "RSASSA-PSS"; break;
            default: name = "key algorithm " + algorithm; break;
        }

        throw new EnrollmentRejectedException(EnrollmentError.KeyNotAllowed, $"{name} key refused: allowed keys are {AllowedKeysText}");
    }

    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }  (RFC 8017 §A.1.1), inside the SPKI BIT STRING.
    private static int RsaModulusBits(ReadOnlyMemory<byte> spki)
    {
        try
        {
            var r = new AsnReader(spki, AsnEncodingRules.DER).ReadSequence();
            r.ReadSequence();
            var key = new AsnReader(r.ReadBitString(out _), AsnEncodingRules.DER).ReadSequence();
            var modulus = key.ReadIntegerBytes().Span;
            int i = 0;
            while (i < modulus.Length - 1 && modulus[i] == 0)
            {
                i++;
            }

            return ((modulus.Length - i - 1) * 8) + (32 - System.Numerics.BitOperations.LeadingZeroCount((uint)modulus[i]));
        }
        catch (AsnContentException ex)
        {
            throw new EnrollmentRejectedException(EnrollmentError.MalformedCsr, $"CSR RSA public key cannot be decoded: {ex.Message}");
        }
    }

    private static int EnsureImports(ReadOnlyMemory<byte> spki, bool rsa, string name)
    {
        try
        {
            if (rsa)
            {
                using var r = RSA.Create();
                r.ImportSubjectPublicKeyInfo(spki.Span, out _);
                return r.KeySize;
            }

            using var e = ECDsa.Create();
            e.ImportSubjectPublicKeyInfo(spki.Span, out _);
            return e.KeySize;
        }
        catch (CryptographicException)
        {
            throw new EnrollmentRejectedException(EnrollmentError.MalformedCsr, $"CSR {name} public key cannot be decoded (invalid point or modulus)");
        }
    }

    /// <summary>Reads the single serialNumber (2.5.4.5) attribute of a subject and checks it against the pattern.</summary>
    /// <exception cref="EnrollmentRejectedException"><see cref="EnrollmentError.DeviceIdMissing"/> or <see cref="EnrollmentError.DeviceIdInvalid"/>.</exception>
    public string ReadDeviceId(X500DistinguishedName subject)
    {
        ArgumentNullException.ThrowIfNull(subject);
        var values = new List<string>();
        try
        {
            foreach (var rdn in subject.EnumerateRelativeDistinguishedNames())
            {
                if (rdn.HasMultipleElements)
                {
                    continue;
                }

                if (rdn.GetSingleElementType().Value == Oids.SerialNumberAttribute)
                {
                    values.Add(rdn.GetSingleElementValue() ?? string.Empty);
                }
            }
        }
        catch (CryptographicException ex)
        {
            throw new EnrollmentRejectedException(EnrollmentError.MalformedCsr, $"CSR subject cannot be decoded: {ex.Message}");
        }

        if (values.Count != 1)
        {
            throw new EnrollmentRejectedException(EnrollmentError.DeviceIdMissing, values.Count == 0
                ? "CSR subject has no serialNumber (2.5.4.5) attribute: the IEEE 802.1AR device serial goes there (e.g. /serialNumber=DEV-0001/CN=...)"
                : "CSR subject has more than one serialNumber (2.5.4.5) attribute");
        }

        string id = values[0];
        if (!IsPrintableString(id))
        {
            throw new EnrollmentRejectedException(EnrollmentError.DeviceIdInvalid, "device serial holds characters outside X.520 PrintableString (A-Z a-z 0-9 space '()+,-./:=?)");
        }

        bool match;
        try
        {
            match = _deviceIdPattern.IsMatch(id);
        }
        catch (RegexMatchTimeoutException)
        {
            match = false;
        }

        if (!match)
        {
            throw new EnrollmentRejectedException(EnrollmentError.DeviceIdInvalid,
                $"device serial '{(id.Length > 64 ? id[..64] + "..." : id)}' does not match the pattern {_deviceIdPattern} ({(_profile is null ? "FactoryCa:Profile:DeviceIdPattern" : $"DeviceIdPattern of profile {_profile.Name}")})");
        }

        return id;
    }

    /// <summary>True when every character is in the X.680 PrintableString set and the value is non-empty.</summary>
    public static bool IsPrintableString(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Length == 0)
        {
            return false;
        }

        foreach (char c in value)
        {
            bool ok = char.IsAsciiLetterOrDigit(c) || c is ' ' or '\'' or '(' or ')' or '+' or ',' or '-' or '.' or '/' or ':' or '=' or '?';
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }
}
