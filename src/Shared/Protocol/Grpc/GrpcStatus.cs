namespace OfflinePki.Sync.Grpc;

/// <summary>
/// The 17 standard gRPC status codes, carried in the <c>grpc-status</c> trailer as a decimal number
/// (gRPC over HTTP/2, PROTOCOL-HTTP2.md; codes from doc/statuscodes.md).
/// </summary>
public enum GrpcStatusCode
{
    /// <summary>Not an error; returned on success.</summary>
    OK = 0,
    /// <summary>The operation was cancelled, typically by the caller.</summary>
    Cancelled = 1,
    /// <summary>Unknown error, e.g. a status from another address space that cannot be mapped.</summary>
    Unknown = 2,
    /// <summary>The client specified an invalid argument.</summary>
    InvalidArgument = 3,
    /// <summary>The deadline expired before the operation could complete.</summary>
    DeadlineExceeded = 4,
    /// <summary>A requested entity was not found.</summary>
    NotFound = 5,
    /// <summary>The entity a client tried to create already exists.</summary>
    AlreadyExists = 6,
    /// <summary>The caller is identified but may not execute the operation.</summary>
    PermissionDenied = 7,
    /// <summary>A resource (e.g. the maximum message size) has been exhausted.</summary>
    ResourceExhausted = 8,
    /// <summary>The system is not in a state required for the operation (e.g. a journal fork).</summary>
    FailedPrecondition = 9,
    /// <summary>The operation was aborted, typically due to a concurrency issue.</summary>
    Aborted = 10,
    /// <summary>The operation was attempted past the valid range.</summary>
    OutOfRange = 11,
    /// <summary>The operation is not implemented or not supported (e.g. a compressed message).</summary>
    Unimplemented = 12,
    /// <summary>Internal error: an invariant expected by the system is broken.</summary>
    Internal = 13,
    /// <summary>The service is currently unavailable; usually transient, retry with backoff.</summary>
    Unavailable = 14,
    /// <summary>Unrecoverable data loss or corruption.</summary>
    DataLoss = 15,
    /// <summary>The request lacks valid authentication credentials (e.g. no client certificate).</summary>
    Unauthenticated = 16,
}

/// <summary>
/// A call ended with a non-OK gRPC status. Thrown by <see cref="GrpcClient"/> for a non-OK response, and
/// thrown by server handlers to answer with a specific status. The message travels in the
/// <c>grpc-message</c> trailer (percent-encoded, see <see cref="GrpcMessageEncoding"/>), so it must never
/// carry secrets.
/// </summary>
public sealed class GrpcException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="statusCode">The status; <see cref="GrpcStatusCode.OK"/> is not an error and is refused.</param>
    /// <param name="message">Human-readable detail that says what to do; no secrets.</param>
    /// <param name="inner">Optional cause (never sent to the peer).</param>
    /// <exception cref="ArgumentException"><paramref name="statusCode"/> is <see cref="GrpcStatusCode.OK"/>.</exception>
    public GrpcException(GrpcStatusCode statusCode, string message, Exception? inner = null)
        : base(message, inner)
    {
        if (statusCode == GrpcStatusCode.OK)
        {
            throw new ArgumentException("OK is not an error status.", nameof(statusCode));
        }

        StatusCode = statusCode;
    }

    /// <summary>The gRPC status code.</summary>
    public GrpcStatusCode StatusCode { get; }

    /// <summary>The status detail (same as <see cref="Exception.Message"/>).</summary>
    public string Detail => Message;

    /// <inheritdoc />
    public override string ToString() => $"gRPC {StatusCode}: {Message}";
}

/// <summary>Helpers for the gRPC status names used on the wire and in logs.</summary>
public static class GrpcStatus
{
    /// <summary>
    /// The canonical upper-case name of a code, e.g. "FAILED_PRECONDITION" (as grpcio and grpc-go print them).
    /// </summary>
    public static string CanonicalName(GrpcStatusCode code) => code switch
    {
        GrpcStatusCode.OK => "OK",
        GrpcStatusCode.Cancelled => "CANCELLED",
        GrpcStatusCode.Unknown => "UNKNOWN",
        GrpcStatusCode.InvalidArgument => "INVALID_ARGUMENT",
        GrpcStatusCode.DeadlineExceeded => "DEADLINE_EXCEEDED",
        GrpcStatusCode.NotFound => "NOT_FOUND",
        GrpcStatusCode.AlreadyExists => "ALREADY_EXISTS",
        GrpcStatusCode.PermissionDenied => "PERMISSION_DENIED",
        GrpcStatusCode.ResourceExhausted => "RESOURCE_EXHAUSTED",
        GrpcStatusCode.FailedPrecondition => "FAILED_PRECONDITION",
        GrpcStatusCode.Aborted => "ABORTED",
        GrpcStatusCode.OutOfRange => "OUT_OF_RANGE",
        GrpcStatusCode.Unimplemented => "UNIMPLEMENTED",
        GrpcStatusCode.Internal => "INTERNAL",
        GrpcStatusCode.Unavailable => "UNAVAILABLE",
        GrpcStatusCode.DataLoss => "DATA_LOSS",
        GrpcStatusCode.Unauthenticated => "UNAUTHENTICATED",
        _ => ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// Parses a <c>grpc-status</c> value (a decimal number). Unknown or malformed values map to
    /// <see cref="GrpcStatusCode.Unknown"/> (gRPC over HTTP/2, PROTOCOL-HTTP2.md).
    /// </summary>
    public static GrpcStatusCode Parse(string? value)
    {
        if (value is not null
            && int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n)
            && n is >= 0 and <= 16)
        {
            return (GrpcStatusCode)n;
        }

        return GrpcStatusCode.Unknown;
    }

    /// <summary>
    /// The gRPC status for an HTTP status other than 200 on a gRPC call (doc/http-grpc-status-mapping.md):
    /// 400 INTERNAL, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED,
    /// 429/502/503/504 UNAVAILABLE, anything else UNKNOWN.
    /// </summary>
    public static GrpcStatusCode FromHttpStatus(int httpStatus) => httpStatus switch
    {
        400 => GrpcStatusCode.Internal,
        401 => GrpcStatusCode.Unauthenticated,
        403 => GrpcStatusCode.PermissionDenied,
        404 => GrpcStatusCode.Unimplemented,
        429 or 502 or 503 or 504 => GrpcStatusCode.Unavailable,
        _ => GrpcStatusCode.Unknown,
    };
}
