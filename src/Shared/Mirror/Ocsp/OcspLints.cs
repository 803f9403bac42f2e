using OfflinePki.Revocation;

namespace OfflinePki.Ocsp;

/// <summary>The certStatus of one SingleResponse (RFC 6960 §4.2.1).</summary>
public enum OcspCertStatus
{
    /// <summary>good [0] IMPLICIT NULL.</summary>
    Good,
    /// <summary>revoked [1] IMPLICIT RevokedInfo.</summary>
    Revoked,
    /// <summary>unknown [2] IMPLICIT UnknownInfo.</summary>
    Unknown,
}

/// <summary>One SingleResponse before encoding (RFC 6960 §4.2.1).</summary>
/// <param name="CertId">The request's CertID DER, echoed.</param>
/// <param name="Status">certStatus.</param>
/// <param name="RevocationTime">RevokedInfo.revocationTime when revoked.</param>
/// <param name="Reason">RevokedInfo.revocationReason; null or unspecified to omit.</param>
/// <param name="ThisUpdate">thisUpdate.</param>
/// <param name="NextUpdate">nextUpdate.</param>
/// <param name="NeverIssued">True when this "revoked" is the RFC 6960 §2.2 extended answer for a never-issued serial.</param>
public sealed record SingleResponseDraft(byte[] CertId, OcspCertStatus Status, DateTimeOffset? RevocationTime, CrlReason? Reason,
    DateTimeOffset ThisUpdate, DateTimeOffset NextUpdate, bool NeverIssued);

/// <summary>A BasicOCSPResponse's ResponseData before encoding (RFC 6960 §4.2.1).</summary>
/// <param name="ResponderKeyHash">ResponderID byKey: SHA-1 of the responder's subjectPublicKey.</param>
/// <param name="ProducedAt">producedAt.</param>
/// <param name="Responses">SingleResponses, one per request.</param>
/// <param name="NonceExtensionValue">The nonce extnValue to echo, or null.</param>
/// <param name="RequestHadNonce">True when the request asked for a nonce.</param>
/// <param name="ExtendedRevoke">True to include id-pkix-ocsp-extended-revoke (RFC 6960 §4.4.8).</param>
/// <param name="ResponderNotBefore">notBefore of the responder certificate that will be sent.</param>
/// <param name="ResponderNotAfter">notAfter of the responder certificate that will be sent.</param>
public sealed record OcspResponseDraft(byte[] ResponderKeyHash, DateTimeOffset ProducedAt, IReadOnlyList<SingleResponseDraft> Responses,
    byte[]? NonceExtensionValue, bool RequestHadNonce, bool ExtendedRevoke, DateTimeOffset ResponderNotBefore, DateTimeOffset ResponderNotAfter);

/// <summary>One rule an OCSP response must satisfy before it is signed; each cites its RFC section.</summary>
public interface IOcspLint
{
    /// <summary>Short rule name.</summary>
    string Name { get; }

    /// <summary>The RFC section, e.g. "RFC 6960 §4.4.1".</summary>
    string Citation { get; }

    /// <summary>The violation, or null when the draft passes.</summary>
    string? Check(OcspResponseDraft draft);
}

/// <summary>An OCSP response failed a lint and was not signed; answered with internalError.</summary>
public sealed class OcspLintException : Exception
{
    /// <summary>Creates the exception from the failures ("name (citation): message").</summary>
    public OcspLintException(IReadOnlyList<string> failures) : base("OCSP response refused before signing: " + string.Join("; ", failures))
    {
        Failures = failures;
    }

    /// <summary>Each failure.</summary>
    public IReadOnlyList<string> Failures { get; }
}

/// <summary>The standard OCSP response lints.</summary>
public static class OcspLints
{
    /// <summary>All lints.</summary>
    public static IReadOnlyList<IOcspLint> All { get; } =
    [
        new OcspResponsesNotEmpty(),
        new OcspResponderIdIsSha1KeyHash(),
        new OcspThisUpdateNotAfterProducedAt(),
        new OcspNextUpdateAfterThisUpdate(),
        new OcspRevocationTimeNotAfterThisUpdate(),
        new OcspNonceEchoedWhenRequested(),
        new OcspExtendedRevokeWhenNeverIssuedIsRevoked(),
        new OcspResponderCertificateValidAtProducedAt(),
        new OcspNonceLengthWithinRfc8954(),
    ];

    /// <summary>Runs the lints.</summary>
    /// <exception cref="OcspLintException">A lint failed.</exception>
    public static void Enforce(IReadOnlyList<IOcspLint> lints, OcspResponseDraft draft)
    {
        ArgumentNullException.ThrowIfNull(lints);
        ArgumentNullException.ThrowIfNull(draft);
        List<string>? failures = null;
        foreach (var lint in lints)
        {
            if (lint.Check(draft) is { } message)
            {
                (failures ??= []).Add($"{lint.Name} ({lint.Citation}): {message}");
            }
        }

        if (failures is not null)
        {
            throw new OcspLintException(failures);
        }
    }
}

/// <summary>RFC 6960 §4.2.1: a successful response carries at least one SingleResponse, and one per Request (§4.2.2.3 rules aside).</summary>
public sealed class OcspResponsesNotEmpty : IOcspLint
{
    /// <inheritdoc />
    public string Name => "ocsp_responses_not_empty";
    /// <inheritdoc />
    public string Citation => "RFC 6960 §4.2.1";
    /// <inheritdoc />
    public string? Check(OcspResponseDraft draft) => draft?.Responses.Count > 0 ? null : "no SingleResponse";
}

/// <summary>RFC 6960 §4.2.1: KeyHash is the SHA-1 hash of the responder's public key (20 octets).</summary>
public sealed class OcspResponderIdIsSha1KeyHash : IOcspLint
{
    /// <inheritdoc />
    public string Name => "ocsp_responder_id_sha1_key_hash";
    /// <inheritdoc />
    public string Citation => "RFC 6960 §4.2.1";
    /// <inheritdoc />
    public string? Check(OcspResponseDraft draft) => draft?.ResponderKeyHash.Length == 20 ? null : "ResponderID byKey is not a 20-octet SHA-1 hash";
}

/// <summary>RFC 6960 §4.2.2.1: thisUpdate is when the status was known correct, so not after producedAt.</summary>
public sealed class OcspThisUpdateNotAfterProducedAt : IOcspLint
{
    /// <inheritdoc />
    public string Name => "ocsp_this_update_not_after_produced_at";
    /// <inheritdoc />
    public string Citation => "RFC 6960 §4.2.2.1";
    /// <inheritdoc />
    public string? Check(OcspResponseDraft draft)
    {
        ArgumentNullException.ThrowIfNull(draft);
        var bad = draft.Responses.FirstOrDefault(r => r.ThisUpdate > draft.ProducedAt);
        return bad is null ? null : $"thisUpdate {bad.ThisUpdate:O} is after producedAt {draft.ProducedAt:O}";
    }
}

/// <summary>RFC 6960 §4.2.2.1 (and RFC 5019 §2.2.4): nextUpdate, when set, is after thisUpdate.</summary>
public sealed class OcspNextUpdateAfterThisUpdate : IOcspLint
{
    /// <inheritdoc />
    public string Name => "ocsp_next_update_after_this_update";
    /// <inheritdoc />
    public string Citation => "RFC 6960 §4.2.2.1";
    /// <inheritdoc />
    public string? Check(OcspResponseDraft draft)
    {
        ArgumentNullException.ThrowIfNull(draft);
        var bad = draft.Responses.FirstOrDefault(r => r.NextUpdate <= r.ThisUpdate);
        return bad is null ? null : $"nextUpdate {bad.NextUpdate:O} is not after thisUpdate {bad.ThisUpdate:O}";
    }
}

/// <summary>RFC 6960 §4.2.1 RevokedInfo: a revoked answer has a revocationTime, and it is not after thisUpdate.</summary>
public sealed class OcspRevocationTimeNotAfterThisUpdate : IOcspLint
{
    /// <inheritdoc />
    public string Name => "ocsp_revocation_time_not_after_this_update";
    /// <inheritdoc />
    public string Citation => "RFC 6960 §4.2.1";
    /// <inheritdoc />
    public string? Check(OcspResponseDraft draft)
    {
        ArgumentNullException.ThrowIfNull(draft);
        foreach (var r in draft.Responses)
        {
            if (r.Status == OcspCertStatus.Revoked && (r.RevocationTime is null || r.RevocationTime > r.ThisUpdate))
            {
                return $"revoked answer with revocationTime {r.RevocationTime:O} missing or after thisUpdate {r.ThisUpdate:O}";
            }
        }

        return null;
    }
}

/// <summary>RFC 6960 §4.4.1: when the request carries a nonce, the response echoes the same nonce.</summary>
public sealed class OcspNonceEchoedWhenRequested : IOcspLint
{
    /// <inheritdoc />
    public string Name => "ocsp_nonce_echoed_when_requested";
    /// <inheritdoc />
    public string Citation => "RFC 6960 §4.4.1";
    /// <inheritdoc />
    public string? Check(OcspResponseDraft draft)
    {
        ArgumentNullException.ThrowIfNull(draft);
        if (draft.RequestHadNonce && draft.NonceExtensionValue is null)
        {
            return "the request asked for a nonce but the response does not echo one";
        }

        return !draft.RequestHadNonce && draft.NonceExtensionValue is not null ? "the response carries a nonce nobody asked for" : null;
    }
}

/// <summary>
/// RFC 6960 §2.2 and §4.4.8: a responder that answers "revoked" for a never-issued serial (revocationTime
/// 1970-01-01T00:00:00Z, reason certificateHold) MUST include the extended revoke extension.
/// </summary>
public sealed class OcspExtendedRevokeWhenNeverIssuedIsRevoked : IOcspLint
{
    /// <summary>The revocationTime of the RFC 6960 §2.2 never-issued answer.</summary>
    public static readonly DateTimeOffset NeverIssuedRevocationTime = DateTimeOffset.UnixEpoch;

    /// <inheritdoc />
    public string Name => "ocsp_extended_revoke_when_never_issued_revoked";
    /// <inheritdoc />
    public string Citation => "RFC 6960 §2.2, §4.4.8";
    /// <inheritdoc />
    public string? Check(OcspResponseDraft draft)
    {
        ArgumentNullException.ThrowIfNull(draft);
        foreach (var r in draft.Responses)
        {
            if (!r.NeverIssued || r.Status != OcspCertStatus.Revoked)
            {
                continue;
            }

            if (!draft.ExtendedRevoke)
            {
                return "a never-issued serial is answered revoked without id-pkix-ocsp-extended-revoke";
            }

            if (r.RevocationTime != NeverIssuedRevocationTime || r.Reason != CrlReason.CertificateHold)
            {
                return "a never-issued revoked answer must use revocationTime 1970-01-01T00:00:00Z and reason certificateHold";
            }
        }

        return null;
    }
}

/// <summary>
/// RFC 6960 §4.2.2.2 (a client accepts a delegated responder's signature only through a certificate valid now, RFC 5280
/// §6.1.3): the responder certificate is valid at producedAt. A responder whose certificate has lapsed must stop signing.
/// </summary>
public sealed class OcspResponderCertificateValidAtProducedAt : IOcspLint
{
    /// <inheritdoc />
    public string Name => "ocsp_responder_certificate_valid_at_produced_at";
    /// <inheritdoc />
    public string Citation => "RFC 6960 §4.2.2.2";
    /// <inheritdoc />
    public string? Check(OcspResponseDraft draft)
    {
        ArgumentNullException.ThrowIfNull(draft);
        return draft.ProducedAt < draft.ResponderNotBefore || draft.ProducedAt > draft.ResponderNotAfter
            ? $"the responder certificate is valid {draft.ResponderNotBefore:O}..{draft.ResponderNotAfter:O}, not at producedAt {draft.ProducedAt:O}; renew it"
            : null;
    }
}

/// <summary>
/// RFC 8954 §2.1: the echoed nonce is an OCTET STRING of 1 to 32 octets (the extnValue holds its DER), so a response
/// never carries a nonce a conforming client must reject.
/// </summary>
public sealed class OcspNonceLengthWithinRfc8954 : IOcspLint
{
    /// <inheritdoc />
    public string Name => "ocsp_nonce_length_within_rfc8954";
    /// <inheritdoc />
    public string Citation => "RFC 6960 §4.4.1, RFC 8954 §2.1";
    /// <inheritdoc />
    public string? Check(OcspResponseDraft draft)
    {
        ArgumentNullException.ThrowIfNull(draft);
        if (draft.NonceExtensionValue is not { } value)
        {
            return null;
        }

        try
        {
            var r = new System.Formats.Asn1.AsnReader(value, System.Formats.Asn1.AsnEncodingRules.DER);
            var nonce = r.ReadOctetString();
            r.ThrowIfNotEmpty();
            return nonce.Length is >= 1 and <= OcspRequestParser.MaxNonceOctets ? null : $"the nonce is {nonce.Length} octets, not 1..{OcspRequestParser.MaxNonceOctets}";
        }
        catch (System.Formats.Asn1.AsnContentException)
        {
            return "the nonce extnValue is not a DER OCTET STRING";
        }
    }
}
