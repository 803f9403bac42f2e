using System.Net.Http;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OfflinePki.Station;

/// <summary>The steps of one device's run, in order; a failure names one of them.</summary>
public static class StationSteps
{
    /// <summary>Open the TCP connection or serial port.</summary>
    public const string Connect = "connect";

    /// <summary>Read the device ID and compare it with the scanned label.</summary>
    public const string Identify = "identify";

    /// <summary>Get the CSR and check it (proof of possession, device ID).</summary>
    public const string Csr = "csr";

    /// <summary>EST cacerts and simpleenroll.</summary>
    public const string Enroll = "enroll";

    /// <summary>Check the issued certificate (device ID, public key, chain to the issuing CA).</summary>
    public const string Verify = "verify";

    /// <summary>Write certificate and chain; compare the read-back.</summary>
    public const string Write = "write";

    /// <summary>Fresh random challenge signed by the device, verified with the new certificate.</summary>
    public const string Challenge = "challenge";

    /// <summary>Set the debug lock.</summary>
    public const string Finalize = "finalize";

    /// <summary>All steps passed.</summary>
    public const string Done = "done";
}

/// <summary>What one station run needs.</summary>
public sealed record StationRunOptions
{
    /// <summary>Device endpoint: tcp:HOST:PORT or serial:/dev/ttyX.</summary>
    public required string Device { get; init; }

    /// <summary>The device ID scanned from the label.</summary>
    public required string Label { get; init; }

    /// <summary>The EST server, e.g. https://factory:8443.</summary>
    public required Uri Est { get; init; }

    /// <summary>EST label (RFC 7030 §3.2.2) or null.</summary>
    public string? EstLabel { get; init; }

    /// <summary>Station TLS client certificate with key.</summary>
    public required X509Certificate2 ClientCertificate { get; init; }

    /// <summary>Trust anchors for the EST server's TLS certificate (the TLS/RA CA).</summary>
    public required X509Certificate2Collection TlsTrustAnchors { get; init; }

    /// <summary>Pinned device-identity root; when set, the certificate must chain to it (not just to the cacerts root).</summary>
    public X509Certificate2? PinnedRoot { get; init; }

    /// <summary>Production order ID (X-Order-Id) or null.</summary>
    public string? Order { get; init; }

    /// <summary>Issuance kind (X-Issuance-Kind: initial, rework or refurb) or null for the server's default (initial).</summary>
    public string? Kind { get; init; }

    /// <summary>Operator ID (X-Operator-Id) or null.</summary>
    public string? Operator { get; init; }

    /// <summary>Station ID for the evidence (default: the client certificate's CN).</summary>
    public string? StationId { get; init; }

    /// <summary>Profile named in the csr request to the device (default: the EST label, else "idevid").</summary>
    public string? Profile { get; init; }

    /// <summary>Longest wait for one device answer.</summary>
    public TimeSpan DeviceTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest wait for one EST request.</summary>
    public TimeSpan EstTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// The result of one run: pass, or the failed step with the reason. When the certificate was issued before the
/// failure, its serial and fingerprint are set so that it can be revoked or the unit reworked.
/// </summary>
public sealed record StationOutcome
{
    /// <summary>True when every step passed.</summary>
    public bool Passed { get; init; }

    /// <summary>The failed step, or <see cref="StationSteps.Done"/>.</summary>
    public string Step { get; init; } = StationSteps.Done;

    /// <summary>Why it failed, or null.</summary>
    public string? Reason { get; init; }

    /// <summary>The scanned label.</summary>
    public string Label { get; init; } = string.Empty;

    /// <summary>The device ID the device reported, if it got that far.</summary>
    public string? DeviceId { get; init; }

    /// <summary>MAC reported by the device.</summary>
    public string? Mac { get; init; }

    /// <summary>Firmware reported by the device.</summary>
    public string? Firmware { get; init; }

    /// <summary>Issued certificate serial (upper-case hex), if issued.</summary>
    public string? Serial { get; init; }

    /// <summary>"sha256:" + hex SHA-256 of the issued certificate DER, if issued.</summary>
    public string? Fingerprint { get; init; }

    /// <summary>"sha256:" + hex SHA-256 of the device's SubjectPublicKeyInfo, once the CSR was read.</summary>
    public string? PublicKeySha256 { get; init; }

    /// <summary>The issued certificate, if any.</summary>
    public X509Certificate2? Certificate { get; init; }
}

/// <summary>
/// Drives one device through identify → csr → enroll → verify → write → challenge → finalize. Each check that
/// fails stops the run with the step named; nothing after it is done (a device that failed is never finalized).
/// </summary>
/// <param name="progress">Receives one line per step (no secrets).</param>
/// <param name="time">Clock for chain validation.</param>
/// <param name="random">Fills the challenge (default: <see cref="RandomNumberGenerator.Fill"/>).</param>
public sealed class StationRunner(TextWriter progress, TimeProvider? time = null, Action<Span<byte>>? random = null)
{
    private const string SerialNumberOid = "2.5.4.5";
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Action<Span<byte>> _random = random ?? RandomNumberGenerator.Fill;

    /// <summary>Runs the flow.</summary>
    /// <param name="options">The run's options.</param>
    /// <param name="cancellationToken">Cancels the run (reported as a failure of the current step).</param>
    /// <returns>The outcome; never throws for device, EST or verification failures.</returns>
    public async Task<StationOutcome> RunAsync(StationRunOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var o = new StationOutcome { Label = options.Label };
        string step = StationSteps.Connect;
        try
        {
            await using var device = await DeviceLink.OpenAsync(options.Device, options.DeviceTimeout, cancellationToken).ConfigureAwait(false);
            Log(step, $"connected to {options.Device}");

            // identify: the unit on the fixture is the one whose label was scanned.
            step = StationSteps.Identify;
            var info = await device.CallAsync(step, new DeviceRequest { Op = DeviceProtocol.Ops.Info }, cancellationToken).ConfigureAwait(false);
            if (string.IsNullOrEmpty(info.DeviceId))
            {
                throw new StationStepException(step, "device reported no device ID");
            }

            // Device text reaches the operator's terminal, the evidence and an HTTP header: refuse what does not fit.
            if (info.DeviceId.Length > 64 || info.DeviceId.Any(char.IsControl))
            {
                throw new StationStepException(step, $"device reported a malformed device ID '{DeviceText.Clean(info.DeviceId)}' (at most 64 printable characters)");
            }

            if (info.Mac is not null && !DeviceText.IsMac(info.Mac))
            {
                throw new StationStepException(step, $"device reported a malformed MAC '{DeviceText.Clean(info.Mac)}' (expected aa:bb:cc:dd:ee:ff)");
            }

            info = info with { Firmware = info.Firmware is null ? null : DeviceText.Clean(info.Firmware) };
            o = o with { DeviceId = info.DeviceId, Mac = info.Mac, Firmware = info.Firmware };

            if (!string.Equals(info.DeviceId, options.Label, StringComparison.Ordinal))
            {
                throw new StationStepException(step, $"device reports ID '{info.DeviceId}' but the scanned label is '{options.Label}' (wrong unit on the fixture, or a mislabelled unit)");
            }

            if (info.Locked == true)
            {
                throw new StationStepException(step, $"device '{info.DeviceId}' is already finalized (debug lock set); send it to rework");
            }

            Log(step, $"device {info.DeviceId} mac {info.Mac ?? "-"} firmware {info.Firmware ?? "-"} matches the label");

            // csr: proof of possession and the device ID inside it.
            step = StationSteps.Csr;
            var csrAnswer = await device.CallAsync(step, new DeviceRequest { Op = DeviceProtocol.Ops.Csr, Profile = options.Profile ?? options.EstLabel ?? "idevid" }, cancellationToken).ConfigureAwait(false);
            byte[] csrDer = FromBase64(step, "csr", csrAnswer.Csr);
            CertificateRequest csr;
            try
            {
                csr = CertificateRequest.LoadSigningRequest(csrDer, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.Default);
            }
            catch (CryptographicException ex)
            {
                throw new StationStepException(step, $"device CSR is malformed or its signature does not verify (no proof of possession): {ex.Message}", ex);
            }

            byte[] spki = csr.PublicKey.ExportSubjectPublicKeyInfo();
            o = o with { PublicKeySha256 = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(spki)) };
            string? csrId = SerialNumberOf(csr.SubjectName);
            if (!string.Equals(csrId, options.Label, StringComparison.Ordinal))
            {
                throw new StationStepException(step, $"CSR names device '{DeviceText.Clean(csrId ?? "(none)")}' but the label and the device say '{options.Label}' (swapped ID)");
            }

            Log(step, $"CSR for {csrId}, key {o.PublicKeySha256}, signature verified");

            // enroll: EST over mTLS.
            step = StationSteps.Enroll;
            X509Certificate2Collection caCerts;
            X509Certificate2 cert;
            using (var est = new EstClient(options.Est, options.EstLabel, options.ClientCertificate, options.TlsTrustAnchors, options.EstTimeout))
            {
                est.EnrollHeaders["X-Order-Id"] = options.Order;
                est.EnrollHeaders["X-Operator-Id"] = options.Operator;
                est.EnrollHeaders["X-Device-Mac"] = info.Mac;
                est.EnrollHeaders["X-Issuance-Kind"] = options.Kind;
                caCerts = await Est(() => est.GetCaCertsAsync(cancellationToken), "cacerts", cancellationToken).ConfigureAwait(false);
                cert = await Est(() => est.SimpleEnrollAsync(csrDer, cancellationToken), "simpleenroll", cancellationToken).ConfigureAwait(false);
            }

            o = o with
            {
                Certificate = cert,
                Serial = cert.SerialNumber,
                Fingerprint = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(cert.RawData)),
            };
            Log(step, $"issued serial {o.Serial}");

            // verify: the certificate is for this device and this key, from the factory's issuing CA.
            step = StationSteps.Verify;
            var chain = VerifyCertificate(options, cert, spki, caCerts);
            Log(step, $"subject serialNumber {options.Label}, key matches the CSR, chains to '{chain[0].Subject}'");

            // write: store certificate and chain, compare what the device reads back.
            step = StationSteps.Write;
            var chainB64 = chain.Select(c => Convert.ToBase64String(c.RawData)).ToList();
            var written = await device.CallAsync(step, new DeviceRequest { Op = DeviceProtocol.Ops.Write, Certificate = Convert.ToBase64String(cert.RawData), Chain = chainB64 }, cancellationToken).ConfigureAwait(false);
            byte[] readBack = FromBase64(step, "certificate", written.Certificate);
            if (!readBack.AsSpan().SequenceEqual(cert.RawData))
            {
                throw new StationStepException(step, $"certificate read back from the device differs from the one written ({readBack.Length} vs {cert.RawData.Length} bytes; storage fault)");
            }

            if (written.Chain is null || !written.Chain.SequenceEqual(chainB64, StringComparer.Ordinal))
            {
                throw new StationStepException(step, "chain read back from the device differs from the one written (storage fault)");
            }

            Log(step, $"certificate and {chain.Count} CA certificate(s) written, read-back identical");

            // challenge: the device holds the certificate's key, now.
            step = StationSteps.Challenge;
            byte[] challenge = new byte[DeviceProtocol.ChallengeBytes];
            _random(challenge);
            var signed = await device.CallAsync(step, new DeviceRequest { Op = DeviceProtocol.Ops.Sign, Challenge = Convert.ToBase64String(challenge) }, cancellationToken).ConfigureAwait(false);
            byte[] signature = FromBase64(step, "signature", signed.Signature);
            if (!DeviceChallenge.Verify(cert, challenge, signature))
            {
                throw new StationStepException(step, "challenge signature does not verify with the new certificate's public key (the device signs with another key)");
            }

            string? certId = SerialNumberOf(cert.SubjectName);
            if (!string.Equals(certId, info.DeviceId, StringComparison.Ordinal))
            {
                throw new StationStepException(step, $"certificate device ID '{DeviceText.Clean(certId ?? "(none)")}' differs from the device's '{info.DeviceId}'");
            }

            Log(step, $"device proved possession of the key of serial {o.Serial} ({DeviceProtocol.ChallengeBytes}-byte random challenge)");

            // finalize: debug lock.
            step = StationSteps.Finalize;
            var final = await device.CallAsync(step, new DeviceRequest { Op = DeviceProtocol.Ops.Finalize }, cancellationToken).ConfigureAwait(false);
            if (final.Locked != true)
            {
                throw new StationStepException(step, "device did not confirm the debug lock");
            }

            Log(step, "debug lock set");
            return o with { Passed = true, Step = StationSteps.Done };
        }
        catch (StationStepException ex)
        {
            return Failed(o, ex.Step, ex.Message);
        }
        catch (OperationCanceledException)
        {
            return Failed(o, step, "cancelled");
        }
    }

    private static StationOutcome Failed(StationOutcome o, string step, string reason)
    {
        if (o.Serial is not null)
        {
            reason += $"; certificate {o.Serial} was issued but the unit failed: revoke it or rework the unit";
        }

        return o with { Passed = false, Step = step, Reason = reason };
    }

    private List<X509Certificate2> VerifyCertificate(StationRunOptions options, X509Certificate2 cert, byte[] csrSpki, X509Certificate2Collection caCerts)
    {
        const string step = StationSteps.Verify;
        string? certId = SerialNumberOf(cert.SubjectName);
        if (!string.Equals(certId, options.Label, StringComparison.Ordinal))
        {
            throw new StationStepException(step, $"certificate subject serialNumber is '{DeviceText.Clean(certId ?? "(none)")}', expected '{options.Label}'");
        }

        if (!cert.PublicKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(csrSpki))
        {
            throw new StationStepException(step, "certificate public key differs from the CSR's");
        }

        var roots = caCerts.Where(c => c.SubjectName.RawData.AsSpan().SequenceEqual(c.IssuerName.RawData)).ToList();
        var issuers = caCerts.Where(c => !roots.Contains(c)).ToList();
        if (issuers.Count == 0)
        {
            throw new StationStepException(step, "EST cacerts holds no issuing CA certificate");
        }

        if (options.PinnedRoot is { } pinned && !roots.Any(r => r.RawData.AsSpan().SequenceEqual(pinned.RawData)))
        {
            throw new StationStepException(step, $"EST cacerts does not hold the pinned root '{pinned.Subject}'");
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        if (options.PinnedRoot is { } root)
        {
            chain.ChainPolicy.CustomTrustStore.Add(root);
        }
        else
        {
            chain.ChainPolicy.CustomTrustStore.AddRange(roots.ToArray());
        }

        chain.ChainPolicy.ExtraStore.AddRange(issuers.ToArray());
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = _time.GetUtcNow().UtcDateTime;
        if (!chain.Build(cert))
        {
            string why = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct());
            throw new StationStepException(step, $"certificate does not chain to the issuing CA from EST cacerts: {why}");
        }

        var issuer = chain.ChainElements[1].Certificate;
        if (!issuers.Any(i => i.RawData.AsSpan().SequenceEqual(issuer.RawData)))
        {
            throw new StationStepException(step, $"certificate is issued by '{issuer.Subject}', not by an issuing CA from EST cacerts");
        }

        // What the device stores: the CAs between it and the root, issuer first (not the root itself).
        return chain.ChainElements.Skip(1).Take(chain.ChainElements.Count - 2).Select(e => e.Certificate).ToList();
    }

    private static async Task<T> Est<T>(Func<Task<T>> call, string what, CancellationToken cancellationToken)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (EstRefusedException ex)
        {
            throw new StationStepException(StationSteps.Enroll, $"EST {what} refused (HTTP {ex.Status}): {ex.Message}", ex);
        }
        catch (HttpRequestException ex)
        {
            throw new StationStepException(StationSteps.Enroll, $"EST {what} failed: {ex.Message}{(ex.InnerException is { } i ? " (" + i.Message + ")" : string.Empty)}", ex);
        }
        catch (TaskCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new StationStepException(StationSteps.Enroll, $"EST {what} timed out", ex);
        }
        catch (CryptographicException ex)
        {
            throw new StationStepException(StationSteps.Enroll, $"EST {what} answer is malformed: {ex.Message}", ex);
        }
    }

    private static byte[] FromBase64(string step, string field, string? value)
    {
        try
        {
            return DeviceProtocol.FromBase64(field, value);
        }
        catch (DeviceProtocolException ex)
        {
            throw new StationStepException(step, "device answer: " + ex.Message, ex);
        }
    }

    /// <summary>The subject serialNumber (2.5.4.5) attribute, or null.</summary>
    internal static string? SerialNumberOf(X500DistinguishedName name)
    {
        foreach (var rdn in name.EnumerateRelativeDistinguishedNames())
        {
            if (!rdn.HasMultipleElements && rdn.GetSingleElementType().Value == SerialNumberOid)
            {
                return rdn.GetSingleElementValue();
            }
        }

        return null;
    }

    private void Log(string step, string message)
    {
        progress.WriteLine($"station: [{step}] {message}");
        progress.Flush();
    }
}
