using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using OfflinePki.Asn1;

namespace OfflinePki.Orders;

/// <summary>
/// Verifies an OEM production order file: the CMS SignedData signature (RFC 5652 §5.6), the signer's chain to the OEM
/// root with the order-signing EKU (<see cref="Asn1.Oids.OrderSignerEku"/>) and its validity now, the JSON schema, the
/// order's factory, and that the order has not ended. Used by FactoryCa (import and sync) and by MirrorCa (order add).
/// Thread-safe.
/// </summary>
public sealed class ProductionOrderVerifier
{
    private readonly X509Certificate2 _root;
    private readonly string? _factoryId;
    private readonly TimeProvider _time;

    /// <summary>Creates the verifier.</summary>
    /// <param name="root">The OEM root (FactoryCa:RootCertificate / MirrorCa:RootCertificate); the only trust anchor.</param>
    /// <param name="factoryId">The accepting factory: an order naming another factory is refused. Null (the mirror) accepts any factoryId.</param>
    /// <param name="time">Clock for the signer's validity and the order's end.</param>
    /// <exception cref="ArgumentNullException"><paramref name="root"/> or <paramref name="time"/> is null.</exception>
    public ProductionOrderVerifier(X509Certificate2 root, string? factoryId, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(time);
        _root = root;
        _factoryId = factoryId;
        _time = time;
    }

    /// <summary>Verifies a signed order file and returns the order.</summary>
    /// <param name="signedOrder">DER CMS SignedData with the order JSON embedded (1..<see cref="ProductionOrder.MaxSignedBytes"/> bytes).</param>
    /// <returns>The verified order.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="signedOrder"/> is null.</exception>
    /// <exception cref="OrderRejectedException">
    /// <see cref="OrderFault.Malformed"/>: not DER CMS SignedData with embedded id-data and one signer, or a signer
    /// certificate or signer info that does not decode;
    /// <see cref="OrderFault.BadSignature"/>: the signature does not verify or the signer certificate is missing;
    /// <see cref="OrderFault.SignerNotValidNow"/>: the signer certificate is expired or not yet valid;
    /// <see cref="OrderFault.UntrustedSigner"/>: it does not chain to the root;
    /// <see cref="OrderFault.WrongEku"/>: it lacks the order-signing EKU;
    /// <see cref="OrderFault.Schema"/>: the JSON is malformed (the message names the field);
    /// <see cref="OrderFault.WrongFactory"/>: the order names another factory;
    /// <see cref="OrderFault.Expired"/>: the order's notAfter has passed.
    /// </exception>
    public ProductionOrder Verify(byte[] signedOrder) => VerifyCore(signedOrder, checkTime: true);

    /// <summary>
    /// Verifies who signed an order that was accepted in the past (e.g. read back from a factory journal): the signature,
    /// the chain to the root and the order-signing EKU, and the schema; neither the signer's validity nor the order's end
    /// is checked against the clock, and the factory is not checked.
    /// </summary>
    /// <param name="signedOrder">DER CMS SignedData with the order JSON embedded.</param>
    /// <returns>The order.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="signedOrder"/> is null.</exception>
    /// <exception cref="OrderRejectedException">As <see cref="Verify"/>, except <see cref="OrderFault.SignerNotValidNow"/>, <see cref="OrderFault.WrongFactory"/> and <see cref="OrderFault.Expired"/>.</exception>
    public ProductionOrder VerifyOrigin(byte[] signedOrder) => VerifyCore(signedOrder, checkTime: false);

    private ProductionOrder VerifyCore(byte[] signedOrder, bool checkTime)
    {
        ArgumentNullException.ThrowIfNull(signedOrder);
        var cms = ProductionOrder.DecodeCms(signedOrder);
        try
        {
            return VerifyDecoded(cms, signedOrder, checkTime);
        }
        catch (CryptographicException ex)
        {
            // SignedCms decodes the signer certificate, its names, extensions and the signer info lazily: a malformed one
            // surfaces here, not in Decode (found by fuzzing, fuzz/crashes/order-cms).
            throw new OrderRejectedException(OrderFault.Malformed,
                "the order's signer certificate or signer info does not decode (RFC 5652 §5.3, RFC 5280 §4.1): " + ex.Message);
        }
    }

    private ProductionOrder VerifyDecoded(SignedCms cms, byte[] signedOrder, bool checkTime)
    {
        var signer = cms.SignerInfos[0];
        var cert = signer.Certificate;
        if (cert is null)
        {
            throw new OrderRejectedException(OrderFault.BadSignature, "the order's CMS does not carry its signer certificate (sign without -nocerts)");
        }

        using (var ec = cert.GetECDsaPublicKey())
        {
            // Issue 16 finding 5: an ECDSA SignerInfo signature must be strict DER before the runtime reads it.
            if (ec is not null && !EcdsaSignatureDer.IsStrict(signer.GetSignature(), ec))
            {
                throw new OrderRejectedException(OrderFault.BadSignature,
                    $"the order signature by '{cert.Subject}' is not a strict DER Ecdsa-Sig-Value (RFC 3279 §2.2.3)");
            }
        }

        try
        {
            signer.CheckSignature(verifySignatureOnly: true);
        }
        catch (CryptographicException ex)
        {
            throw new OrderRejectedException(OrderFault.BadSignature, $"the order signature by '{cert.Subject}' does not verify (RFC 5652 §5.6): {ex.Message}");
        }

        var now = _time.GetUtcNow();
        var notBefore = new DateTimeOffset(cert.NotBefore.ToUniversalTime(), TimeSpan.Zero);
        var notAfter = new DateTimeOffset(cert.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        if (checkTime && (now < notBefore || now > notAfter))
        {
            throw new OrderRejectedException(OrderFault.SignerNotValidNow,
                $"the order signer '{cert.Subject}' is valid {notBefore:O}..{notAfter:O}, not now ({now:O})");
        }

        using (var chain = new X509Chain())
        {
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(_root);
            foreach (var extra in cms.Certificates)
            {
                chain.ChainPolicy.ExtraStore.Add(extra);
            }

            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.VerificationTime = now.UtcDateTime;
            chain.ChainPolicy.VerificationTimeIgnored = false;
            if (!checkTime)
            {
                chain.ChainPolicy.VerificationFlags = X509VerificationFlags.IgnoreNotTimeValid;
            }

            chain.ChainPolicy.DisableCertificateDownloads = true;
            bool ok = chain.Build(cert);
            if (!ok || !chain.ChainElements[^1].Certificate.RawDataMemory.Span.SequenceEqual(_root.RawDataMemory.Span))
            {
                var why = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct());
                throw new OrderRejectedException(OrderFault.UntrustedSigner,
                    $"the order signer '{cert.Subject}' does not chain to the OEM root '{_root.Subject}'{(why.Length > 0 ? ": " + why : string.Empty)}");
            }
        }

        bool orderSigning = cert.Extensions.OfType<X509EnhancedKeyUsageExtension>()
            .Any(e => e.EnhancedKeyUsages.Cast<Oid>().Any(o => o.Value == Oids.OrderSignerEku));
        if (!orderSigning)
        {
            throw new OrderRejectedException(OrderFault.WrongEku,
                $"the order signer '{cert.Subject}' lacks the order-signing extended key usage {Oids.OrderSignerEku} (RFC 5280 §4.2.1.12); only the OEM order signer may sign orders");
        }

        var order = ProductionOrder.Parse(cms.ContentInfo.Content, signedOrder);
        if (!checkTime)
        {
            return order;
        }

        if (_factoryId is not null && order.FactoryId is not null && !string.Equals(order.FactoryId, _factoryId, StringComparison.Ordinal))
        {
            throw new OrderRejectedException(OrderFault.WrongFactory, $"order {order.OrderId} is for factory {order.FactoryId}, this is factory {_factoryId}");
        }

        if (now > order.NotAfter)
        {
            throw new OrderRejectedException(OrderFault.Expired, $"order {order.OrderId} ended at {order.NotAfter:O} (now {now:O})");
        }

        return order;
    }
}
