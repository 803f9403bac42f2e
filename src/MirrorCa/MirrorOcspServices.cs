using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using OfflinePki.Asn1;
using OfflinePki.Ocsp;
using OfflinePki.Registry;
using OfflinePki.Revocation;

namespace OfflinePki.MirrorCa;

/// <summary>OCSP wiring of the mirror: the responder, its pre-signing worker and the responder-certificate renewer.</summary>
public static class MirrorOcspServices
{
    /// <summary>
    /// Registers <see cref="OcspResponder"/> (also as <see cref="IOcspResponseSource"/>), with pre-signing over the
    /// registry file when <c>MirrorCa:Ocsp:PresignAll</c> is true, and the <see cref="OcspPresigner"/> and
    /// <see cref="OcspResponderRenewer"/> background services.
    /// </summary>
    public static IServiceCollection AddMirrorOcsp(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddSingleton(sp => new SqliteCertificateFeed(sp.GetRequiredService<MirrorRegistry>().DatabasePath));
        services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<MirrorCaOptions>>().Value.Ocsp;
            var responder = new OcspResponder(sp.GetRequiredService<MirrorFactories>().All.Select(f => f.Ocsp), sp.GetRequiredService<IRevocationSource>(),
                sp.GetRequiredService<TimeProvider>(), new OcspResponderSettings(o.Validity, o.NeverIssued, o.CacheDuration, o.MaxCacheEntries),
                sp.GetRequiredService<ILogger<OcspResponder>>());
            if (o.PresignAll)
            {
                responder.EnablePresigning(sp.GetRequiredService<SqliteCertificateFeed>(), new OcspPresignSettings(o.MaxCachedResponses, o.RefreshBefore, o.PollInterval));
            }

            return responder;
        });
        services.AddSingleton<IOcspResponseSource>(sp => sp.GetRequiredService<OcspResponder>());
        services.AddHostedService<OcspResponderRenewer>();
        services.AddHostedService<OcspPresigner>();
        return services;
    }
}

/// <summary>
/// Keeps the pre-signed OCSP responses current: loads the registry at start, re-signs at once what a revocation (of
/// this process or another) changed, and refreshes responses <c>Ocsp:RefreshBefore</c> ahead of their nextUpdate.
/// </summary>
public sealed partial class OcspPresigner : BackgroundService
{
    private readonly OcspResponder _responder;
    private readonly TimeSpan _interval;
    private readonly ILogger<OcspPresigner> _logger;

    /// <summary>Creates the worker.</summary>
    public OcspPresigner(OcspResponder responder, IOptions<MirrorCaOptions> options, ILogger<OcspPresigner> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _responder = responder;
        _interval = options.Value.Ocsp.PollInterval;
        _logger = logger;
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_responder.PresignStatistics is null)
        {
            return;
        }

        await Task.Yield();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                int signed = _responder.MaintainPresigned(stoppingToken);
                if (signed > 0 && _responder.PresignStatistics is { } s)
                {
                    LogSigned(signed, s.Certificates, s.Presigned, s.Complete);
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception ex)
            {
                LogFailed(ex);
            }

            await _responder.WaitForPresignWorkAsync(_interval, stoppingToken).ConfigureAwait(false);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "OCSP pre-signed {Signed} responses ({Certificates} certificates indexed, {Presigned} pre-signed, complete {Complete})")]
    private partial void LogSigned(int signed, long certificates, long presigned, bool complete);

    [LoggerMessage(Level = LogLevel.Error, Message = "OCSP pre-signing pass failed; retrying")]
    private partial void LogFailed(Exception ex);
}

/// <summary>
/// Renews each factory's delegated OCSP responder certificate (RFC 6960 §4.2.2.2) with the issuing CA key clone when it
/// is within <c>Ocsp:ResponderRenewBefore</c> of notAfter: a new certificate for the same responder key, valid
/// <c>Ocsp:ResponderValidity</c>, written to <c>{DataDirectory}/ocsp-responder-{factory}.crt</c> (write, then rename)
/// and switched to atomically. At start, a stored renewed certificate that outlives the configured one is used.
/// </summary>
public sealed partial class OcspResponderRenewer : BackgroundService
{
    private readonly OcspResponder _responder;
    private readonly MirrorFactories _factories;
    private readonly MirrorCaOptions _options;
    private readonly TimeProvider _time;
    private readonly ISerialNumberSource _serials;
    private readonly ILogger<OcspResponderRenewer> _logger;

    /// <summary>Creates the renewer.</summary>
    public OcspResponderRenewer(OcspResponder responder, MirrorFactories factories, IOptions<MirrorCaOptions> options, TimeProvider timeProvider,
        ILogger<OcspResponderRenewer> logger, ISerialNumberSource? serials = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _responder = responder;
        _factories = factories;
        _options = options.Value;
        _time = timeProvider;
        _serials = serials ?? new RandomSerialNumberSource();
        _logger = logger;
    }

    /// <summary>The file a renewed responder certificate of <paramref name="factoryId"/> is stored in.</summary>
    public static string StoredPath(string dataDirectory, string factoryId) => Path.Combine(dataDirectory, $"ocsp-responder-{factoryId}.crt");

    /// <summary>One check of every factory: adopt a stored renewal, renew what is due. Returns how many certificates were issued.</summary>
    public int CheckOnce()
    {
        int issued = 0;
        foreach (var f in _factories.All)
        {
            if (f.IssuingKey is null || f.ResponderKey is null)
            {
                continue;
            }

            var current = _responder.Issuers.First(i => i.RegistryKeyHashHex == f.Ocsp.RegistryKeyHashHex);
            var path = StoredPath(_options.DataDirectory, f.FactoryId);
            if (File.Exists(path))
            {
                try
                {
                    using var stored = X509CertificateLoader.LoadCertificateFromFile(path);
                    if (stored.NotAfter.ToUniversalTime() > current.ResponderNotAfter.UtcDateTime)
                    {
                        current = Switch(f, X509CertificateLoader.LoadCertificate(stored.RawData));
                    }
                }
                catch (Exception ex) when (ex is System.Security.Cryptography.CryptographicException or ArgumentException or IOException)
                {
                    LogStoredUnusable(ex, path);
                }
            }

            var now = _time.GetUtcNow();
            if (current.ResponderNotAfter - now > _options.Ocsp.ResponderRenewBefore)
            {
                continue;
            }

            using var previous = X509CertificateLoader.LoadCertificate(current.ResponderCertificate);
            var cert = OcspResponderCertificates.Issue(f.IssuingCa, f.IssuingKey, f.ResponderKey.PublicKey, previous.SubjectName,
                now, _options.Ocsp.ResponderValidity, _serials.Next());
            var tmp = path + ".tmp";
            File.WriteAllText(tmp, cert.ExportCertificatePem());
            File.Move(tmp, path, overwrite: true);
            var next = Switch(f, cert);
            issued++;
            LogRenewed(f.FactoryId, SerialNumber.ToHex(cert.SerialNumberBytes.ToArray()), next.ResponderNotAfter, path);
        }

        return issued;
    }

    private OcspIssuer Switch(LoadedFactory f, X509Certificate2 cert)
    {
        var issuer = new OcspIssuer(f.FactoryId, f.IssuingCa, cert, f.ResponderKey!);
        _responder.ReplaceIssuer(issuer);
        return issuer;
    }

    /// <summary>Runs the first check before the host serves (so a due renewal or a stored renewed certificate is in place), then starts the periodic checks.</summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        SafeCheck();
        return base.StartAsync(cancellationToken);
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.Ocsp.ResponderCheckInterval, _time);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            SafeCheck();
        }
    }

    private void SafeCheck()
    {
        try
        {
            CheckOnce();
        }
        catch (Exception ex) when (ex is System.Security.Cryptography.CryptographicException or IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException)
        {
            LogFailed(ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "OCSP responder certificate of factory {FactoryId} renewed: serial {Serial}, notAfter {NotAfter:O}, stored in {Path}")]
    private partial void LogRenewed(string factoryId, string serial, DateTimeOffset notAfter, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "stored OCSP responder certificate {Path} is unusable; keeping the configured one")]
    private partial void LogStoredUnusable(Exception ex, string path);

    [LoggerMessage(Level = LogLevel.Error, Message = "OCSP responder renewal check failed; retrying at the next interval")]
    private partial void LogFailed(Exception ex);
}
