using Google.Protobuf;
using Microsoft.Extensions.Logging;
using OfflinePki.Issuance;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Keys;
using OfflinePki.Policy;

namespace OfflinePki.Enrollment;

/// <summary>A certificate that is durable in the journal and may be handed to the station.</summary>
/// <param name="Certificate">DER of the device certificate.</param>
/// <param name="Chain">DER of the issuing CA, then the certificates above it (root last).</param>
/// <param name="DeviceId">The device serial.</param>
/// <param name="SerialHex">Upper-case hex certificate serial.</param>
/// <param name="Sha256Fingerprint">Lower-case hex SHA-256 of <paramref name="Certificate"/>.</param>
/// <param name="JournalSeq">Seq of the CertificateIssued entry.</param>
public sealed record EnrollmentResult(byte[] Certificate, IReadOnlyList<byte[]> Chain, string DeviceId, string SerialHex, string Sha256Fingerprint, ulong JournalSeq);

/// <summary>Enrolls devices on behalf of stations; transport-free (the EST front end calls it).</summary>
public interface IEnrollmentService
{
    /// <summary>
    /// Decodes and checks the CSR, issues the certificate, journals it (durably), and only then returns it.
    /// Nothing is journaled for refused input.
    /// </summary>
    /// <param name="station">The authenticated station (see <see cref="IStationAuthorizer"/>).</param>
    /// <param name="body">The RFC 7030 §4.2.1 body: base64 (or PEM) PKCS#10.</param>
    /// <param name="operatorId">Optional operator id (≤ 64 printable ASCII characters), journaled; never a secret.</param>
    /// <param name="cancellationToken">Cancels waiting for the journal; an entry may still become durable.</param>
    /// <returns>The durable certificate and its chain.</returns>
    /// <exception cref="EnrollmentRejectedException">Bad input (body, CSR, key, signature, device ID, operator id), or a station not authorised for the profile.</exception>
    /// <exception cref="EnrollmentUnavailableException">The journal or the CA key is unavailable (fail closed).</exception>
    /// <exception cref="CertificateLintException">The profile produced a certificate that breaks a lint (a factory defect).</exception>
    Task<EnrollmentResult> EnrollAsync(StationIdentity station, ReadOnlyMemory<byte> body, string? operatorId, CancellationToken cancellationToken);
}

/// <summary>The default <see cref="IEnrollmentService"/>: intake → issue (prepare, lint, sign) → journal → return.</summary>
public sealed partial class EnrollmentService : IEnrollmentService
{
    /// <summary>Longest operator id accepted, in characters.</summary>
    public const int MaxOperatorIdLength = 64;

    private readonly CsrIntake _intake;
    private readonly ICertificateIssuer _issuer;
    private readonly IJournalAppender _journal;
    private readonly IIssuedSerialsRecorder? _recorder;
    private readonly IIssuanceGate? _gate;
    private readonly ILogger<EnrollmentService> _log;
    private readonly IReadOnlyList<byte[]> _chain;

    /// <summary>Creates the service.</summary>
    /// <param name="issuer">Issues certificates; its profile supplies the device-ID pattern.</param>
    /// <param name="journal">Durable journal.</param>
    /// <param name="logger">Logger (station id, device id, serial and fingerprint only).</param>
    /// <param name="recorder">Told about each journaled serial; may be null.</param>
    /// <param name="gate">Consulted before each signature (bounded divergence); may be null.</param>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    public EnrollmentService(ICertificateIssuer issuer, IJournalAppender journal, ILogger<EnrollmentService> logger, IIssuedSerialsRecorder? recorder = null,
        IIssuanceGate? gate = null)
    {
        ArgumentNullException.ThrowIfNull(issuer);
        ArgumentNullException.ThrowIfNull(journal);
        ArgumentNullException.ThrowIfNull(logger);
        _issuer = issuer;
        _intake = new CsrIntake(issuer.Profile.DeviceIdPattern);
        _journal = journal;
        _log = logger;
        _recorder = recorder;
        _gate = gate;
        _chain = [issuer.Authority.Certificate.RawData, .. issuer.Authority.ChainAboveIssuer.Select(c => c.RawData)];
    }

    /// <inheritdoc />
    public async Task<EnrollmentResult> EnrollAsync(StationIdentity station, ReadOnlyMemory<byte> body, string? operatorId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(station);
        try
        {
            CheckOperatorId(operatorId);
            if (!station.MayRequest(_issuer.Profile.Name))
            {
                throw new EnrollmentRejectedException(EnrollmentError.StationNotAuthorizedForProfile,
                    $"station CN={station.SubjectCn} is not authorised for profile {_issuer.Profile.Name} (FactoryCa:Stations, Id {station.Id}: Profiles)");
            }

            var csr = _intake.Validate(CsrIntake.DecodeBody(body.Span));
            IssuedCertificate issued;
            try
            {
                _gate?.EnsureOpen();
                issued = _issuer.Issue(new IssuanceRequest(csr.DeviceId, csr.SubjectPublicKeyInfo));
            }
            catch (SigningKeyUnavailableException ex)
            {
                LogUnavailable(station.Id, ex.Message);
                throw new EnrollmentUnavailableException("issuing CA key unavailable: " + ex.Message, ex);
            }

            var payload = new CertificateIssued
            {
                Certificate = ByteString.CopyFrom(issued.Der),
                DeviceId = csr.DeviceId,
                StationId = station.Id,
                OperatorId = operatorId ?? string.Empty,
                CsrSha256 = ByteString.CopyFrom(csr.Sha256),
                Profile = _issuer.Profile.Name,
            };

            JournalEntry entry;
            try
            {
                entry = await _journal.AppendAsync(EntryType.CertificateIssued, payload, cancellationToken).ConfigureAwait(false);
            }
            catch (JournalUnavailableException ex)
            {
                LogUnavailable(station.Id, ex.Message);
                throw new EnrollmentUnavailableException("journal unavailable: " + ex.Message, ex);
            }

            _recorder?.Record(issued.Serial);
            LogIssued(station.Id, csr.DeviceId, issued.SerialHex, issued.Sha256Fingerprint, csr.KeyDescription, entry.Seq);
            return new EnrollmentResult(issued.Der, _chain, csr.DeviceId, issued.SerialHex, issued.Sha256Fingerprint, entry.Seq);
        }
        catch (EnrollmentRejectedException ex)
        {
            LogRejected(station.Id, ex.Code, ex.Message);
            throw;
        }
        catch (CertificateLintException ex)
        {
            LogLint(station.Id, ex.Message);
            throw;
        }
    }

    private static void CheckOperatorId(string? operatorId)
    {
        if (operatorId is null)
        {
            return;
        }

        if (operatorId.Length > MaxOperatorIdLength || operatorId.Any(c => c is < (char)0x20 or > (char)0x7E))
        {
            throw new EnrollmentRejectedException(EnrollmentError.OperatorIdInvalid,
                $"operator id must be at most {MaxOperatorIdLength} printable ASCII characters");
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information,
        Message = "issued device certificate: station={StationId} device={DeviceId} serial={SerialHex} sha256={Fingerprint} key={KeyType} journal_seq={Seq}")]
    private partial void LogIssued(string stationId, string deviceId, string serialHex, string fingerprint, string keyType, ulong seq);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "enrollment refused: station={StationId} code={Code} reason={Reason}")]
    private partial void LogRejected(string stationId, EnrollmentError code, string reason);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "enrollment unavailable (fail closed): station={StationId} reason={Reason}")]
    private partial void LogUnavailable(string stationId, string reason);

    [LoggerMessage(EventId = 4, Level = LogLevel.Critical, Message = "certificate lint failed, nothing signed: station={StationId} {Detail}")]
    private partial void LogLint(string stationId, string detail);
}
