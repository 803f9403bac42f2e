using System.Security.Cryptography.X509Certificates;
using OfflinePki.Journal.V1;
using OfflinePki.Factory;

namespace OfflinePki.Policy;

/// <summary>
/// One enrollment as the station asked for it, before any check. Built by the EST front end (or the batch signer)
/// and handed to <c>EnrollAsync</c>.
/// </summary>
/// <param name="Station">The authenticated station (see <see cref="IStationAuthorizer"/>).</param>
/// <param name="Body">The RFC 7030 §4.2.1 body: base64 (or PEM) PKCS#10.</param>
public sealed record EnrollmentRequest(StationIdentity Station, ReadOnlyMemory<byte> Body)
{
    /// <summary>Operator id (≤ 64 printable ASCII characters), journaled; never a secret. From the X-Operator-Id header.</summary>
    public string? OperatorId { get; init; }

    /// <summary>The EST label of the request path (RFC 7030 §3.2.2), or null for the unlabelled path.</summary>
    public string? Label { get; init; }

    /// <summary>The profile asked for (by label or configuration), or null for the factory's default profile.</summary>
    public string? ProfileName { get; init; }

    /// <summary>The production order id the certificate is to consume (X-Order-Id header or the label), or null.</summary>
    public string? OrderId { get; init; }

    /// <summary>Why the certificate is wanted: initial, rework or refurb (X-Issuance-Kind header), or reenroll.</summary>
    public IssuanceKind Kind { get; init; } = IssuanceKind.Initial;

    /// <summary>The device MAC address as the station read it (X-Device-Mac header), journaled; optional.</summary>
    public string? MacAddress { get; init; }

    /// <summary>simplereenroll (RFC 7030 §4.2.2): the device's current certificate, presented in the TLS handshake.</summary>
    public X509Certificate2? CurrentCertificate { get; init; }

    /// <summary>
    /// Refurb with a new identity (FactoryCa:Refurb:Mode = NewIdentity): the returned unit's old device ID, whose active
    /// certificate the new one supersedes (X-Previous-Device-Id header); null otherwise.
    /// </summary>
    public string? PreviousDeviceId { get; init; }

    /// <summary>serverkeygen (RFC 7030 §4.4): FactoryCa generates the key pair; the journal records it.</summary>
    public bool ServerGeneratedKey { get; init; }
}

/// <summary>
/// What the policies see of an enrollment once the CSR has been decoded and checked (proof of possession, key
/// type, device ID syntax). Immutable.
/// </summary>
/// <param name="Request">The request as received.</param>
/// <param name="DeviceId">The device serial from the CSR subject serialNumber (2.5.4.5).</param>
/// <param name="ProfileName">The profile the certificate will follow.</param>
/// <param name="SubjectPublicKeyInfo">DER SubjectPublicKeyInfo of the device key.</param>
/// <param name="PublicKeySha256">SHA-256 of <paramref name="SubjectPublicKeyInfo"/> (32 bytes).</param>
/// <param name="Now">The time the enrollment is decided at (from the injected <see cref="TimeProvider"/>).</param>
public sealed record EnrollmentContext(EnrollmentRequest Request, string DeviceId, string ProfileName, byte[] SubjectPublicKeyInfo,
    byte[] PublicKeySha256, DateTimeOffset Now)
{
    /// <summary>The station.</summary>
    public StationIdentity Station => Request.Station;
}

/// <summary>
/// A rule of the registration authority, consulted for every enrollment after the CSR checks and before signing
/// (station limits, production orders and quotas, device-ID rules, one active IDevID per device, cloned keys).
/// Policies run in registration order; the first refusal wins and every earlier admission is released.
/// </summary>
public interface IEnrollmentPolicy
{
    /// <summary>Decides the enrollment. Must be fast and must not block on I/O.</summary>
    /// <param name="context">The enrollment.</param>
    /// <returns>An admission that holds whatever the rule reserved (e.g. one unit of an order's quantity).</returns>
    /// <exception cref="EnrollmentRejectedException">The rule refuses; nothing is reserved.</exception>
    IEnrollmentAdmission Admit(EnrollmentContext context);
}

/// <summary>
/// A policy's yes, holding a reservation until the certificate is durable in the journal (<see cref="Commit"/>) or
/// the enrollment fails (<see cref="IDisposable.Dispose"/> without a commit releases it). Reservations make quotas
/// and uniqueness atomic across concurrent stations; the journal makes them survive a crash.
/// </summary>
public interface IEnrollmentAdmission : IDisposable
{
    /// <summary>Adds the rule's facts to the journal payload before it is appended (e.g. the order id, the superseded serial).</summary>
    /// <param name="payload">The CertificateIssued payload being built.</param>
    void Annotate(CertificateIssued payload);

    /// <summary>The certificate is durable in the journal at <paramref name="seq"/>: make the reservation permanent.</summary>
    /// <param name="payload">The payload as journaled.</param>
    /// <param name="seq">Its journal seq.</param>
    void Commit(CertificateIssued payload, ulong seq);
}

/// <summary>An admission that reserves nothing, for rules that only say yes or no.</summary>
public sealed class NoReservation : IEnrollmentAdmission
{
    /// <summary>The shared instance.</summary>
    public static NoReservation Instance { get; } = new();

    private NoReservation() { }

    /// <inheritdoc />
    public void Annotate(CertificateIssued payload) { }

    /// <inheritdoc />
    public void Commit(CertificateIssued payload, ulong seq) { }

    /// <inheritdoc />
    public void Dispose() { }
}
