using System.Buffers;
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
/// <param name="BaseCrlNumber">For a delta CRL, the cRLNumber of its base full CRL (deltaCRLIndicator, RFC 5280 §5.2.4); null for a full CRL.</param>
public sealed record SignedCrl(byte[] Der, BigInteger CrlNumber, DateTimeOffset ThisUpdate, DateTimeOffset NextUpdate, long EntryCount, BigInteger? BaseCrlNumber = null)
{
    /// <summary>True for a delta CRL.</summary>
    public bool IsDelta => BaseCrlNumber is not null;
}

/// <summary>Optional CRL extensions beyond AKI and cRLNumber.</summary>
/// <param name="DeltaBaseCrlNumber">Makes a delta CRL: the critical deltaCRLIndicator naming the base CRL's number (RFC 5280 §5.2.4). Null for a full CRL.</param>
/// <param name="FreshestCrlUrl">An http URL of the delta CRL, written as freshestCRL (RFC 5280 §5.2.6) into a full CRL; null for none.</param>
/// <param name="IssuingDistributionPointUrl">
/// Writes a critical issuingDistributionPoint (RFC 5280 §5.2.5) with this fullName URL and onlyContainsUserCerts TRUE, for
/// partitioned CRLs; null for none.
/// </param>
/// <param name="DeltaBaseCrl">
/// For a delta CRL: the DER CertificateList of the complete CRL this mirror issued and that <paramref name="DeltaBaseCrlNumber"/>
/// names. The delta lints (<see cref="DeltaCrlLints"/>, RFC 5280 §5.2.4) check the delta against it; a delta without it is refused.
/// </param>
public sealed record CrlExtras(BigInteger? DeltaBaseCrlNumber = null, string? FreshestCrlUrl = null, string? IssuingDistributionPointUrl = null,
    byte[]? DeltaBaseCrl = null)
{
    /// <summary>No extra extensions: a plain full CRL.</summary>
    public static CrlExtras None { get; } = new();
}

/// <summary>
/// Builds full CRLs (RFC 5280 §5) in three steps: prepare the TBSCertList by streaming the revoked entries into
/// an <see cref="AsnWriter"/> (time and memory linear in the number of entries), lint the encoded TBSCertList,
/// then sign. A CRL that fails a lint never reaches the signer.
/// </summary>
public sealed class CrlBuilder
{
    private static readonly Asn1Tag Context0 = new(TagClass.ContextSpecific, 0, isConstructed: true);
    private readonly IReadOnlyList<ICrlLint> _lints;
    private readonly IReadOnlyList<IDeltaCrlLint> _deltaLints;

    /// <summary>Creates a builder with the given lints (default: <see cref="CrlLints.All"/> and <see cref="DeltaCrlLints.All"/>).</summary>
    /// <param name="lints">Lints for every CRL, or null for <see cref="CrlLints.All"/>.</param>
    /// <param name="deltaLints">Lints of a delta against its base, or null for <see cref="DeltaCrlLints.All"/>.</param>
    public CrlBuilder(IReadOnlyList<ICrlLint>? lints = null, IReadOnlyList<IDeltaCrlLint>? deltaLints = null)
    {
        _lints = lints ?? CrlLints.All;
        _deltaLints = deltaLints ?? DeltaCrlLints.All;
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
        => Build(issuer, signer, crlNumber, thisUpdate, nextUpdate, entries, CrlExtras.None);

    /// <summary>Prepares, lints and signs a full or delta CRL with optional extensions.</summary>
    /// <param name="issuer">The issuing CA.</param>
    /// <param name="signer">The issuing CA's key.</param>
    /// <param name="crlNumber">cRLNumber (RFC 5280 §5.2.3); deltas and full CRLs share the sequence.</param>
    /// <param name="thisUpdate">thisUpdate.</param>
    /// <param name="nextUpdate">nextUpdate, after <paramref name="thisUpdate"/>.</param>
    /// <param name="entries">Entries sorted by serial octets; a delta may carry reason removeFromCRL (a released hold).</param>
    /// <param name="extras">deltaCRLIndicator, freshestCRL and issuingDistributionPoint, as wanted.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="CrlLintException">The prepared CRL breaks a lint (e.g. removeFromCRL in a full CRL; a delta without its issued base, whose base is not older, has another scope, or lists a revocation older than the base that the base lacks).</exception>
    /// <exception cref="SigningKeyUnavailableException">The key cannot sign.</exception>
    public SignedCrl Build(CrlIssuer issuer, ISigningKey signer, BigInteger crlNumber, DateTimeOffset thisUpdate, DateTimeOffset nextUpdate,
        IEnumerable<RevokedEntry> entries, CrlExtras extras)
    {
        ArgumentNullException.ThrowIfNull(issuer);
        ArgumentNullException.ThrowIfNull(signer);
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(extras);
        var tbs = PrepareTbs(issuer, signer.SignatureAlgorithmIdentifier, crlNumber, thisUpdate, nextUpdate, entries, extras, out long count);
        Lint(tbs, extras);
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

        return new SignedCrl(w.Encode(), crlNumber, DerTime.Truncate(thisUpdate), DerTime.Truncate(nextUpdate), count, extras.DeltaBaseCrlNumber);
    }

    // Every CRL goes through the CRL lints; a delta also through the delta lints against its base. All failures are
    // reported together, and nothing reaches the signer when there is one.
    private void Lint(byte[] tbs, CrlExtras extras)
    {
        bool full = extras.DeltaBaseCrlNumber is null;
        var view = TbsCertListView.Parse(tbs);
        var failures = new List<string>();
        foreach (var lint in _lints)
        {
            foreach (var message in lint.Check(view, full))
            {
                failures.Add($"{lint.Name} ({lint.Citation}): {message}");
            }
        }

        if (!full)
        {
            TbsCertListView? baseView = null;
            if (extras.DeltaBaseCrl is { } baseDer)
            {
                try
                {
                    baseView = TbsCertListView.ParseCertificateList(baseDer);
                }
                catch (AsnContentException ex)
                {
                    failures.Add($"crl_delta_base_is_issued_complete_crl (RFC 5280 §5.2.4): the base CRL is not a DER CertificateList: {ex.Message}");
                }
            }

            failures.AddRange(DeltaCrlLints.Collect(_deltaLints, view, baseView));
        }

        if (failures.Count > 0)
        {
            throw new CrlLintException(failures);
        }
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
        => PrepareTbs(issuer, signatureAlgorithm, crlNumber, thisUpdate, nextUpdate, entries, CrlExtras.None, out count);

    /// <summary>Encodes the TBSCertList with optional extensions (no lints, no signature).</summary>
    /// <param name="issuer">The issuing CA.</param>
    /// <param name="signatureAlgorithm">DER AlgorithmIdentifier of the signature that will be made.</param>
    /// <param name="crlNumber">cRLNumber.</param>
    /// <param name="thisUpdate">thisUpdate.</param>
    /// <param name="nextUpdate">nextUpdate.</param>
    /// <param name="entries">Revoked entries, streamed once.</param>
    /// <param name="extras">deltaCRLIndicator, freshestCRL, issuingDistributionPoint.</param>
    /// <param name="count">Number of entries written.</param>
    /// <exception cref="ArgumentException">A serial is not minimal DER INTEGER content octets.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A time is before 1950.</exception>
    public static byte[] PrepareTbs(CrlIssuer issuer, ReadOnlySpan<byte> signatureAlgorithm, BigInteger crlNumber,
        DateTimeOffset thisUpdate, DateTimeOffset nextUpdate, IEnumerable<RevokedEntry> entries, CrlExtras extras, out long count)
    {
        ArgumentNullException.ThrowIfNull(issuer);
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(extras);
        // revokedCertificates is encoded first, entry by entry, into a buffer that doubles as it grows. AsnWriter grows
        // its own buffer in 1 KiB steps (a copy per step: quadratic for a multi-megabyte CRL, which is what makes
        // CertificateRevocationListBuilder slow), so the entries never go through one big AsnWriter; the TBSCertList
        // writer is then sized for the whole result up front.
        byte[]? revoked = EncodeRevokedCertificates(entries, out count);
        var w = new AsnWriter(AsnEncodingRules.DER, (revoked?.Length ?? 0) + 4096);

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

            if (revoked is not null)
            {
                w.WriteEncodedValue(revoked);
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

                if (extras.DeltaBaseCrlNumber is { } baseNumber)
                {
                    // BaseCRLNumber ::= CRLNumber   (deltaCRLIndicator, critical, RFC 5280 §5.2.4)
                    var delta = new AsnWriter(AsnEncodingRules.DER);
                    delta.WriteInteger(baseNumber);
                    WriteExtension(w, Oids.DeltaCrlIndicator, delta, critical: true);
                }

                if (extras.IssuingDistributionPointUrl is { } idpUrl)
                {
                    // IssuingDistributionPoint ::= SEQUENCE {
                    //      distributionPoint          [0] DistributionPointName OPTIONAL,
                    //      onlyContainsUserCerts      [1] BOOLEAN DEFAULT FALSE, ... }   (critical, RFC 5280 §5.2.5)
                    var idp = new AsnWriter(AsnEncodingRules.DER);
                    using (idp.PushSequence())
                    {
                        WriteDistributionPointName(idp, idpUrl);
                        idp.WriteBoolean(true, new Asn1Tag(TagClass.ContextSpecific, 1));
                    }

                    WriteExtension(w, Oids.IssuingDistributionPoint, idp, critical: true);
                }

                if (extras.FreshestCrlUrl is { } freshest)
                {
                    // FreshestCRL ::= CRLDistributionPoints   (RFC 5280 §5.2.6)
                    // CRLDistributionPoints ::= SEQUENCE SIZE (1..MAX) OF DistributionPoint
                    // DistributionPoint ::= SEQUENCE { distributionPoint [0] DistributionPointName OPTIONAL, ... }
                    var fc = new AsnWriter(AsnEncodingRules.DER);
                    using (fc.PushSequence())
                    using (fc.PushSequence())
                    {
                        WriteDistributionPointName(fc, freshest);
                    }

                    WriteExtension(w, Oids.FreshestCrl, fc);
                }
            }
        }

        return w.Encode();
    }

    // revokedCertificates SEQUENCE OF SEQUENCE { ... }, or null when there are no entries (RFC 5280 §5.1.2.6: absent when empty).
    private static byte[]? EncodeRevokedCertificates(IEnumerable<RevokedEntry> entries, out long count)
    {
        count = 0;
        var content = new ArrayBufferWriter<byte>(64 * 1024);
        var one = new AsnWriter(AsnEncodingRules.DER, 128);
        foreach (var entry in entries)
        {
            one.Reset();
            WriteEntry(one, entry);
            int length = one.GetEncodedLength();
            if (!one.TryEncode(content.GetSpan(length), out int written))
            {
                throw new InvalidOperationException("entry encoding did not fit its own length");
            }

            content.Advance(written);
            count++;
        }

        if (count == 0)
        {
            return null;
        }

        // SEQUENCE tag and DER definite length (short form below 128, else 0x80 | number of length octets).
        int n = content.WrittenCount;
        int lengthOctets = n < 0x80 ? 0 : n <= 0xFF ? 1 : n <= 0xFFFF ? 2 : n <= 0xFFFFFF ? 3 : 4;
        var result = new byte[1 + 1 + lengthOctets + n];
        result[0] = 0x30;
        if (lengthOctets == 0)
        {
            result[1] = (byte)n;
        }
        else
        {
            result[1] = (byte)(0x80 | lengthOctets);
            for (int i = 0; i < lengthOctets; i++)
            {
                result[2 + i] = (byte)(n >> (8 * (lengthOctets - 1 - i)));
            }
        }

        content.WrittenSpan.CopyTo(result.AsSpan(2 + lengthOctets));
        return result;
    }

    // reasonCode extensions are the same bytes for every entry with a given reason; encode each once.
    private static readonly byte[]?[] ReasonExtensions = BuildReasonExtensions();

    private static byte[]?[] BuildReasonExtensions()
    {
        var table = new byte[]?[11];
        for (int i = 1; i < table.Length; i++)
        {
            if (!CrlReasons.IsDefined((CrlReason)i))
            {
                continue;
            }

            var reason = new AsnWriter(AsnEncodingRules.DER);
            reason.WriteEnumeratedValue((CrlReason)i);
            var ext = new AsnWriter(AsnEncodingRules.DER);
            WriteExtension(ext, Oids.CrlReasonCode, reason);
            table[i] = ext.Encode();
        }

        return table;
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
                        if ((int)entry.Reason is >= 0 and < 11 && ReasonExtensions[(int)entry.Reason] is { } cached)
                        {
                            w.WriteEncodedValue(cached);
                        }
                        else
                        {
                            var reason = new AsnWriter(AsnEncodingRules.DER);
                            reason.WriteEnumeratedValue(entry.Reason);
                            WriteExtension(w, Oids.CrlReasonCode, reason);
                        }
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
    private static void WriteExtension(AsnWriter w, string oid, AsnWriter value, bool critical = false)
    {
        using (w.PushSequence())
        {
            w.WriteObjectIdentifier(oid);
            if (critical)
            {
                w.WriteBoolean(true);
            }

            w.WriteOctetString(value.Encode());
        }
    }

    // distributionPoint [0] DistributionPointName ::= CHOICE { fullName [0] GeneralNames, ... }
    // GeneralName ::= CHOICE { ..., uniformResourceIdentifier [6] IA5String, ... }
    private static void WriteDistributionPointName(AsnWriter w, string url)
    {
        using (w.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
        using (w.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
        {
            w.WriteCharacterString(UniversalTagNumber.IA5String, url, new Asn1Tag(TagClass.ContextSpecific, 6));
        }
    }
}
