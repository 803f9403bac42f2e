using Google.Protobuf;
using Microsoft.Extensions.Logging;
using OfflinePki.Asn1;
using OfflinePki.Issuance;
using OfflinePki.Journal;
using OfflinePki.Journal.V1;
using OfflinePki.Keys;
using OfflinePki.Policy;
using OfflinePki.Factory;

namespace OfflinePki.Enrollment;

/// <summary>A certificate that is durable in the journal and may be handed to the station.</summary>
/// <param name="Certificate">DER of the device certificate.</param>
/// <param name="Chain">DER of the issuing CA, then the certificates above it (root last).</param>
/// <param name="DeviceId">The device serial.</param>
/// <param name="SerialHex">Upper-case hex certificate serial.</param>
/// <param name="Sha256Fingerprint">Lower-case hex SHA-256 of <paramref name="Certificate"/>.</param>
/// <param name="JournalSeq">Seq of the CertificateIssued entry.</param>
public sealed record EnrollmentResult(byte[] Certificate, IReadOnlyList<byte[]> Chain, string DeviceId, string SerialHex, string Sha256Fingerprint, ulong JournalSeq)
{
    /// <summary>
    /// serverkeygen only (RFC 7030 §4.4.2): the generated private key as unencrypted PKCS#8 DER, for the caller to send
    /// over TLS and then clear (<see cref="Array.Clear(Array)"/>). Never logged or journaled. Null otherwise.
    /// </summary>
    public byte[]? PrivateKeyPkcs8 { get; init; }

    /// <summary>The profile the certificate follows.</summary>
    public string Profile { get; init; } = string.Empty;
}

/// <summary>Enrolls devices on behalf of stations; transport-free (the EST front end calls it).</summary>
public interface IEnrollmentService
{
    /// <summary>
    /// Decodes and checks the CSR, runs every <see cref="IEnrollmentPolicy"/>, issues the certificate, journals it
    /// (durably), and only then returns it. Nothing is journaled for refused input, except refusals a policy marks
    /// for reporting (<see cref="EnrollmentRejectedException.Report"/>), which are journaled as EnrollmentRefused.
    /// </summary>
    /// <param name="request">The request: station, body and the optional label, order, kind, operator and MAC.</param>
    /// <param name="cancellationToken">Cancels waiting for the journal; an entry may still become durable.</param>
    /// <returns>The durable certificate and its chain.</returns>
    /// <exception cref="EnrollmentRejectedException">Bad input (body, CSR, key, signature, device ID, operator id) or a policy refusal.</exception>
    /// <exception cref="EnrollmentUnavailableException">The journal or the CA key is unavailable (fail closed).</exception>
    /// <exception cref="CertificateLintException">The profile produced a certificate that breaks a lint (a factory defect).</exception>
    Task<EnrollmentResult> EnrollAsync(EnrollmentRequest request, CancellationToken cancellationToken);

    /// <summary>RFC 7030 §4.2.1 simpleenroll with only an operator id; see <see cref="EnrollAsync(EnrollmentRequest, CancellationToken)"/>.</summary>
    /// <param name="station">The authenticated station (see <see cref="IStationAuthorizer"/>).</param>
    /// <param name="body">The RFC 7030 §4.2.1 body: base64 (or PEM) PKCS#10.</param>
    /// <param name="operatorId">Optional operator id (≤ 64 printable ASCII characters), journaled; never a secret.</param>
    /// <param name="cancellationToken">Cancels waiting for the journal.</param>
    /// <returns>The durable certificate and its chain.</returns>
    /// <exception cref="EnrollmentRejectedException">Bad input or a policy refusal.</exception>
    /// <exception cref="EnrollmentUnavailableException">The journal or the CA key is unavailable (fail closed).</exception>
    Task<EnrollmentResult> EnrollAsync(StationIdentity station, ReadOnlyMemory<byte> body, string? operatorId, CancellationToken cancellationToken) =>
        EnrollAsync(new EnrollmentRequest(station, body) { OperatorId = operatorId }, cancellationToken);
}

/// <summary>The default <see cref="IEnrollmentService"/>: intake → policies → issue (prepare, lint, sign) → journal → commit → return.</summary>
public sealed partial class EnrollmentService : IEnrollmentService
{
    /// <summary>Longest operator id accepted, in characters.</summary>
    public const int MaxOperatorIdLength = 64;

    private readonly Dictionary<string, CsrIntake> _intakes;
    private readonly CertificateProfileSet _profiles;
    private readonly ICertificateIssuer _issuer;
    private readonly IJournalAppender _journal;
    private readonly IIssuedSerialsRecorder? _recorder;
    private readonly IIssuanceGate? _gate;
    private readonly IReadOnlyList<IEnrollmentPolicy> _policies;
    private readonly TimeProvider _time;
    private readonly ILogger<EnrollmentService> _log;
    private readonly IReadOnlyList<byte[]> _chain;

    /// <summary>Creates the service.</summary>
    /// <param name="issuer">Issues certificates; its profile supplies the device-ID pattern.</param>
    /// <param name="journal">Durable journal.</param>
    /// <param name="logger">Logger (station id, device id, serial and fingerprint only).</param>
    /// <param name="recorder">Told about each journaled serial; may be null.</param>
    /// <param name="gate">Consulted before each signature (bounded divergence); may be null.</param>
    /// <param name="policies">Registration-authority rules, run in order after the CSR checks; null for none.</param>
    /// <param name="time">Clock handed to the policies; <see cref="TimeProvider.System"/> when null.</param>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    public EnrollmentService(ICertificateIssuer issuer, IJournalAppender journal, ILogger<EnrollmentService> logger, IIssuedSerialsRecorder? recorder = null,
        IIssuanceGate? gate = null, IEnumerable<IEnrollmentPolicy>? policies = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(issuer);
        ArgumentNullException.ThrowIfNull(journal);
        ArgumentNullException.ThrowIfNull(logger);
        _issuer = issuer;
        _profiles = issuer.Profiles;
        _intakes = _profiles.ToDictionary(p => p.Name, p => new CsrIntake(p), StringComparer.Ordinal);
        _journal = journal;
        _log = logger;
        _recorder = recorder;
        _gate = gate;
        _policies = policies?.ToArray() ?? [];
        _time = time ?? TimeProvider.System;
        _chain = [issuer.Authority.Certificate.RawData, .. issuer.Authority.ChainAboveIssuer.Select(c => c.RawData)];
    }

    /// <inheritdoc />
    public async Task<EnrollmentResult> EnrollAsync(EnrollmentRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var station = request.Station;
        ValidatedCsr? csr = null;
        byte[]? serverKey = null;
        EnrollmentContext? context = null;
        var admissions = new List<IEnrollmentAdmission>(_policies.Count);
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        string outcome = "error";
        try
        {
            CheckOperatorId(request.OperatorId);
            CertificateProfile profileDef = _profiles.Default;
            if (request.ProfileName is { } asked && !_profiles.TryGet(asked, out profileDef))
            {
                throw new EnrollmentRejectedException(EnrollmentError.ProfileUnknown,
                    $"no profile named '{asked}' (FactoryCa:Profiles has {string.Join(", ", _profiles.Names)})");
            }

            string profile = profileDef.Name;
            if (!station.MayRequest(profile))
            {
                throw new EnrollmentRejectedException(EnrollmentError.StationNotAuthorizedForProfile,
                    $"station CN={station.SubjectCn} is not authorised for profile {profile} (FactoryCa:Stations, Id {station.Id}: Profiles)");
            }

            var intake = _intakes[profile];
            byte[] der = CsrIntake.DecodeBody(request.Body.Span);
            if (request.ServerGeneratedKey)
            {
                (csr, serverKey) = GenerateKey(request, profileDef, intake, der);
            }
            else
            {
                csr = intake.Validate(der);
            }

            request = MergeOperatorId(request, csr.OperatorId);
            if (request.Kind == IssuanceKind.Reenroll)
            {
                CheckReenroll(request, csr);
            }

            context = new EnrollmentContext(request, csr.DeviceId, profile, csr.SubjectPublicKeyInfo,
                System.Security.Cryptography.SHA256.HashData(csr.SubjectPublicKeyInfo), _time.GetUtcNow());
            foreach (var policy in _policies)
            {
                admissions.Add(policy.Admit(context));
            }

            IssuedCertificate issued;
            try
            {
                _gate?.EnsureOpen();
                issued = _issuer.Issue(new IssuanceRequest(csr.DeviceId, csr.SubjectPublicKeyInfo) { Profile = profileDef });
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
                OperatorId = request.OperatorId ?? string.Empty,
                // serverkeygen: the CSR only named the device; its key was not certified, so its hash is not journaled.
                CsrSha256 = request.ServerGeneratedKey ? ByteString.Empty : ByteString.CopyFrom(csr.Sha256),
                Profile = profile,
                Kind = request.Kind,
                PublicKeySha256 = ByteString.CopyFrom(context.PublicKeySha256),
                MacAddress = request.MacAddress ?? string.Empty,
                ServerGeneratedKey = request.ServerGeneratedKey,
                Label = request.Label ?? string.Empty,
                BatchId = request.OrderId ?? string.Empty,
            };
            foreach (var admission in admissions)
            {
                admission.Annotate(payload);
            }

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

            foreach (var admission in admissions)
            {
                admission.Commit(payload, entry.Seq);
            }

            _recorder?.Record(issued.Serial);
            LogIssued(station.Id, csr.DeviceId, issued.SerialHex, issued.Sha256Fingerprint, csr.KeyDescription, entry.Seq);
            var result = new EnrollmentResult(issued.Der, _chain, csr.DeviceId, issued.SerialHex, issued.Sha256Fingerprint, entry.Seq)
            {
                PrivateKeyPkcs8 = serverKey, Profile = profile,
            };
            serverKey = null;
            outcome = "issued";
            return result;
        }
        catch (EnrollmentUnavailableException)
        {
            outcome = "unavailable";
            throw;
        }
        catch (EnrollmentRejectedException ex)
        {
            outcome = "rejected";
            LogRejected(station.Id, ex.Code, ex.Message);
            if (ex.Report)
            {
                await ReportRefusalAsync(request, context, csr, ex, cancellationToken).ConfigureAwait(false);
            }

            throw;
        }
        catch (CertificateLintException ex)
        {
            outcome = "lint_failed";
            LogLint(station.Id, ex.Message);
            throw;
        }
        finally
        {
            RecordOutcome(request, station, outcome, started);
            if (serverKey is not null)
            {
                // A server-generated key whose certificate was not returned is destroyed.
                System.Security.Cryptography.CryptographicOperations.ZeroMemory(serverKey);
            }

            // Committed admissions ignore Dispose; the others release what they reserved.
            foreach (var admission in admissions)
            {
                admission.Dispose();
            }
        }
    }

    // Labels are bounded by configuration: an unknown profile name is counted as "unknown".
    private void RecordOutcome(EnrollmentRequest request, StationIdentity station, string outcome, long started)
    {
        string profile = request.ProfileName is null ? _profiles.Default.Name : _profiles.TryGet(request.ProfileName, out _) ? request.ProfileName : "unknown";
        var tags = new System.Diagnostics.TagList { { "profile", profile }, { "station", station.Id }, { "outcome", outcome } };
        OfflinePki.Telemetry.FactoryMetrics.IssuanceRequests.Add(1, tags);
        OfflinePki.Telemetry.FactoryMetrics.IssuanceDuration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
    }

    /// <inheritdoc cref="IEnrollmentService.EnrollAsync(StationIdentity, ReadOnlyMemory{byte}, string?, CancellationToken)" />
    public Task<EnrollmentResult> EnrollAsync(StationIdentity station, ReadOnlyMemory<byte> body, string? operatorId, CancellationToken cancellationToken) =>
        EnrollAsync(new EnrollmentRequest(station, body) { OperatorId = operatorId }, cancellationToken);

    /// <summary>Journals a refusal a policy wants the OEM to see (e.g. a cloned key). Fails closed like issuance.</summary>
    private async Task ReportRefusalAsync(EnrollmentRequest request, EnrollmentContext? context, ValidatedCsr? csr, EnrollmentRejectedException ex,
        CancellationToken cancellationToken)
    {
        var refused = new EnrollmentRefused
        {
            StationId = request.Station.Id,
            DeviceId = csr?.DeviceId ?? string.Empty,
            Reason = ex.Message,
            CsrSha256 = csr is null ? ByteString.Empty : ByteString.CopyFrom(csr.Sha256),
            Code = ex.Code.ToString(),
            PublicKeySha256 = context is null ? ByteString.Empty : ByteString.CopyFrom(context.PublicKeySha256),
            BatchId = request.OrderId ?? string.Empty,
        };
        try
        {
            await _journal.AppendAsync(EntryType.EnrollmentRefused, refused, cancellationToken).ConfigureAwait(false);
        }
        catch (JournalUnavailableException jex)
        {
            LogUnavailable(request.Station.Id, jex.Message);
            throw new EnrollmentUnavailableException("journal unavailable while reporting a refusal: " + jex.Message, jex);
        }
    }

    /// <summary>
    /// serverkeygen (RFC 7030 §4.4): checks the station and profile allow it, reads the device from the CSR (whose key
    /// is ignored), and makes a key of the profile's first key type.
    /// </summary>
    private static (ValidatedCsr Csr, byte[] Pkcs8) GenerateKey(EnrollmentRequest request, CertificateProfile profile, CsrIntake intake, byte[] der)
    {
        if (!profile.AllowServerKeyGen)
        {
            throw new EnrollmentRejectedException(EnrollmentError.NotSupported,
                $"profile {profile.Name} does not allow serverkeygen (FactoryCa:Profiles: AllowServerKeyGen)");
        }

        if (!request.Station.AllowServerKeyGen)
        {
            throw new EnrollmentRejectedException(EnrollmentError.StationNotAuthorizedForServerKeyGen,
                $"station CN={request.Station.SubjectCn} may not use serverkeygen (FactoryCa:Stations, Id {request.Station.Id}: AllowServerKeyGen)");
        }

        var (deviceId, operatorId) = intake.ReadServerKeyGenRequest(der);
        string type = profile.AllowedKeyTypes[0];
        using System.Security.Cryptography.AsymmetricAlgorithm key = type switch
        {
            "P-384" => System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP384),
            "RSA" => System.Security.Cryptography.RSA.Create(CsrIntake.MinRsaBits),
            _ => System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256),
        };
        byte[] spki = key.ExportSubjectPublicKeyInfo();
        string description = type == "RSA" ? $"RSA-{CsrIntake.MinRsaBits}" : type;
        var csr = new ValidatedCsr(der, System.Security.Cryptography.SHA256.HashData(der), spki, description, deviceId) { OperatorId = operatorId };
        return (csr, key.ExportPkcs8PrivateKey());
    }

    /// <summary>Operator id from the header or the CSR attribute; the header wins, and the two must agree when both are given.</summary>
    private static EnrollmentRequest MergeOperatorId(EnrollmentRequest request, string? fromCsr)
    {
        if (fromCsr is null)
        {
            return request;
        }

        CheckOperatorId(fromCsr);
        if (request.OperatorId is { } header)
        {
            return string.Equals(header, fromCsr, StringComparison.Ordinal) ? request
                : throw new EnrollmentRejectedException(EnrollmentError.OperatorIdInvalid,
                    $"operator id '{header}' (X-Operator-Id header) differs from '{fromCsr}' in the CSR attribute {Oids.OperatorIdAttribute}");
        }

        return request with { OperatorId = fromCsr };
    }

    /// <summary>
    /// simplereenroll (RFC 7030 §4.2.2): the request names the device of the certificate it renews. The CA writes the
    /// subject itself, so the device ID (serialNumber) is what must be identical.
    /// </summary>
    private static void CheckReenroll(EnrollmentRequest request, ValidatedCsr csr)
    {
        if (request.CurrentCertificate is not { } current)
        {
            throw new EnrollmentRejectedException(EnrollmentError.ReenrollMismatch, "simplereenroll needs the current certificate in the TLS handshake (RFC 7030 §4.2.2)");
        }

        var ids = current.SubjectName.EnumerateRelativeDistinguishedNames()
            .Where(r => !r.HasMultipleElements && r.GetSingleElementType().Value == Oids.SerialNumberAttribute)
            .Select(r => r.GetSingleElementValue()).ToList();
        if (ids.Count != 1 || !string.Equals(ids[0], csr.DeviceId, StringComparison.Ordinal))
        {
            throw new EnrollmentRejectedException(EnrollmentError.ReenrollMismatch,
                $"CSR device serial '{csr.DeviceId}' differs from the current certificate's '{(ids.Count == 1 ? ids[0] : "?")}' (RFC 7030 §4.2.2: the subject must be identical)");
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
