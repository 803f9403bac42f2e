using System.Formats.Asn1;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using OfflinePki.Asn1;
using OfflinePki.Keys;
using OfflinePki.Registry;
using OfflinePki.Revocation;

namespace OfflinePki.Crl;

/// <summary>The CRL issuer: the issuing CA's subject Name and key identifier, taken from its certificate.</summary>
/// <param name="SubjectName">DER of the issuing CA's subject Name (becomes the CRL issuer, RFC 5280 §5.1.2.3).</param>
/// <param name="KeyIdentifier">The CA's subjectKeyIdentifier (or SHA-1 of its public key when it has none); the CRL's AKI keyIdentifier (RFC 5280 §5.2.1).</param>
/// <param name="IssuerKeyHash">SHA-1 issuerKeyHash (RFC 6960 CertID) that keys the registry.</param>
public sealed record CrlIssuer(byte[] SubjectName, byte[] KeyIdentifier, byte[] IssuerKeyHash)
{
    /// <summary>Takes the issuer fields from the issuing CA certificate.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="issuingCa"/> is null.</exception>
    public static CrlIssuer FromCertificate(X509Certificate2 issuingCa)
    {
        ArgumentNullException.ThrowIfNull(issuingCa);
        var keyHash = IssuerHashes.KeyHash(issuingCa);
        var ski = issuingCa.Extensions.OfType<X509SubjectKeyIdentifierExtension>().FirstOrDefault();
        var keyId = ski is not null ? ski.SubjectKeyIdentifierBytes.ToArray() : keyHash;
        return new CrlIssuer(issuingCa.SubjectName.RawData, keyId, keyHash);
    }
}

/// <summary>A signed CRL.</summary>
/// <param name="Der">The DER CertificateList.</param>
/// <param name="CrlNumber">Its cRLNumber.</param>
/// <param name="ThisUpdate">thisUpdate (whole seconds, UTC).</param>
/// <param name="NextUpdate">nextUpdate (whole seconds, UTC).</param>
/// <param name="EntryCount">Number of revokedCertificates entries.</param>
public sealed record SignedCrl(byte[] Der, BigInteger CrlNumber, DateTimeOffset ThisUpdate, DateTimeOffset NextUpdate, long EntryCount);

/// <summary>
/// Builds full CRLs (RFC 5280 §5) in three steps: prepare the TBSCertList by streaming the revoked entries into
/// an <see cref="AsnWriter"/> (time and memory linear in the number of entries), lint the encoded TBSCertList,
/// then sign. A CRL that fails a lint never reaches the signer.
/// </summary>
public sealed class CrlBuilder
{
    private static readonly Asn1Tag Context0 = new(TagClass.ContextSpecific, 0, isConstructed: true);
    private readonly IReadOnlyList<ICrlLint> _lints;

    /// <summary>Creates a builder with the given lints (default: <see cref="CrlLints.All"/>).</summary>
    public CrlBuilder(IReadOnlyList<ICrlLint>? lints = null)
    {
        _lints = lints ?? CrlLints.All;
    }

    /// <summary>Prepares, lints and signs a full CRL.</summary>
    /// <param name="issuer">The issuing CA.</param>
    /// <param name="signer">The issuing CA's key (the mirror's clone); its public key must be the CA's.</param>
    /// <param name="crlNumber">cRLNumber (RFC 5280 §5.2.3): non-negative, at most 20 octets, never reused.</param>
    /// <param name="thisUpdate">thisUpdate.</param>
    /// <param name="nextUpdate">nextUpdate, after <paramref name="thisUpdate"/>.</param>
    /// <param name="entries">Revoked certificates sorted by serial octets, each serial once; streamed once.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="CrlLintException">The prepared CRL breaks a lint (e.g. nextUpdate not after thisUpdate, a duplicate serial).</exception>
    /// <exception cref="SigningKeyUnavailableException">The key cannot sign.</exception>
    public SignedCrl Build(CrlIssuer issuer, ISigningKey signer, BigInteger crlNumber, DateTimeOffset thisUpdate, DateTimeOffset nextUpdate, IEnumerable<RevokedEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(issuer);
        ArgumentNullException.ThrowIfNull(signer);
        ArgumentNullException.ThrowIfNull(entries);
        var tbs = PrepareTbs(issuer, signer.SignatureAlgorithmIdentifier, crlNumber, thisUpdate, nextUpdate, entries, out long count);
        CrlLints.Enforce(_lints, TbsCertListView.Parse(tbs), fullCrl: true);
        var signature = signer.Sign(tbs);

        // CertificateList  ::=  SEQUENCE  {
        //      tbsCertList          TBSCertList,
        //      signatureAlgorithm   AlgorithmIdentifier,
        //      signatureValue       BIT STRING  }
        var w = new AsnWriter(AsnEncodingRules.DER, tbs.Length + signature.Length + 64);
        using (w.PushSequence())
        {
            w.WriteEncodedValue(tbs);
            w.WriteEncodedValue(signer.SignatureAlgorithmIdentifier);
            w.WriteBitString(signature);
        }

        return new SignedCrl(w.Encode(), crlNumber, DerTime.Truncate(thisUpdate), DerTime.Truncate(nextUpdate), count);
    }

    /// <summary>Encodes the TBSCertList (no lints, no signature); exposed for lint tests and benchmarks.</summary>
    /// <param name="issuer">The issuing CA.</param>
    /// <param name="signatureAlgorithm">DER AlgorithmIdentifier of the signature that will be made.</param>
    /// <param name="crlNumber">cRLNumber.</param>
    /// <param name="thisUpdate">thisUpdate.</param>
    /// <param name="nextUpdate">nextUpdate.</param>
    /// <param name="entries">Revoked entries, streamed once.</param>
    /// <param name="count">Number of entries written.</param>
    /// <exception cref="ArgumentException">A serial is not minimal DER INTEGER content octets.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A time is before 1950.</exception>
    public static byte[] PrepareTbs(CrlIssuer issuer, ReadOnlySpan<byte> signatureAlgorithm, BigInteger crlNumber,
        DateTimeOffset thisUpdate, DateTimeOffset nextUpdate, IEnumerable<RevokedEntry> entries, out long count)
    {
        ArgumentNullException.ThrowIfNull(issuer);
        ArgumentNullException.ThrowIfNull(entries);
        count = 0;
        var w = new AsnWriter(AsnEncodingRules.DER, 4096);

        // TBSCertList  ::=  SEQUENCE  {
        //      version                 Version OPTIONAL,
        //                                   -- if present, MUST be v2
        //      signature               AlgorithmIdentifier,
        //      issuer                  Name,
        //      thisUpdate              Time,
        //      nextUpdate              Time OPTIONAL,
        //      revokedCertificates     SEQUENCE OF SEQUENCE  {
        //           userCertificate         CertificateSerialNumber,
        //           revocationDate          Time,
        //           crlEntryExtensions      Extensions OPTIONAL
        //                                    -- if present, version MUST be v2
        //                                }  OPTIONAL,
        //      crlExtensions           [0]  EXPLICIT Extensions OPTIONAL
        //                                    -- if present, version MUST be v2
        //                                }
        using (w.PushSequence())
        {
            w.WriteInteger(1); // v2
            w.WriteEncodedValue(signatureAlgorithm);
            w.WriteEncodedValue(issuer.SubjectName);
            DerTime.WriteTime(w, thisUpdate);
            DerTime.WriteTime(w, nextUpdate);

            using var e = entries.GetEnumerator();
            if (e.MoveNext())
            {
                using (w.PushSequence())
                {
                    do
                    {
                        WriteEntry(w, e.Current);
                        count++;
                    }
                    while (e.MoveNext());
                }
            }

            // Extensions  ::=  SEQUENCE SIZE (1..MAX) OF Extension
            using (w.PushSequence(Context0))
            using (w.PushSequence())
            {
                // AuthorityKeyIdentifier ::= SEQUENCE {
                //     keyIdentifier             [0] KeyIdentifier           OPTIONAL,
                //     authorityCertIssuer       [1] GeneralNames            OPTIONAL,
                //     authorityCertSerialNumber [2] CertificateSerialNumber OPTIONAL  }
                var aki = new AsnWriter(AsnEncodingRules.DER);
                using (aki.PushSequence())
                {
                    aki.WriteOctetString(issuer.KeyIdentifier, new Asn1Tag(TagClass.ContextSpecific, 0));
                }

                WriteExtension(w, Oids.AuthorityKeyIdentifier, aki);

                // CRLNumber ::= INTEGER (0..MAX)
                var number = new AsnWriter(AsnEncodingRules.DER);
                number.WriteInteger(crlNumber);
                WriteExtension(w, Oids.CrlNumber, number);
            }
        }

        return w.Encode();
    }

    private static void WriteEntry(AsnWriter w, RevokedEntry entry)
    {
        using (w.PushSequence())
        {
            w.WriteInteger(entry.Serial); // the stored serial is INTEGER content octets already (SerialNumber.Normalize)
            DerTime.WriteTime(w, entry.RevocationTime);
            bool hasReason = entry.Reason != CrlReason.Unspecified;
            if (hasReason || entry.InvalidityDate is not null)
            {
                using (w.PushSequence())
                {
                    if (hasReason)
                    {
                        // reasonCode ::= { CRLReason }   (RFC 5280 §5.3.1; omitted for unspecified)
                        var reason = new AsnWriter(AsnEncodingRules.DER);
                        reason.WriteEnumeratedValue(entry.Reason);
                        WriteExtension(w, Oids.CrlReasonCode, reason);
                    }

                    if (entry.InvalidityDate is { } invalidity)
                    {
                        // InvalidityDate ::=  GeneralizedTime   (RFC 5280 §5.3.2)
                        var date = new AsnWriter(AsnEncodingRules.DER);
                        DerTime.WriteGeneralizedTime(date, invalidity);
                        WriteExtension(w, Oids.InvalidityDate, date);
                    }
                }
            }
        }
    }

    // Extension  ::=  SEQUENCE  {
    //      extnID      OBJECT IDENTIFIER,
    //      critical    BOOLEAN DEFAULT FALSE,
    //      extnValue   OCTET STRING }
    private static void WriteExtension(AsnWriter w, string oid, AsnWriter value)
    {
        using (w.PushSequence())
        {
            w.WriteObjectIdentifier(oid);
            w.WriteOctetString(value.Encode());
        }
    }
}
