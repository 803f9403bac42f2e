using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using OfflinePki.Enrollment;
using OfflinePki.Issuance;
using OfflinePki.Journal;
using OfflinePki.Journal.Index;
using OfflinePki.Journal.V1;
using OfflinePki.Orders;
using OfflinePki.Policy;
using OfflinePki.Factory;

namespace OfflinePki.Orders;

/// <summary>What happened to one CSR file of a batch.</summary>
public enum BatchOutcome
{
    /// <summary>A new certificate was issued and journaled in this run.</summary>
    Issued,

    /// <summary>
    /// The device already holds an active certificate, journaled under this order, for exactly this CSR (same SHA-256):
    /// an earlier (possibly interrupted) run issued it. Its certificate was written again; nothing was journaled.
    /// </summary>
    AlreadyIssued,

    /// <summary>The CSR was refused (see <see cref="BatchItem.Code"/>); nothing was issued for it.</summary>
    Refused,
}

/// <summary>One CSR file of a batch and its outcome.</summary>
/// <param name="File">The file name (no directory), as listed in refused.csv.</param>
/// <param name="Outcome">Issued, already issued or refused.</param>
/// <param name="DeviceId">The device ID from the CSR subject serialNumber, or null when it could not be read.</param>
/// <param name="Code">For a refusal: the <see cref="EnrollmentError"/> name, or <see cref="BatchSigner.DuplicateBaseNameCode"/>; otherwise null.</param>
/// <param name="Message">For a refusal: what was wrong and what to do; otherwise null.</param>
/// <param name="Row">For an issued or already issued certificate: its batch report row; otherwise null.</param>
public sealed record BatchItem(string File, BatchOutcome Outcome, string? DeviceId, string? Code, string? Message, BatchReportRow? Row);

/// <summary>The result of <see cref="BatchSigner.SignAsync"/>.</summary>
/// <param name="OrderId">The order the batch consumed.</param>
/// <param name="Items">One item per CSR file, in ordinal file-name order.</param>
/// <param name="OrderRemaining">The order's remaining quantity after the batch.</param>
/// <param name="StoppedBy">Null when every file was processed; otherwise why the batch stopped early (journal or CA key unavailable), and the files after it were not attempted.</param>
public sealed record BatchResult(string OrderId, IReadOnlyList<BatchItem> Items, long OrderRemaining, string? StoppedBy)
{
    /// <summary>Certificates issued in this run.</summary>
    public int Issued => Items.Count(i => i.Outcome == BatchOutcome.Issued);

    /// <summary>Certificates found already issued (earlier run) and written again.</summary>
    public int AlreadyIssued => Items.Count(i => i.Outcome == BatchOutcome.AlreadyIssued);

    /// <summary>CSRs refused.</summary>
    public int Refused => Items.Count(i => i.Outcome == BatchOutcome.Refused);

    /// <summary>The one-line summary the CLI prints.</summary>
    public string Summary =>
        $"batch {OrderId}: issued {Issued}, already issued {AlreadyIssued}, refused {Refused}, order remaining quantity {OrderRemaining}"
        + (StoppedBy is null ? string.Empty : $"; STOPPED early: {StoppedBy}");
}

/// <summary>A batch cannot start (bad arguments, unknown order, the daemon running, ...). Nothing was signed or written.</summary>
public sealed class BatchSigningException : Exception
{
    /// <summary>Creates the exception; the message says what to do.</summary>
    /// <param name="message">The cause, naming the argument or file.</param>
    public BatchSigningException(string message) : base(message) { }
}

/// <summary>
/// Offline batch signing for the ODM "ISP-signed CSRs" model (issue 6 §5): every CSR file of a folder is enrolled under
/// one production order through the factory's own <see cref="IEnrollmentService"/>, so every
/// <see cref="IEnrollmentPolicy"/> applies exactly as on EST (order quota and device range, check digits, one active
/// IDevID, cloned keys, profiles). The journaled station is the fixed <see cref="StationId"/>.
/// </summary>
/// <remarks>
/// <para>Inputs: the files <c>*.csr</c>, <c>*.pem</c>, <c>*.der</c>, <c>*.req</c> of the folder (not recursive), in
/// ordinal file-name order, each a PEM or DER PKCS#10 request (RFC 2986) of at most <see cref="MaxCsrBytes"/> bytes.</para>
/// <para>Outputs, each written atomically (temporary file, fsync, rename): <c>&lt;basename&gt;.crt</c> (PEM) per
/// certificate, <c>chain.pem</c> (issuing CA, then the root), <c>refused.csv</c> (<see cref="RefusedCsvHeader"/>,
/// header only when nothing was refused), and the batch report <c>batch-report.csv</c> / <c>batch-report.json</c>
/// (<see cref="BatchReport"/>) of every certificate issued or already issued in this run.</para>
/// <para>Idempotent: re-running a folder after a crash re-writes the certificates already journaled for the same
/// CSRs (<see cref="BatchOutcome.AlreadyIssued"/>, found through the journal) and issues nothing twice.</para>
/// </remarks>
public sealed class BatchSigner
{
    /// <summary>The station id journaled for batch-signed certificates (CertificateIssued.station_id).</summary>
    public const string StationId = "batch-signer";

    /// <summary>Largest CSR file read, in bytes (larger files are refused as <see cref="EnrollmentError.MalformedBody"/>).</summary>
    public const int MaxCsrBytes = 64 * 1024;

    /// <summary>The refusal code of a file whose base name another, earlier file already uses (both would write the same .crt).</summary>
    public const string DuplicateBaseNameCode = "DuplicateBaseName";

    /// <summary>The header line of refused.csv (RFC 4180, CRLF line ends).</summary>
    public const string RefusedCsvHeader = "file,device_id,code,message";

    /// <summary>The file-name extensions read from the CSR folder (compared case-insensitively).</summary>
    public static IReadOnlyList<string> CsrExtensions { get; } = [".csr", ".pem", ".der", ".req"];

    /// <summary>The identity batch enrollments run under: id and CN <see cref="StationId"/>, no certificate, every profile and order.</summary>
    public static StationIdentity Station { get; } = new(StationId, StationId, string.Empty);

    private readonly IEnrollmentService _enrollment;
    private readonly OrderBook _orders;
    private readonly DevicePolicy? _devices;
    private readonly FactoryIndex _index;
    private readonly IJournalReader _journal;
    private readonly CertificateProfileSet _profiles;
    private readonly IssuingAuthority _authority;
    private readonly TimeProvider _time;

    /// <summary>Creates the signer over the factory's services (the host builds it from its container).</summary>
    /// <param name="enrollment">The enrollment service with every policy.</param>
    /// <param name="orders">The order book (accepted orders, quotas).</param>
    /// <param name="devices">The device policy (active certificate per device), or null when it is not registered.</param>
    /// <param name="index">The factory index (certificates by device), caught up from <paramref name="journal"/> before lookups.</param>
    /// <param name="journal">The journal, the source of truth for already issued certificates.</param>
    /// <param name="profiles">The configured profiles (device ID read before enrolling).</param>
    /// <param name="authority">The issuing CA and the chain above it (chain.pem).</param>
    /// <param name="time">Clock for the order validity check.</param>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    public BatchSigner(IEnrollmentService enrollment, OrderBook orders, DevicePolicy? devices, FactoryIndex index, IJournalReader journal,
        CertificateProfileSet profiles, IssuingAuthority authority, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(enrollment);
        ArgumentNullException.ThrowIfNull(orders);
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(journal);
        ArgumentNullException.ThrowIfNull(profiles);
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentNullException.ThrowIfNull(time);
        _enrollment = enrollment;
        _orders = orders;
        _devices = devices;
        _index = index;
        _journal = journal;
        _profiles = profiles;
        _authority = authority;
        _time = time;
    }

    /// <summary>The CSR files of <paramref name="directory"/> (extensions <see cref="CsrExtensions"/>), full paths in ordinal file-name order.</summary>
    /// <param name="directory">The folder; not searched recursively.</param>
    /// <returns>The files; empty when there are none.</returns>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    public static IReadOnlyList<string> ListCsrFiles(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        return Directory.EnumerateFiles(directory)
            .Where(f => CsrExtensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
            .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>
    /// Signs every CSR file of <paramref name="csrDirectory"/> under <paramref name="orderId"/> and writes the certificates,
    /// chain.pem, refused.csv and the batch report into <paramref name="outputDirectory"/> (created if missing).
    /// A refused CSR does not stop the batch; an unavailable journal or CA key does (fail closed; <see cref="BatchResult.StoppedBy"/>).
    /// </summary>
    /// <param name="orderId">An accepted production order (imported or delivered by sync), valid now.</param>
    /// <param name="csrDirectory">The folder of CSR files.</param>
    /// <param name="outputDirectory">Where to write; may be the CSR folder.</param>
    /// <param name="operatorId">The operator journaled with each certificate (≤ 64 printable ASCII characters), or null.</param>
    /// <param name="profileName">The profile; null for the order's profile.</param>
    /// <param name="cancellationToken">Stops between files; a certificate being journaled may still become durable (a re-run finds it).</param>
    /// <returns>The outcome per file and the order's remaining quantity.</returns>
    /// <exception cref="BatchSigningException">
    /// Before anything is signed: the order is not accepted here or not valid now, the profile differs from the order's,
    /// the operator id is invalid, the CSR folder is missing or holds no CSR file.
    /// </exception>
    /// <exception cref="IOException">An output file cannot be written.</exception>
    /// <exception cref="UnauthorizedAccessException">No permission on an input or output file.</exception>
    public async Task<BatchResult> SignAsync(string orderId, string csrDirectory, string outputDirectory, string? operatorId, string? profileName,
        CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(orderId);
        ArgumentException.ThrowIfNullOrEmpty(csrDirectory);
        ArgumentException.ThrowIfNullOrEmpty(outputDirectory);
        var order = _orders.Find(orderId)
            ?? throw new BatchSigningException(
                $"no accepted production order '{orderId}' on this factory: import it first (FactoryCa import-order, daemon running) or let the mirror deliver it at a sync");
        var now = _time.GetUtcNow();
        if (!order.IsValidAt(now))
        {
            throw new BatchSigningException(
                $"order {order.OrderId} is valid {order.NotBefore:yyyy-MM-ddTHH:mm:ssZ}..{order.NotAfter:yyyy-MM-ddTHH:mm:ssZ}, not now ({now:yyyy-MM-ddTHH:mm:ssZ})");
        }

        string profile = profileName ?? order.Profile;
        if (!_profiles.TryGet(profile, out var profileDef))
        {
            throw new BatchSigningException($"no profile named '{profile}' (FactoryCa:Profiles has {string.Join(", ", _profiles.Names)})");
        }

        if (!string.Equals(profile, order.Profile, StringComparison.Ordinal))
        {
            throw new BatchSigningException($"order {order.OrderId} is for profile '{order.Profile}', not '{profile}': drop --profile or name the order's profile");
        }

        if (operatorId is not null && (operatorId.Length is 0 or > EnrollmentService.MaxOperatorIdLength || operatorId.Any(c => c is < ' ' or > '~')))
        {
            throw new BatchSigningException($"--operator must be 1-{EnrollmentService.MaxOperatorIdLength} printable ASCII characters");
        }

        if (!Directory.Exists(csrDirectory))
        {
            throw new BatchSigningException($"CSR folder '{csrDirectory}' does not exist");
        }

        var files = ListCsrFiles(csrDirectory);
        if (files.Count == 0)
        {
            throw new BatchSigningException($"CSR folder '{csrDirectory}' holds no {string.Join(", ", CsrExtensions.Select(e => "*" + e))} file");
        }

        Directory.CreateDirectory(outputDirectory);
        var intake = new CsrIntake(profileDef);
        var items = new List<BatchItem>(files.Count);
        var baseNames = new HashSet<string>(StringComparer.Ordinal);
        string? stoppedBy = null;
        foreach (string path in files)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string file = Path.GetFileName(path);
            string baseName = Path.GetFileNameWithoutExtension(path);
            if (!baseNames.Add(baseName))
            {
                items.Add(new BatchItem(file, BatchOutcome.Refused, null, DuplicateBaseNameCode,
                    $"another CSR file named {baseName}.* comes earlier and writes {baseName}.crt: rename one of them", null));
                continue;
            }

            try
            {
                items.Add(await SignOneAsync(path, order.OrderId, profile, intake, operatorId, outputDirectory, cancellationToken).ConfigureAwait(false));
            }
            catch (EnrollmentUnavailableException ex)
            {
                stoppedBy = $"{file}: {ex.Message}";
                break;
            }
        }

        WriteChain(outputDirectory);
        WriteRefused(outputDirectory, items);
        var rows = items.Where(i => i.Row is not null).Select(i => i.Row!).ToList();
        WriteAtomic(Path.Combine(outputDirectory, "batch-report.csv"), s => BatchReport.WriteCsv(s, rows));
        WriteAtomic(Path.Combine(outputDirectory, "batch-report.json"), s => BatchReport.WriteJson(s, order.OrderId, rows));
        return new BatchResult(order.OrderId, items, _orders.StatusOf(order.OrderId)?.Remaining ?? 0, stoppedBy);
    }

    private async Task<BatchItem> SignOneAsync(string path, string orderId, string profile, CsrIntake intake, string? operatorId, string outputDirectory,
        CancellationToken cancellationToken)
    {
        string file = Path.GetFileName(path);
        string? deviceId = null;
        try
        {
            byte[] body = ReadBody(path);

            // The device ID and CSR hash, to find a certificate an earlier run already issued for exactly this CSR.
            ValidatedCsr? csr = null;
            try
            {
                csr = intake.Validate(CsrIntake.DecodeBody(body));
                deviceId = csr.DeviceId;
            }
            catch (EnrollmentRejectedException)
            {
                // The enrollment service refuses it below with the same code (and logs it like any station's).
            }

            if (csr is not null && FindIssued(csr.DeviceId, csr.Sha256, orderId) is { } existing)
            {
                WriteAtomic(Path.Combine(outputDirectory, Path.GetFileNameWithoutExtension(path) + ".crt"), Pem(existing.Certificate));
                return new BatchItem(file, BatchOutcome.AlreadyIssued, csr.DeviceId, null, null, existing.Row);
            }

            var request = new EnrollmentRequest(Station, body) { OperatorId = operatorId, OrderId = orderId, ProfileName = profile };
            var result = await _enrollment.EnrollAsync(request, cancellationToken).ConfigureAwait(false);
            WriteAtomic(Path.Combine(outputDirectory, Path.GetFileNameWithoutExtension(path) + ".crt"), Pem(result.Certificate));
            var issuedAt = _journal.ReadFrom(result.JournalSeq).FirstOrDefault() is { } e && e.Seq == result.JournalSeq
                ? DateTimeOffset.FromUnixTimeMilliseconds(e.TimeUnixMicros / 1000)
                : _time.GetUtcNow();
            var row = new BatchReportRow(result.DeviceId, result.SerialHex, result.Sha256Fingerprint, null, StationId, operatorId, issuedAt,
                KindName(IssuanceKind.Initial));
            return new BatchItem(file, BatchOutcome.Issued, result.DeviceId, null, null, row);
        }
        catch (EnrollmentRejectedException ex)
        {
            return new BatchItem(file, BatchOutcome.Refused, deviceId, ex.Code.ToString(), ex.Message, null);
        }
        catch (CertificateLintException ex)
        {
            return new BatchItem(file, BatchOutcome.Refused, deviceId, "LintFailed", ex.Message, null);
        }
    }

    /// <summary>
    /// The device's active certificate if it was journaled under <paramref name="orderId"/> for a CSR with SHA-256
    /// <paramref name="csrSha256"/>; null otherwise.
    /// </summary>
    private (byte[] Certificate, BatchReportRow Row)? FindIssued(string deviceId, byte[] csrSha256, string orderId)
    {
        string? activeSerial = _devices?.Find(deviceId)?.ActiveSerialHex;
        if (_devices is not null && activeSerial is null)
        {
            return null; // never enrolled here, or retired: nothing to write again
        }

        _index.CatchUp(_journal);
        var candidates = _index.FindByDevice(deviceId);
        var record = activeSerial is null ? candidates.LastOrDefault() : candidates.LastOrDefault(c => c.SerialHex == activeSerial);
        if (record is null)
        {
            return null;
        }

        var entry = _journal.ReadFrom(record.Seq).FirstOrDefault();
        if (entry is null || entry.Seq != record.Seq || entry.Type != EntryType.CertificateIssued)
        {
            return null;
        }

        var issued = CertificateIssued.Parser.ParseFrom(entry.Payload);
        if (!issued.CsrSha256.Span.SequenceEqual(csrSha256) || !string.Equals(issued.BatchId, orderId, StringComparison.Ordinal))
        {
            return null;
        }

        byte[] der = issued.Certificate.ToByteArray();
        var row = new BatchReportRow(issued.DeviceId, record.SerialHex, Convert.ToHexStringLower(SHA256.HashData(der)),
            string.IsNullOrEmpty(issued.MacAddress) ? null : issued.MacAddress, issued.StationId,
            string.IsNullOrEmpty(issued.OperatorId) ? null : issued.OperatorId, DateTimeOffset.FromUnixTimeMilliseconds(entry.TimeUnixMicros / 1000),
            KindName(issued.Kind));
        return (der, row);
    }

    /// <summary>The file as the EST body the service takes: PEM text as is, DER as base64.</summary>
    private static byte[] ReadBody(string path)
    {
        var info = new FileInfo(path);
        if (info.Length > MaxCsrBytes)
        {
            throw new EnrollmentRejectedException(EnrollmentError.MalformedBody, $"file is {info.Length} bytes; a CSR file is at most {MaxCsrBytes} bytes");
        }

        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length == 0)
        {
            throw new EnrollmentRejectedException(EnrollmentError.MalformedBody, "empty file: expected a PEM or DER PKCS#10 request");
        }

        // DER starts with a SEQUENCE tag (RFC 2986 §4); anything else is taken as PEM or base64 text.
        return bytes[0] == 0x30 ? Encoding.ASCII.GetBytes(Convert.ToBase64String(bytes)) : bytes;
    }

    private static string KindName(IssuanceKind kind) => kind switch
    {
        IssuanceKind.Rework => "rework",
        IssuanceKind.Refurb => "refurb",
        IssuanceKind.Reenroll => "reenroll",
        _ => "initial",
    };

    private static byte[] Pem(byte[] der) => Encoding.ASCII.GetBytes(PemEncoding.WriteString("CERTIFICATE", der) + "\n");

    private void WriteChain(string outputDirectory)
    {
        var pem = new StringBuilder();
        pem.Append(PemEncoding.WriteString("CERTIFICATE", _authority.Certificate.RawData)).Append('\n');
        foreach (var c in _authority.ChainAboveIssuer)
        {
            pem.Append(PemEncoding.WriteString("CERTIFICATE", c.RawData)).Append('\n');
        }

        WriteAtomic(Path.Combine(outputDirectory, "chain.pem"), Encoding.ASCII.GetBytes(pem.ToString()));
    }

    private static void WriteRefused(string outputDirectory, List<BatchItem> items)
    {
        var csv = new StringBuilder(RefusedCsvHeader).Append("\r\n");
        foreach (var i in items.Where(i => i.Outcome == BatchOutcome.Refused))
        {
            csv.Append(BatchReport.Field(i.File)).Append(',').Append(BatchReport.Field(i.DeviceId ?? string.Empty)).Append(',')
                .Append(BatchReport.Field(i.Code ?? string.Empty)).Append(',').Append(BatchReport.Field(i.Message ?? string.Empty)).Append("\r\n");
        }

        WriteAtomic(Path.Combine(outputDirectory, "refused.csv"), new UTF8Encoding(false).GetBytes(csv.ToString()));
    }

    private static void WriteAtomic(string path, byte[] bytes) => WriteAtomic(path, s => s.Write(bytes));

    /// <summary>Writes to a temporary file in the same folder, fsyncs it, and renames it over <paramref name="path"/>.</summary>
    private static void WriteAtomic(string path, Action<Stream> write)
    {
        string temp = path + "." + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)) + ".tmp";
        try
        {
            using (var s = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(s);
                s.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }
}
