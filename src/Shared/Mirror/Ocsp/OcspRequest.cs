using System.Formats.Asn1;
using OfflinePki.Asn1;

namespace OfflinePki.Ocsp;

/// <summary>OCSPResponseStatus (RFC 6960 §4.2.1).</summary>
public enum OcspResponseStatus
{
    /// <summary>successful (0): response has valid confirmations.</summary>
    Successful = 0,
    /// <summary>malformedRequest (1): illegal confirmation request.</summary>
    MalformedRequest = 1,
    /// <summary>internalError (2): internal error in issuer.</summary>
    InternalError = 2,
    /// <summary>tryLater (3): try again later.</summary>
    TryLater = 3,
    /// <summary>sigRequired (5): must sign the request.</summary>
    SigRequired = 5,
    /// <summary>unauthorized (6): request unauthorized (RFC 5019 §2.2.3: the responder is not authoritative for the issuer).</summary>
    Unauthorized = 6,
}

/// <summary>One CertID (RFC 6960 §4.1.1) as received.</summary>
/// <param name="Encoded">The DER of the whole CertID, echoed verbatim in the SingleResponse.</param>
/// <param name="HashAlgorithm">hashAlgorithm OID (SHA-1 or SHA-256 in practice).</param>
/// <param name="IssuerNameHash">issuerNameHash.</param>
/// <param name="IssuerKeyHash">issuerKeyHash.</param>
/// <param name="Serial">serialNumber INTEGER content octets, as encoded (may be negative or over-long: such a serial was never issued).</param>
public sealed record OcspCertId(byte[] Encoded, string HashAlgorithm, byte[] IssuerNameHash, byte[] IssuerKeyHash, byte[] Serial);

/// <summary>A parsed OCSPRequest (RFC 6960 §4.1.1).</summary>
/// <param name="CertIds">The reqCert of each Request, in order; at least one.</param>
/// <param name="NonceExtensionValue">The DER inside the nonce extension's extnValue (an OCTET STRING of 1..32 octets, RFC 8954), to echo; null when no nonce was asked.</param>
public sealed record OcspRequest(IReadOnlyList<OcspCertId> CertIds, byte[]? NonceExtensionValue);

/// <summary>The request is not a valid OCSPRequest; answered with malformedRequest (1).</summary>
public sealed class OcspMalformedRequestException : Exception
{
    /// <summary>Creates the exception; <paramref name="message"/> says what is wrong.</summary>
    public OcspMalformedRequestException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>Parses DER OCSPRequest messages (RFC 6960 §4.1.1) with <see cref="AsnReader"/>.</summary>
public static class OcspRequestParser
{
    /// <summary>At most this many Requests in one OCSPRequest.</summary>
    public const int MaxRequests = 64;

    /// <summary>Longest nonce accepted, in octets (RFC 8954 §2.1).</summary>
    public const int MaxNonceOctets = 32;

    private static readonly Asn1Tag Ctx0 = new(TagClass.ContextSpecific, 0, isConstructed: true);
    private static readonly Asn1Tag Ctx1 = new(TagClass.ContextSpecific, 1, isConstructed: true);
    private static readonly Asn1Tag Ctx2 = new(TagClass.ContextSpecific, 2, isConstructed: true);

    /// <summary>
    /// Decodes the request part of an RFC 6960 Appendix A.1 GET URL ("{url}/{url-encoding of base-64 encoding of the DER
    /// OCSPRequest}"): percent-decoding, then base64 (a '+' that arrived as a space is restored).
    /// </summary>
    /// <param name="encoded">The path segment after "/ocsp/", as received (still percent-encoded).</param>
    /// <returns>The DER bytes, for <see cref="Parse"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="encoded"/> is null.</exception>
    /// <exception cref="OcspMalformedRequestException">The segment is not base64 after percent-decoding.</exception>
    public static byte[] DecodeGetPath(string encoded)
    {
        ArgumentNullException.ThrowIfNull(encoded);
        try
        {
            return Convert.FromBase64String(Uri.UnescapeDataString(encoded).Replace(' ', '+'));
        }
        catch (FormatException ex)
        {
            throw new OcspMalformedRequestException("the GET request is not base64 of a DER OCSPRequest (RFC 6960 Appendix A.1)", ex);
        }
    }

    /// <summary>Parses one OCSPRequest.</summary>
    /// <param name="der">The DER request body.</param>
    /// <exception cref="OcspMalformedRequestException">Not DER, not an OCSPRequest, no Requests or more than <see cref="MaxRequests"/>, a version other than v1, a nonce that is not an OCTET STRING of 1..32 octets, an extension repeated in one Extensions (RFC 5280 §4.2), or an unknown critical request or single-request extension (RFC 6960 §4.1.2).</exception>
    public static OcspRequest Parse(ReadOnlyMemory<byte> der)
    {
        try
        {
            return ParseCore(der);
        }
        catch (AsnContentException ex)
        {
            throw new OcspMalformedRequestException("request is not a DER OCSPRequest: " + ex.Message, ex);
        }
        catch (ArgumentException ex)
        {
            throw new OcspMalformedRequestException("request is not a DER OCSPRequest: " + ex.Message, ex);
        }
    }

    private static OcspRequest ParseCore(ReadOnlyMemory<byte> der)
    {
        // OCSPRequest ::= SEQUENCE {
        //     tbsRequest              TBSRequest,
        //     optionalSignature   [0] EXPLICIT Signature OPTIONAL }
        var outer = new AsnReader(der, AsnEncodingRules.DER);
        var request = outer.ReadSequence();
        outer.ThrowIfNotEmpty();

        // TBSRequest ::= SEQUENCE {
        //     version             [0] EXPLICIT Version DEFAULT v1,
        //     requestorName       [1] EXPLICIT GeneralName OPTIONAL,
        //     requestList             SEQUENCE OF Request,
        //     requestExtensions   [2] EXPLICIT Extensions OPTIONAL }
        var tbs = request.ReadSequence();
        if (tbs.HasData && tbs.PeekTag() == Ctx0)
        {
            var v = tbs.ReadSequence(Ctx0);
            if (!v.TryReadInt32(out int version) || version != 0)
            {
                throw new OcspMalformedRequestException("TBSRequest version is not v1 (0)");
            }

            v.ThrowIfNotEmpty();
        }

        if (tbs.HasData && tbs.PeekTag() == Ctx1)
        {
            tbs.ReadEncodedValue(); // requestorName: not used (requests need not be signed)
        }

        var list = tbs.ReadSequence();
        var certIds = new List<OcspCertId>();
        while (list.HasData)
        {
            if (certIds.Count == MaxRequests)
            {
                throw new OcspMalformedRequestException($"more than {MaxRequests} Requests in one OCSPRequest");
            }

            // Request ::= SEQUENCE {
            //     reqCert                     CertID,
            //     singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
            var single = list.ReadSequence();
            certIds.Add(ReadCertId(single));
            if (single.HasData)
            {
                ReadExtensions(single, "singleRequestExtensions", KnownSingleExtensions);
            }

            single.ThrowIfNotEmpty();
        }

        if (certIds.Count == 0)
        {
            throw new OcspMalformedRequestException("requestList is empty");
        }

        byte[]? nonce = null;
        if (tbs.HasData && tbs.PeekTag() == Ctx2)
        {
            var extensions = ReadExtensions(tbs, "requestExtensions", KnownRequestExtensions, Ctx2);
            if (extensions.TryGetValue(Oids.OcspNonce, out var value))
            {
                nonce = CheckNonce(value);
            }
        }

        tbs.ThrowIfNotEmpty();
        if (request.HasData)
        {
            request.ReadSequence(Ctx0); // optionalSignature: accepted, not required, not checked
        }

        request.ThrowIfNotEmpty();
        return new OcspRequest(certIds, nonce);
    }

    // Extensions this responder understands (RFC 6960 §4.4): the nonce (§4.4.1) and acceptable responses (§4.4.3; only
    // basic responses are produced). None for a single Request.
    private static readonly HashSet<string> KnownRequestExtensions = [Oids.OcspNonce, "1.3.6.1.5.5.7.48.1.4"];
    private static readonly HashSet<string> KnownSingleExtensions = [];

    /// <summary>
    /// Reads <c>[n] EXPLICIT Extensions</c> (RFC 5280 §4.1: Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension).
    /// An extension that appears twice (RFC 5280 §4.2: "MUST NOT include more than one instance of a particular
    /// extension") or an unknown critical one (RFC 6960 §4.1.2, RFC 5280 §4.2: a critical extension that is not
    /// recognised must not be ignored) makes the request malformed.
    /// </summary>
    /// <returns>extnID → extnValue.</returns>
    private static Dictionary<string, byte[]> ReadExtensions(AsnReader parent, string where, HashSet<string> known, Asn1Tag? tag = null)
    {
        var explicitExt = parent.ReadSequence(tag ?? Ctx0);
        var exts = explicitExt.ReadSequence();
        explicitExt.ThrowIfNotEmpty();
        var seen = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        while (exts.HasData)
        {
            // Extension ::= SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
            var ext = exts.ReadSequence();
            var oid = ext.ReadObjectIdentifier();
            bool critical = ext.PeekTag().HasSameClassAndValue(Asn1Tag.Boolean) && ext.ReadBoolean();
            var value = ext.ReadOctetString();
            ext.ThrowIfNotEmpty();
            if (!seen.TryAdd(oid, value))
            {
                throw new OcspMalformedRequestException($"extension {oid} appears more than once in {where} (RFC 5280 §4.2)");
            }

            if (critical && !known.Contains(oid))
            {
                throw new OcspMalformedRequestException($"unknown critical extension {oid} in {where} (RFC 6960 §4.1.2)");
            }
        }

        return seen;
    }

    private static OcspCertId ReadCertId(AsnReader single)
    {
        // CertID ::= SEQUENCE {
        //     hashAlgorithm       AlgorithmIdentifier,
        //     issuerNameHash      OCTET STRING, -- Hash of issuer's DN
        //     issuerKeyHash       OCTET STRING, -- Hash of issuer's public key
        //     serialNumber        CertificateSerialNumber }
        var encoded = single.PeekEncodedValue().ToArray();
        var certId = single.ReadSequence();
        var alg = certId.ReadSequence();
        var hashOid = alg.ReadObjectIdentifier();
        if (alg.HasData)
        {
            alg.ReadNull();
        }

        alg.ThrowIfNotEmpty();
        var nameHash = certId.ReadOctetString();
        var keyHash = certId.ReadOctetString();
        var serial = certId.ReadIntegerBytes().ToArray();
        certId.ThrowIfNotEmpty();
        return new OcspCertId(encoded, hashOid, nameHash, keyHash, serial);
    }

    // Nonce ::= OCTET STRING(SIZE(1..32))   (RFC 8954 §2.1)
    private static byte[] CheckNonce(byte[] extnValue)
    {
        byte[] inner;
        try
        {
            var r = new AsnReader(extnValue, AsnEncodingRules.DER);
            inner = r.ReadOctetString();
            r.ThrowIfNotEmpty();
        }
        catch (AsnContentException ex)
        {
            throw new OcspMalformedRequestException("the nonce extension value is not a DER OCTET STRING (RFC 6960 §4.4.1)", ex);
        }

        if (inner.Length is < 1 or > MaxNonceOctets)
        {
            throw new OcspMalformedRequestException($"the nonce is {inner.Length} octets; RFC 8954 §2.1 allows 1 to {MaxNonceOctets}");
        }

        return extnValue;
    }
}
