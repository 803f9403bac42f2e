namespace OfflinePki.Asn1;

/// <summary>Object identifiers used across the product, named as in their defining RFCs.</summary>
public static class Oids
{
    /// <summary>
    /// Our private arc, allocated under the ITU-T X.667 UUID arc (2.25), which needs no registration:
    /// 2.25.&lt;UUID d5a1c2e0-6f1b-4b5e-9a57-3c0e8f1d7a42 as a decimal integer&gt;.
    /// </summary>
    public const string OfflinePkiArc = "2.25.283822409315536431916575349474893134402";

    /// <summary>Extended key usage for the journal signer: signs journal checkpoints, never certificates.</summary>
    public const string JournalSignerEku = OfflinePkiArc + ".1.1";

    /// <summary>Extended key usage for the mirror's receipt (countersignature) key.</summary>
    public const string MirrorReceiptEku = OfflinePkiArc + ".1.2";

    /// <summary>Extended key usage for the OEM's production-order signer: signs order files (CMS), never certificates.</summary>
    public const string OrderSignerEku = OfflinePkiArc + ".1.3";

    /// <summary>id-kp-OCSPSigning, RFC 5280 §4.2.1.12.</summary>
    public const string OcspSigningEku = "1.3.6.1.5.5.7.3.9";

    /// <summary>id-kp-clientAuth, RFC 5280 §4.2.1.12.</summary>
    public const string ClientAuthEku = "1.3.6.1.5.5.7.3.2";

    /// <summary>id-kp-serverAuth, RFC 5280 §4.2.1.12.</summary>
    public const string ServerAuthEku = "1.3.6.1.5.5.7.3.1";

    /// <summary>
    /// CSR attribute carrying the operator id (id-offlinepki-at-operatorId, our arc + ".3.1"): a PKCS#10 attribute
    /// (RFC 2986 §4.1) whose single value is a UTF8String or PrintableString of at most 64 printable ASCII characters.
    /// The X-Operator-Id header wins when both are given; when both are given they must agree.
    /// </summary>
    public const string OperatorIdAttribute = OfflinePkiArc + ".3.1";

    /// <summary>Matter vendor id DN attribute (Matter Core Specification §6.5.6.1): UTF8String of 4 upper-case hex digits.</summary>
    public const string MatterVendorId = "1.3.6.1.4.1.37244.2.1";

    /// <summary>Matter product id DN attribute (Matter Core Specification §6.5.6.1): UTF8String of 4 upper-case hex digits.</summary>
    public const string MatterProductId = "1.3.6.1.4.1.37244.2.2";

    /// <summary>id-pkix-ocsp-nocheck, RFC 6960 §4.2.2.2.1.</summary>
    public const string OcspNoCheck = "1.3.6.1.5.5.7.48.1.5";

    /// <summary>id-pkix-ocsp-basic, RFC 6960 §4.2.1.</summary>
    public const string OcspBasic = "1.3.6.1.5.5.7.48.1.1";

    /// <summary>id-pkix-ocsp-nonce, RFC 6960 §4.4.1.</summary>
    public const string OcspNonce = "1.3.6.1.5.5.7.48.1.2";

    /// <summary>id-pkix-ocsp-extended-revoke, RFC 6960 §4.4.8.</summary>
    public const string OcspExtendedRevoke = "1.3.6.1.5.5.7.48.1.9";

    /// <summary>id-ad-ocsp, RFC 5280 §4.2.2.1.</summary>
    public const string AdOcsp = "1.3.6.1.5.5.7.48.1";

    /// <summary>id-ad-caIssuers, RFC 5280 §4.2.2.1.</summary>
    public const string AdCaIssuers = "1.3.6.1.5.5.7.48.2";

    /// <summary>id-on-hardwareModuleName, RFC 4108 §5.</summary>
    public const string HardwareModuleName = "1.3.6.1.5.5.7.8.4";

    /// <summary>Subject serialNumber attribute (X.520), used for the IEEE 802.1AR device serial.</summary>
    public const string SerialNumberAttribute = "2.5.4.5";

    /// <summary>Certificate and CRL extensions, RFC 5280 §4.2 and §5.2.</summary>
    public const string SubjectKeyIdentifier = "2.5.29.14";
    /// <summary>RFC 5280 §4.2.1.3.</summary>
    public const string KeyUsage = "2.5.29.15";
    /// <summary>RFC 5280 §4.2.1.6.</summary>
    public const string SubjectAltName = "2.5.29.17";
    /// <summary>RFC 5280 §4.2.1.9.</summary>
    public const string BasicConstraints = "2.5.29.19";
    /// <summary>RFC 5280 §5.2.3.</summary>
    public const string CrlNumber = "2.5.29.20";
    /// <summary>RFC 5280 §5.3.1.</summary>
    public const string CrlReasonCode = "2.5.29.21";
    /// <summary>RFC 5280 §5.3.2.</summary>
    public const string InvalidityDate = "2.5.29.24";
    /// <summary>RFC 5280 §5.2.4.</summary>
    public const string DeltaCrlIndicator = "2.5.29.27";
    /// <summary>RFC 5280 §5.2.5.</summary>
    public const string IssuingDistributionPoint = "2.5.29.28";
    /// <summary>RFC 5280 §4.2.1.13.</summary>
    public const string CrlDistributionPoints = "2.5.29.31";
    /// <summary>RFC 5280 §4.2.1.1.</summary>
    public const string AuthorityKeyIdentifier = "2.5.29.35";
    /// <summary>RFC 5280 §4.2.1.12.</summary>
    public const string ExtendedKeyUsage = "2.5.29.37";
    /// <summary>RFC 5280 §4.2.1.15 / §5.2.6.</summary>
    public const string FreshestCrl = "2.5.29.46";
    /// <summary>RFC 5280 §4.2.2.1.</summary>
    public const string AuthorityInfoAccess = "1.3.6.1.5.5.7.1.1";

    /// <summary>Key and signature algorithms (RFC 5480, RFC 5758, RFC 8017).</summary>
    public const string EcPublicKey = "1.2.840.10045.2.1";
    /// <summary>secp256r1 / P-256, RFC 5480 §2.1.1.1.</summary>
    public const string Secp256r1 = "1.2.840.10045.3.1.7";
    /// <summary>secp384r1 / P-384, RFC 5480 §2.1.1.1.</summary>
    public const string Secp384r1 = "1.3.132.0.34";
    /// <summary>rsaEncryption, RFC 8017.</summary>
    public const string RsaEncryption = "1.2.840.113549.1.1.1";
    /// <summary>ecdsa-with-SHA256, RFC 5758 §3.2.</summary>
    public const string EcdsaWithSha256 = "1.2.840.10045.4.3.2";
    /// <summary>ecdsa-with-SHA384, RFC 5758 §3.2.</summary>
    public const string EcdsaWithSha384 = "1.2.840.10045.4.3.3";
    /// <summary>sha256WithRSAEncryption, RFC 8017.</summary>
    public const string Sha256WithRsa = "1.2.840.113549.1.1.11";
    /// <summary>id-sha1 (for OCSP CertID only), RFC 3279.</summary>
    public const string Sha1 = "1.3.14.3.2.26";
    /// <summary>id-sha256, RFC 5754.</summary>
    public const string Sha256 = "2.16.840.1.101.3.4.2.1";
}
