namespace OfflinePki.Enrollment;

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
    public EnrollmentRejectedException(EnrollmentError code, string message) : base(message)
    {
        Code = code;
    }

    /// <summary>The rule that refused the request.</summary>
    public EnrollmentError Code { get; }
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
