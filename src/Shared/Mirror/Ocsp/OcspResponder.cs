using System.Collections.Concurrent;
using System.Diagnostics;
using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OfflinePki.Asn1;
using OfflinePki.Keys;
using OfflinePki.Registry;
using OfflinePki.Revocation;

namespace OfflinePki.Ocsp;

/// <summary>What to answer for a serial of a known issuer that no journal ever recorded (RFC 6960 §2.2).</summary>
public enum NeverIssuedPolicy
{
    /// <summary>"revoked", revocationTime 1970-01-01T00:00:00Z, reason certificateHold, with id-pkix-ocsp-extended-revoke (RFC 6960 §2.2, §4.4.8). The default: a counterfeit never validates.</summary>
    Revoked,
    /// <summary>"unknown" (RFC 6960 §2.2).</summary>
    Unknown,
}

/// <summary>Responder settings.</summary>
/// <param name="Validity">nextUpdate - thisUpdate of each SingleResponse; positive.</param>
/// <param name="NeverIssued">Answer for never-issued serials.</param>
/// <param name="CacheDuration">How long a signed nonce-less single response is reused (zero disables); less than <paramref name="Validity"/>.</param>
/// <param name="MaxCacheEntries">Cache size bound; the cache is cleared when it is reached.</param>
public sealed record OcspResponderSettings(TimeSpan Validity, NeverIssuedPolicy NeverIssued, TimeSpan CacheDuration, int MaxCacheEntries = 100_000);

/// <summary>One issuing CA the responder answers for, with its delegated responder (RFC 6960 §4.2.2.2).</summary>
public sealed class OcspIssuer
{
    private readonly HashSet<string> _certIdKeys = new(StringComparer.Ordinal);

    /// <summary>Creates the issuer entry; precomputes the CertID hashes for SHA-1, SHA-256, SHA-384 and SHA-512.</summary>
    /// <param name="factoryId">The factory id, for logs.</param>
    /// <param name="issuingCa">The issuing CA certificate.</param>
    /// <param name="responderCertificate">The delegated responder certificate (issued by <paramref name="issuingCa"/>, id-kp-OCSPSigning).</param>
    /// <param name="responderKey">The responder's key; its public key must be the certificate's.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The responder certificate is not issued by <paramref name="issuingCa"/> (name or signature), lacks id-kp-OCSPSigning, or does not match <paramref name="responderKey"/>.</exception>
    public OcspIssuer(string factoryId, X509Certificate2 issuingCa, X509Certificate2 responderCertificate, ISigningKey responderKey)
    {
        ArgumentException.ThrowIfNullOrEmpty(factoryId);
        ArgumentNullException.ThrowIfNull(issuingCa);
        ArgumentNullException.ThrowIfNull(responderCertificate);
        ArgumentNullException.ThrowIfNull(responderKey);
        if (!responderCertificate.IssuerName.RawData.AsSpan().SequenceEqual(issuingCa.SubjectName.RawData))
        {
            throw new ArgumentException($"OCSP responder certificate '{responderCertificate.Subject}' is issued by '{responderCertificate.Issuer}', not by the issuing CA '{issuingCa.Subject}' (RFC 6960 §4.2.2.2)", nameof(responderCertificate));
        }

        var eku = responderCertificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault();
        if (eku is null || !eku.EnhancedKeyUsages.Cast<Oid>().Any(o => o.Value == Oids.OcspSigningEku))
        {
            throw new ArgumentException($"OCSP responder certificate '{responderCertificate.Subject}' lacks id-kp-OCSPSigning (RFC 6960 §4.2.2.2)", nameof(responderCertificate));
        }

        if (!responderKey.PublicKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(responderCertificate.PublicKey.ExportSubjectPublicKeyInfo()))
        {
            throw new ArgumentException($"the OCSP responder key {responderKey.KeyId} does not match the responder certificate '{responderCertificate.Subject}'", nameof(responderKey));
        }

        if (!CertificateSignature.IsSignedBy(responderCertificate, issuingCa))
        {
            throw new ArgumentException($"OCSP responder certificate '{responderCertificate.Subject}' is not signed by the issuing CA '{issuingCa.Subject}' key (RFC 6960 §4.2.2.2)", nameof(responderCertificate));
        }

        FactoryId = factoryId;
        IssuingCa = issuingCa;
        ResponderNotBefore = new DateTimeOffset(responderCertificate.NotBefore.ToUniversalTime(), TimeSpan.Zero);
        ResponderNotAfter = new DateTimeOffset(responderCertificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        ResponderCertificate = responderCertificate.RawData;
        ResponderKey = responderKey;
        RegistryKeyHash = IssuerHashes.KeyHash(issuingCa);
        RegistryKeyHashHex = Convert.ToHexString(RegistryKeyHash);
        Sha1NameHash = IssuerHashes.NameHash(issuingCa, HashAlgorithmName.SHA1);
        var prefix = new AsnWriter(AsnEncodingRules.DER);
        using (prefix.PushSequence())
        {
            prefix.WriteObjectIdentifier(Oids.Sha1);
            prefix.WriteNull();
        }

        prefix.WriteOctetString(Sha1NameHash);
        prefix.WriteOctetString(RegistryKeyHash);
        Sha1CertIdPrefix = prefix.Encode();
        ResponderKeyHash = IssuerHashes.KeyHash(responderCertificate);
        foreach (var (oid, hash) in new[] { (Oids.Sha1, HashAlgorithmName.SHA1), (Oids.Sha256, HashAlgorithmName.SHA256), ("2.16.840.1.101.3.4.2.2", HashAlgorithmName.SHA384), ("2.16.840.1.101.3.4.2.3", HashAlgorithmName.SHA512) })
        {
            _certIdKeys.Add(Key(oid, IssuerHashes.NameHash(issuingCa, hash), IssuerHashes.KeyHash(issuingCa, hash)));
        }
    }

    /// <summary>The factory id.</summary>
    public string FactoryId { get; }

    /// <summary>notBefore of the responder certificate (UTC).</summary>
    public DateTimeOffset ResponderNotBefore { get; }

    /// <summary>notAfter of the responder certificate (UTC).</summary>
    public DateTimeOffset ResponderNotAfter { get; }

    /// <summary>The issuing CA certificate.</summary>
    public X509Certificate2 IssuingCa { get; }

    /// <summary>DER of the delegated responder certificate (sent in BasicOCSPResponse.certs).</summary>
    public byte[] ResponderCertificate { get; }

    /// <summary>The responder's signing key.</summary>
    public ISigningKey ResponderKey { get; }

    /// <summary>SHA-1 issuerKeyHash of the issuing CA (the registry key).</summary>
    public byte[] RegistryKeyHash { get; }

    /// <summary>Upper-case hex of <see cref="RegistryKeyHash"/>.</summary>
    public string RegistryKeyHashHex { get; }

    /// <summary>SHA-1 issuerNameHash of the issuing CA.</summary>
    public byte[] Sha1NameHash { get; }

    /// <summary>
    /// The DER of the first three CertID fields in the RFC 5019 §2.1.1 shape (hashAlgorithm SHA-1 with NULL parameters,
    /// issuerNameHash, issuerKeyHash): a request whose CertID starts with these octets can get the pre-signed response.
    /// </summary>
    public byte[] Sha1CertIdPrefix { get; }

    /// <summary>SHA-1 of the responder's subjectPublicKey: ResponderID byKey (RFC 6960 §4.2.1).</summary>
    public byte[] ResponderKeyHash { get; }

    /// <summary>True when <paramref name="certId"/> names this issuer (hash algorithm, name hash and key hash all match).</summary>
    public bool Matches(OcspCertId certId)
    {
        if (certId is null)
        {
            return false;
        }

        if (certId.HashAlgorithm == Oids.Sha1)
        {
            return certId.IssuerKeyHash.AsSpan().SequenceEqual(RegistryKeyHash) && certId.IssuerNameHash.AsSpan().SequenceEqual(Sha1NameHash);
        }

        return _certIdKeys.Contains(Key(certId.HashAlgorithm, certId.IssuerNameHash, certId.IssuerKeyHash));
    }

    /// <summary>True when <paramref name="certId"/> is in the RFC 5019 shape for this issuer (SHA-1, NULL parameters, short form length), so it is byte-equal to the pre-signed response's CertID.</summary>
    internal bool IsCanonical(OcspCertId certId) =>
        certId.Encoded.Length > 2 && certId.Encoded[1] < 0x80 && certId.Encoded.AsSpan(2).StartsWith(Sha1CertIdPrefix);

    /// <summary>The RFC 5019 §2.1.1 CertID (SHA-1, NULL parameters) of <paramref name="serial"/> under this issuer.</summary>
    internal byte[] CanonicalCertId(byte[] serial)
    {
        var w = new AsnWriter(AsnEncodingRules.DER, Sha1CertIdPrefix.Length + serial.Length + 8);
        using (w.PushSequence())
        {
            using (w.PushSequence())
            {
                w.WriteObjectIdentifier(Oids.Sha1);
                w.WriteNull();
            }

            w.WriteOctetString(Sha1NameHash);
            w.WriteOctetString(RegistryKeyHash);
            w.WriteIntegerUnsigned(serial);
        }

        return w.Encode();
    }

    private static string Key(string oid, byte[] nameHash, byte[] keyHash) => oid + "|" + Convert.ToHexString(nameHash) + "|" + Convert.ToHexString(keyHash);
}

/// <summary>An encoded OCSPResponse with what HTTP caching needs (RFC 5019 §6).</summary>
/// <param name="Der">The DER OCSPResponse.</param>
/// <param name="Status">responseStatus.</param>
/// <param name="ProducedAt">producedAt for a successful response.</param>
/// <param name="NextUpdate">The earliest nextUpdate of a successful response.</param>
/// <param name="HasNonce">True when the response echoes a nonce (then it must not be cached by HTTP caches).</param>
public sealed record OcspAnswer(byte[] Der, OcspResponseStatus Status, DateTimeOffset? ProducedAt, DateTimeOffset? NextUpdate, bool HasNonce);

/// <summary>Answers OCSP requests; the narrow interface the HTTP front end uses.</summary>
public interface IOcspResponseSource
{
    /// <summary>Answers one DER OCSPRequest. Never throws for bad input: that becomes malformedRequest, unauthorized or internalError.</summary>
    OcspAnswer Respond(ReadOnlyMemory<byte> request);
}

/// <summary>
/// The OCSP responder (RFC 6960, profile RFC 5019): parse the request, look up each (issuer, serial) in the
/// registry, prepare the ResponseData, lint it, sign it with the issuer's delegated responder key. Signed
/// nonce-less single responses are cached per (issuer, CertID, registry version) for a short while.
/// </summary>
public sealed partial class OcspResponder : IOcspResponseSource
{
    private static readonly Asn1Tag Ctx0 = new(TagClass.ContextSpecific, 0, isConstructed: true);
    private static readonly Asn1Tag Ctx1 = new(TagClass.ContextSpecific, 1, isConstructed: true);
    private static readonly Asn1Tag Ctx2 = new(TagClass.ContextSpecific, 2, isConstructed: true);

    private volatile OcspIssuer[] _issuers;
    // Set by a cache or pre-signed hit during one synchronous Respond call on this thread (the cache label of the metrics).
    [ThreadStatic]
    private static bool t_cacheHit;

    private readonly IRevocationSource _source;
    private readonly TimeProvider _time;
    private readonly OcspResponderSettings _settings;
    private readonly IReadOnlyList<IOcspLint> _lints;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, CacheEntry> _cache = new(StringComparer.Ordinal);

    /// <summary>Creates the responder.</summary>
    /// <param name="issuers">The issuing CAs answered for; at least one.</param>
    /// <param name="source">The registry.</param>
    /// <param name="timeProvider">Clock.</param>
    /// <param name="settings">Validity, never-issued policy, cache.</param>
    /// <param name="logger">Logger (no secrets are logged).</param>
    /// <param name="lints">Lints (default <see cref="OcspLints.All"/>).</param>
    /// <exception cref="ArgumentException">No issuers, or the settings are out of range (validity not positive, cache duration negative or not less than validity).</exception>
    public OcspResponder(IEnumerable<OcspIssuer> issuers, IRevocationSource source, TimeProvider timeProvider, OcspResponderSettings settings,
        ILogger<OcspResponder>? logger = null, IReadOnlyList<IOcspLint>? lints = null)
    {
        ArgumentNullException.ThrowIfNull(issuers);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(settings);
        _issuers = issuers.ToArray();
        if (_issuers.Length == 0)
        {
            throw new ArgumentException("at least one issuer is needed", nameof(issuers));
        }

        if (settings.Validity <= TimeSpan.Zero || settings.CacheDuration < TimeSpan.Zero || settings.CacheDuration >= settings.Validity)
        {
            throw new ArgumentException("validity must be positive and the cache duration in [0, validity)", nameof(settings));
        }

        _source = source;
        _time = timeProvider;
        _settings = settings;
        _lints = lints ?? OcspLints.All;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>An OCSPResponse carrying only an error status (no responseBytes), RFC 6960 §4.2.1.</summary>
    public static byte[] ErrorResponse(OcspResponseStatus status)
    {
        // OCSPResponse ::= SEQUENCE {
        //    responseStatus         OCSPResponseStatus,
        //    responseBytes          [0] EXPLICIT ResponseBytes OPTIONAL }
        var w = new AsnWriter(AsnEncodingRules.DER);
        using (w.PushSequence())
        {
            w.WriteEnumeratedValue(status);
        }

        return w.Encode();
    }

    /// <inheritdoc />
    public OcspAnswer Respond(ReadOnlyMemory<byte> request)
    {
        long started = Stopwatch.GetTimestamp();
        t_cacheHit = false;
        var answer = RespondCore(request);
        string cache = answer.Status != OcspResponseStatus.Successful ? "none" : t_cacheHit ? "hit" : "miss";
        var tags = new TagList { { "status", StatusLabel(answer.Status) }, { "cache", cache } };
        OfflinePki.Telemetry.MirrorMetrics.OcspRequests.Add(1, tags);
        OfflinePki.Telemetry.MirrorMetrics.OcspDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
        return answer;
    }

    // RFC 6960 §4.2.1 OCSPResponseStatus names, as labels.
    private static string StatusLabel(OcspResponseStatus status) => status switch
    {
        OcspResponseStatus.Successful => "successful",
        OcspResponseStatus.MalformedRequest => "malformedRequest",
        OcspResponseStatus.InternalError => "internalError",
        OcspResponseStatus.TryLater => "tryLater",
        OcspResponseStatus.Unauthorized => "unauthorized",
        OcspResponseStatus.SigRequired => "sigRequired",
        _ => "other",
    };

    private OcspAnswer RespondCore(ReadOnlyMemory<byte> request)
    {
        OcspRequest parsed;
        try
        {
            parsed = OcspRequestParser.Parse(request);
        }
        catch (OcspMalformedRequestException ex)
        {
            _logger.LogInformation("OCSP malformedRequest: {Reason}", ex.Message);
            return Error(OcspResponseStatus.MalformedRequest);
        }

        OcspIssuer? issuer = null;
        foreach (var certId in parsed.CertIds)
        {
            var match = FindIssuer(certId);
            if (match is null || (issuer is not null && !ReferenceEquals(issuer, match)))
            {
                _logger.LogInformation("OCSP unauthorized: no configured issuer matches CertID (hash {HashAlgorithm}, key hash {KeyHash}) or the request mixes issuers",
                    certId.HashAlgorithm, Convert.ToHexString(certId.IssuerKeyHash));
                return Error(OcspResponseStatus.Unauthorized);
            }

            issuer = match;
        }

        try
        {
            if (_index is not null && parsed.NonceExtensionValue is null && parsed.CertIds.Count == 1 && _index.TryAnswer(issuer!, parsed.CertIds[0], out var fast))
            {
                return fast;
            }

            return Answer(issuer!, parsed);
        }
        catch (SigningKeyUnavailableException ex)
        {
            // Fail closed but honest (RFC 6960 §2.3 tryLater): the responder key is in a token that is away; pre-signed
            // answers above still serve, nothing is sent unsigned.
            _logger.LogWarning("OCSP tryLater for factory {FactoryId}: responder key unavailable: {Reason}", issuer!.FactoryId, ex.Message);
            return Error(OcspResponseStatus.TryLater);
        }
        catch (Exception ex) when (ex is OcspLintException or CryptographicException or Microsoft.Data.Sqlite.SqliteException or InvalidOperationException)
        {
            _logger.LogError(ex, "OCSP internalError for factory {FactoryId}", issuer!.FactoryId);
            return Error(OcspResponseStatus.InternalError);
        }
    }

    private static OcspAnswer Error(OcspResponseStatus status) => new(ErrorResponse(status), status, null, null, false);

    private OcspAnswer Answer(OcspIssuer issuer, OcspRequest request)
    {
        long version = _source.RegistryVersion;
        var now = DerTime.Truncate(_time.GetUtcNow());
        string? cacheKey = null;
        if (request.NonceExtensionValue is null && request.CertIds.Count == 1 && _settings.CacheDuration > TimeSpan.Zero)
        {
            cacheKey = issuer.FactoryId + "|" + Convert.ToBase64String(request.CertIds[0].Encoded);
            if (_cache.TryGetValue(cacheKey, out var hit) && hit.Version == version && now < hit.Answer.ProducedAt + _settings.CacheDuration)
            {
                t_cacheHit = true;
                return hit.Answer;
            }
        }

        var responses = new List<SingleResponseDraft>(request.CertIds.Count);
        bool extendedRevoke = false;
        foreach (var certId in request.CertIds)
        {
            var single = Lookup(issuer, certId, now);
            extendedRevoke |= single.NeverIssued && single.Status == OcspCertStatus.Revoked;
            responses.Add(single);
        }

        var draft = new OcspResponseDraft(issuer.ResponderKeyHash, now, responses, request.NonceExtensionValue, request.NonceExtensionValue is not null,
            extendedRevoke, issuer.ResponderNotBefore, issuer.ResponderNotAfter);
        OcspLints.Enforce(_lints, draft);
        var der = Sign(issuer, draft);
        var answer = new OcspAnswer(der, OcspResponseStatus.Successful, now, responses.Min(r => r.NextUpdate), draft.NonceExtensionValue is not null);
        if (cacheKey is not null)
        {
            if (_cache.Count >= _settings.MaxCacheEntries)
            {
                _cache.Clear();
            }

            _cache[cacheKey] = new CacheEntry(version, answer);
        }

        return answer;
    }

    private SingleResponseDraft Lookup(OcspIssuer issuer, OcspCertId certId, DateTimeOffset now)
    {
        var status = TryNormalize(certId.Serial) is { } serial ? _source.GetStatus(issuer.RegistryKeyHash, serial) : CertificateStatus.NeverIssued;
        return Draft(certId, status, now);
    }

    private SingleResponseDraft Draft(OcspCertId certId, CertificateStatus status, DateTimeOffset now)
    {
        var next = now + _settings.Validity;
        return status.State switch
        {
            RegistryCertificateState.Good => new SingleResponseDraft(certId.Encoded, OcspCertStatus.Good, null, null, now, next, false),
            RegistryCertificateState.Revoked => new SingleResponseDraft(certId.Encoded, OcspCertStatus.Revoked, status.Revocation!.RevocationTime,
                status.Revocation.Reason, now, next, false),
            _ when _settings.NeverIssued == NeverIssuedPolicy.Revoked => new SingleResponseDraft(certId.Encoded, OcspCertStatus.Revoked,
                OcspExtendedRevokeWhenNeverIssuedIsRevoked.NeverIssuedRevocationTime, CrlReason.CertificateHold, now, next, true),
            _ => new SingleResponseDraft(certId.Encoded, OcspCertStatus.Unknown, null, null, now, next, true),
        };
    }

    // A serial that is negative, zero or over 20 octets was never issued by us; anything else is normalised.
    private static byte[]? TryNormalize(byte[] integerContent)
    {
        if (integerContent.Length == 0 || (integerContent[0] & 0x80) != 0)
        {
            return null;
        }

        try
        {
            return SerialNumber.Normalize(integerContent);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    private static byte[] Sign(OcspIssuer issuer, OcspResponseDraft draft)
    {
        var tbs = EncodeResponseData(draft);
        var signature = issuer.ResponderKey.Sign(tbs);

        // BasicOCSPResponse ::= SEQUENCE {
        //    tbsResponseData      ResponseData,
        //    signatureAlgorithm   AlgorithmIdentifier,
        //    signature            BIT STRING,
        //    certs            [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
        var basic = new AsnWriter(AsnEncodingRules.DER, tbs.Length + issuer.ResponderCertificate.Length + 256);
        using (basic.PushSequence())
        {
            basic.WriteEncodedValue(tbs);
            basic.WriteEncodedValue(issuer.ResponderKey.SignatureAlgorithmIdentifier);
            basic.WriteBitString(signature);
            using (basic.PushSequence(Ctx0))
            using (basic.PushSequence())
            {
                basic.WriteEncodedValue(issuer.ResponderCertificate);
            }
        }

        // OCSPResponse ::= SEQUENCE {
        //    responseStatus         OCSPResponseStatus,
        //    responseBytes          [0] EXPLICIT ResponseBytes OPTIONAL }
        // ResponseBytes ::= SEQUENCE {
        //    responseType   OBJECT IDENTIFIER,
        //    response       OCTET STRING }
        var w = new AsnWriter(AsnEncodingRules.DER);
        using (w.PushSequence())
        {
            w.WriteEnumeratedValue(OcspResponseStatus.Successful);
            using (w.PushSequence(Ctx0))
            using (w.PushSequence())
            {
                w.WriteObjectIdentifier(Oids.OcspBasic);
                w.WriteOctetString(basic.Encode());
            }
        }

        return w.Encode();
    }

    /// <summary>Encodes ResponseData (RFC 6960 §4.2.1) from a linted draft.</summary>
    internal static byte[] EncodeResponseData(OcspResponseDraft draft)
    {
        var w = new AsnWriter(AsnEncodingRules.DER);

        // ResponseData ::= SEQUENCE {
        //    version              [0] EXPLICIT Version DEFAULT v1,
        //    responderID              ResponderID,
        //    producedAt               GeneralizedTime,
        //    responses                SEQUENCE OF SingleResponse,
        //    responseExtensions   [1] EXPLICIT Extensions OPTIONAL }
        using (w.PushSequence())
        {
            // ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash }   (EXPLICIT tags)
            // KeyHash ::= OCTET STRING -- SHA-1 hash of responder's public key
            using (w.PushSequence(Ctx2))
            {
                w.WriteOctetString(draft.ResponderKeyHash);
            }

            DerTime.WriteGeneralizedTime(w, draft.ProducedAt);
            using (w.PushSequence())
            {
                foreach (var single in draft.Responses)
                {
                    WriteSingleResponse(w, single);
                }
            }

            if (draft.NonceExtensionValue is not null || draft.ExtendedRevoke)
            {
                using (w.PushSequence(Ctx1))
                using (w.PushSequence())
                {
                    if (draft.NonceExtensionValue is not null)
                    {
                        WriteExtension(w, Oids.OcspNonce, draft.NonceExtensionValue);
                    }

                    if (draft.ExtendedRevoke)
                    {
                        // ExtendedRevoke ::= NULL   (RFC 6960 §4.4.8, non-critical)
                        WriteExtension(w, Oids.OcspExtendedRevoke, [0x05, 0x00]);
                    }
                }
            }
        }

        return w.Encode();
    }

    private static void WriteSingleResponse(AsnWriter w, SingleResponseDraft single)
    {
        // SingleResponse ::= SEQUENCE {
        //    certID                       CertID,
        //    certStatus                   CertStatus,
        //    thisUpdate                   GeneralizedTime,
        //    nextUpdate         [0]       EXPLICIT GeneralizedTime OPTIONAL,
        //    singleExtensions   [1]       EXPLICIT Extensions OPTIONAL }
        using (w.PushSequence())
        {
            w.WriteEncodedValue(single.CertId);

            // CertStatus ::= CHOICE {
            //    good        [0]     IMPLICIT NULL,
            //    revoked     [1]     IMPLICIT RevokedInfo,
            //    unknown     [2]     IMPLICIT UnknownInfo }
            // RevokedInfo ::= SEQUENCE {
            //    revocationTime              GeneralizedTime,
            //    revocationReason    [0]     EXPLICIT CRLReason OPTIONAL }
            switch (single.Status)
            {
                case OcspCertStatus.Good:
                    w.WriteNull(new Asn1Tag(TagClass.ContextSpecific, 0));
                    break;
                case OcspCertStatus.Revoked:
                    using (w.PushSequence(Ctx1))
                    {
                        DerTime.WriteGeneralizedTime(w, single.RevocationTime!.Value);
                        if (single.Reason is { } reason && reason != CrlReason.Unspecified)
                        {
                            using (w.PushSequence(Ctx0))
                            {
                                w.WriteEnumeratedValue(reason);
                            }
                        }
                    }

                    break;
                default:
                    w.WriteNull(new Asn1Tag(TagClass.ContextSpecific, 2));
                    break;
            }

            DerTime.WriteGeneralizedTime(w, single.ThisUpdate);
            using (w.PushSequence(Ctx0))
            {
                DerTime.WriteGeneralizedTime(w, single.NextUpdate);
            }
        }
    }

    // Extension ::= SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
    private static void WriteExtension(AsnWriter w, string oid, byte[] value)
    {
        using (w.PushSequence())
        {
            w.WriteObjectIdentifier(oid);
            w.WriteOctetString(value);
        }
    }

    private sealed record CacheEntry(long Version, OcspAnswer Answer);
}
