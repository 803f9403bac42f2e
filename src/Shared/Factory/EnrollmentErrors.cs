namespace OfflinePki.Factory;

/// <summary>Why an enrollment request was refused. Each value maps to one HTTP status in the EST front end.</summary>
public enum EnrollmentError
{
    /// <summary>The body is not base64 (or PEM) text (RFC 7030 §4.2.1). HTTP 400.</summary>
    MalformedBody,
    /// <summary>The decoded bytes are not a DER PKCS#10 CertificationRequest (RFC 2986 §4). HTTP 400.</summary>
    MalformedCsr,
    /// <summary>The CSR signature does not verify with its own public key (proof of possession, RFC 2986 §3). HTTP 400.</summary>
    ProofOfPossessionFailed,
    /// <summary>The CSR signature algorithm is not one the factory accepts. HTTP 400.</summary>
    SignatureAlgorithmNotAllowed,
    /// <summary>The subject public key is of a type or size the profile does not allow. HTTP 400.</summary>
    KeyNotAllowed,
    /// <summary>The CSR subject has no serialNumber (2.5.4.5) attribute, or more than one. HTTP 400.</summary>
    DeviceIdMissing,
    /// <summary>The device serial does not match the configured pattern or is not a PrintableString. HTTP 400.</summary>
    DeviceIdInvalid,
    /// <summary>The station is listed but not authorised for the requested profile. HTTP 403.</summary>
    StationNotAuthorizedForProfile,
    /// <summary>The operator id is too long or holds characters outside printable ASCII. HTTP 400.</summary>
    OperatorIdInvalid,
    /// <summary>The station is suspended by policy (FactoryCa:Stations[i]:Suspended). HTTP 403.</summary>
    StationSuspended,
    /// <summary>The station's certificate was revoked locally on the factory. HTTP 403.</summary>
    StationCertificateRevoked,
    /// <summary>The station exceeded its rate limit. HTTP 429 with Retry-After.</summary>
    StationRateLimited,
    /// <summary>The station may not use the requested order. HTTP 403.</summary>
    StationNotAuthorizedForOrder,
    /// <summary>serverkeygen (RFC 7030 §4.4) asked by a station without AllowServerKeyGen (FactoryCa:Stations[i]). HTTP 403.</summary>
    StationNotAuthorizedForServerKeyGen,
    /// <summary>No profile of that name, or the EST label is unknown (RFC 7030 §3.2.2). HTTP 404.</summary>
    ProfileUnknown,
    /// <summary>No accepted production order has that id, or a profile that needs an order got none. HTTP 400.</summary>
    OrderUnknown,
    /// <summary>The order is outside its validity window. HTTP 403.</summary>
    OrderNotValidNow,
    /// <summary>The order's quantity is used up. HTTP 409.</summary>
    OrderExhausted,
    /// <summary>The device ID is outside the order's allowed range or pattern. HTTP 400.</summary>
    DeviceIdOutsideOrder,
    /// <summary>The device ID's check digit is wrong (ISO 7064 or Luhn, per profile). HTTP 400.</summary>
    DeviceIdCheckDigit,
    /// <summary>The device already holds an active IDevID and the request is not a rework or refurb. HTTP 409.</summary>
    DeviceAlreadyEnrolled,
    /// <summary>A rework was asked for outside the order's rework window, or for a device with nothing to supersede. HTTP 409.</summary>
    ReworkNotAllowed,
    /// <summary>The public key was already certified for another device ID (a cloned key). HTTP 409; journaled as a refusal.</summary>
    DuplicatePublicKey,
    /// <summary>simplereenroll: the CSR does not match the current certificate (RFC 7030 §4.2.2). HTTP 400.</summary>
    ReenrollMismatch,
    /// <summary>The request asked for something this factory does not offer (e.g. serverkeygen off). HTTP 400.</summary>
    NotSupported,
    /// <summary>The named production order is for another certificate profile than the request. HTTP 400.</summary>
    OrderProfileMismatch,
}

/// <summary>
/// An enrollment request was refused because of its content. Nothing is signed and nothing is journaled.
/// The message says what was wrong and what is allowed; it never carries key material.
/// </summary>
public sealed class EnrollmentRejectedException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="code">The rule that refused the request.</param>
    /// <param name="message">A human-readable reason, safe to return to the station.</param>
    /// <param name="report">True when the refusal must be journaled as an EnrollmentRefused entry so the OEM sees it (e.g. a cloned key).</param>
    public EnrollmentRejectedException(EnrollmentError code, string message, bool report = false) : base(message)
    {
        Code = code;
        Report = report;
    }

    /// <summary>The rule that refused the request.</summary>
    public EnrollmentError Code { get; }

    /// <summary>True when <c>EnrollmentService</c> journals the refusal (EnrollmentRefused) before answering.</summary>
    public bool Report { get; }

    /// <summary>How long the caller should wait before trying again (e.g. a rate limit), or null; sent as HTTP Retry-After.</summary>
    public TimeSpan? RetryAfter { get; init; }
}

/// <summary>
/// The factory cannot issue now (journal or signing key unavailable). Issuance fails closed: no certificate is
/// returned. The EST front end maps this to HTTP 503 with Retry-After.
/// </summary>
public sealed class EnrollmentUnavailableException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">The reason, naming the failing component; never secrets.</param>
    /// <param name="inner">The underlying failure.</param>
    public EnrollmentUnavailableException(string message, Exception? inner = null) : base(message, inner) { }
}
