using System.Numerics;
using NUnit.Framework;
using OfflinePki.Crl;
using OfflinePki.Keys;
using OfflinePki.Revocation;
using OfflinePki.Tests.Factory;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Mirror;

public class CrlTests
{
    private static CrlPublisher Publisher(MirrorTestBed bed, out ISigningKey key)
    {
        key = SoftwareKeyLoader.Load(bed.Pki.PathOf("issuing-ca-F1.key"));
        return new CrlPublisher(CrlIssuer.FromCertificate(bed.IssuingCa), key, bed.Registry, TimeProvider.System, TimeSpan.FromDays(7), TimeSpan.FromHours(1));
    }

    [Test]
    public void Openssl_verifies_the_crl_and_reads_number_entries_and_reasons()
    {
        using var bed = new MirrorTestBed();
        var compromised = bed.Issue();
        var superseded = bed.Issue();
        var unspecified = bed.Issue();
        var good = bed.Issue();
        var invalidity = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
        bed.Registry.Revoke("F1", compromised.Serial, CrlReason.KeyCompromise, invalidity, "test");
        bed.Registry.Revoke("F1", superseded.Serial, CrlReason.Superseded, null, "test");
        bed.Registry.Revoke("F1", unspecified.Serial, CrlReason.Unspecified, null, "test");

        var publisher = Publisher(bed, out _);
        var crl = publisher.GetCurrent();
        Assert.That(crl.EntryCount, Is.EqualTo(3));
        Assert.That(publisher.GetCurrent(), Is.SameAs(crl), "unchanged revocations reuse the CRL");
        var der = Path.Combine(bed.DataDirectory, "f1.crl");
        File.WriteAllBytes(der, crl.Der);

        var text = Tool.OpenSsl("crl", "-inform", "DER", "-in", der, "-noout", "-text", "-CAfile", bed.Pki.PathOf("issuing-ca-F1.crt")).EnsureSuccess("openssl crl");
        var all = text.StdOut + text.StdErr;
        TestContext.Out.WriteLine(all);
        Assert.That(all, Does.Contain("verify OK"));
        Assert.That(all, Does.Contain("Version 2"));
        Assert.That(all, Does.Match(@"X509v3 CRL Number:\s*\n\s*1\b"));
        Assert.That(all, Does.Contain("X509v3 Authority Key Identifier"));
        Assert.That(all, Does.Contain(compromised.SerialHex).And.Contain(superseded.SerialHex).And.Contain(unspecified.SerialHex));
        Assert.That(all, Does.Not.Contain(good.SerialHex));
        Assert.That(all, Does.Contain("Key Compromise").And.Contain("Superseded"));
        Assert.That(all, Does.Contain("Invalidity Date").And.Contain("Jan  2 03:04:05 2026 GMT"));
        Assert.That(all, Does.Not.Contain("Unspecified"), "unspecified is encoded by omitting reasonCode (RFC 5280 §5.3.1)");

        // BouncyCastle, a second reader, agrees on number, entries, reasons and the invalidity date.
        var bc = BouncyOracle.Crl(crl.Der, bed.IssuingCa);
        Assert.That(bc.CrlNumber, Is.EqualTo(crl.CrlNumber).And.EqualTo(new BigInteger(1)));
        Assert.That(bc.DeltaBaseCrlNumber, Is.Null);
        Assert.That(bc.ThisUpdate, Is.EqualTo(crl.ThisUpdate));
        Assert.That(bc.NextUpdate, Is.EqualTo(crl.NextUpdate));
        Assert.That(bc.Entries, Has.Count.EqualTo(3));
        Assert.That(bc.Entry(compromised.Serial)!.Reason, Is.EqualTo((int)CrlReason.KeyCompromise));
        Assert.That(bc.Entry(compromised.Serial)!.InvalidityDate, Is.EqualTo(invalidity));
        Assert.That(bc.Entry(superseded.Serial)!.Reason, Is.EqualTo((int)CrlReason.Superseded));
        Assert.That(bc.Entry(unspecified.Serial)!.Reason, Is.Null);
        Assert.That(bc.Entry(good.Serial), Is.Null);

        // A new revocation makes a new CRL with a higher number.
        bed.Registry.Revoke("F1", good.Serial, CrlReason.CessationOfOperation, null, "test");
        var next = publisher.GetCurrent();
        Assert.That(next.CrlNumber, Is.GreaterThan(crl.CrlNumber));
        Assert.That(next.EntryCount, Is.EqualTo(4));
        var bcNext = BouncyOracle.Crl(next.Der, bed.IssuingCa);
        Assert.That(bcNext.CrlNumber, Is.EqualTo(next.CrlNumber));
        Assert.That(bcNext.Entry(good.Serial)!.Reason, Is.EqualTo((int)CrlReason.CessationOfOperation));
    }

    [Test]
    public void Openssl_verify_with_crl_check_says_revoked_or_ok()
    {
        using var bed = new MirrorTestBed();
        var revoked = bed.Issue();
        var good = bed.Issue();
        bed.Registry.Revoke("F1", revoked.Serial, CrlReason.KeyCompromise, null, "test");
        var crl = Publisher(bed, out _).GetCurrent();
        var pem = Path.Combine(bed.DataDirectory, "crl.pem");
        File.WriteAllText(pem, System.Security.Cryptography.PemEncoding.WriteString("X509 CRL", crl.Der));

        string[] Verify(string cert) => ["verify", "-crl_check", "-CRLfile", pem, "-CAfile", bed.Pki.PathOf("root-ca.crt"), "-untrusted", bed.Pki.PathOf("issuing-ca-F1.crt"), cert];
        var bad = Tool.OpenSsl(Verify(revoked.PemPath));
        Assert.That(bad.ExitCode, Is.Not.Zero);
        Assert.That(bad.StdOut + bad.StdErr, Does.Contain("certificate revoked"));
        var ok = Tool.OpenSsl(Verify(good.PemPath));
        Assert.That(ok.StdOut + ok.StdErr, Does.Contain(": OK"), ok.StdErr);
        Assert.That(ok.ExitCode, Is.Zero);

        // BouncyCastle agrees: X509Crl.IsRevoked says the same for both certificates.
        var bc = BouncyOracle.Crl(crl.Der, bed.IssuingCa);
        Assert.That(bc.Raw.IsRevoked(BouncyOracle.Certificate(revoked.Der, bed.IssuingCa)), Is.True);
        Assert.That(bc.Raw.IsRevoked(BouncyOracle.Certificate(good.Der, bed.IssuingCa)), Is.False);
    }

    [Test]
    public void Crl_numbers_stay_monotonic_across_a_registry_reopen()
    {
        using var bed = new MirrorTestBed();
        var first = Publisher(bed, out _).GetCurrent().CrlNumber;
        bed.Registry.Dispose();
        using var reopened = new Registry.MirrorRegistry(bed.Registry.DatabasePath, TimeProvider.System);
        var key = SoftwareKeyLoader.Load(bed.Pki.PathOf("issuing-ca-F1.key"));
        var second = new CrlPublisher(CrlIssuer.FromCertificate(bed.IssuingCa), key, reopened, TimeProvider.System, TimeSpan.FromDays(7), TimeSpan.FromHours(1)).GetCurrent();
        Assert.That(second.CrlNumber, Is.GreaterThan(first));
        var der = Path.Combine(bed.DataDirectory, "second.crl");
        File.WriteAllBytes(der, second.Der);
        var text = Tool.OpenSsl("crl", "-inform", "DER", "-in", der, "-noout", "-text").EnsureSuccess("openssl crl");
        Assert.That(text.StdOut, Does.Contain("No Revoked Certificates"));
        var bc = BouncyOracle.Crl(second.Der, bed.IssuingCa);
        Assert.That(bc.CrlNumber, Is.EqualTo(second.CrlNumber).And.GreaterThan(first));
        Assert.That(bc.Entries, Is.Empty);
    }

    [Test]
    public void Lints_stop_a_bad_crl_before_the_signer()
    {
        using var bed = new MirrorTestBed();
        var signer = new CountingSigningKey(SoftwareKeyLoader.Load(bed.Pki.PathOf("issuing-ca-F1.key")));
        var issuer = CrlIssuer.FromCertificate(bed.IssuingCa);
        var now = new DateTimeOffset(2026, 11, 22, 0, 0, 0, TimeSpan.Zero);
        var builder = new CrlBuilder();
        var a = new RevokedEntry([0x01, 0x02], now, CrlReason.KeyCompromise, null);

        var ex = Assert.Throws<CrlLintException>(() => builder.Build(issuer, signer, 1, now, now.AddHours(-1), []));
        Assert.That(ex!.Message, Does.Contain("RFC 5280 §5.1.2.5"));
        ex = Assert.Throws<CrlLintException>(() => builder.Build(issuer, signer, 1, now, now.AddDays(1), [a, a]));
        Assert.That(ex!.Message, Does.Contain("appears more than once").And.Contain("§5.1.2.6"));
        ex = Assert.Throws<CrlLintException>(() => builder.Build(issuer, signer, 1, now, now.AddDays(1), [a with { Reason = CrlReason.RemoveFromCrl }]));
        Assert.That(ex!.Message, Does.Contain("removeFromCRL").And.Contain("§5.3.1"));
        ex = Assert.Throws<CrlLintException>(() => builder.Build(issuer, signer, BigInteger.Pow(2, 160), now, now.AddDays(1), []));
        Assert.That(ex!.Message, Does.Contain("§5.2.3"));
        ex = Assert.Throws<CrlLintException>(() => builder.Build(issuer, signer, -1, now, now.AddDays(1), []));
        Assert.That(ex!.Message, Does.Contain("negative"));
        ex = Assert.Throws<CrlLintException>(() => builder.Build(issuer, signer, 1, now, now.AddDays(1), [a with { Serial = [0x80] }]));
        Assert.That(ex!.Message, Does.Contain("not positive"));
        ex = Assert.Throws<CrlLintException>(() => builder.Build(issuer, signer, 1, now, now.AddDays(1), [a with { Serial = [0x02] }, a with { Serial = [0x01] }]));
        Assert.That(ex!.Message, Does.Contain("out of order"));
        Assert.That(signer.Count, Is.Zero);

        builder.Build(issuer, signer, 7, now, now.AddDays(1), [a]);
        Assert.That(signer.Count, Is.EqualTo(1));
    }

    [Test]
    public void A_crl_with_many_entries_is_streamed_and_verifies()
    {
        using var bed = new MirrorTestBed();
        var key = SoftwareKeyLoader.Load(bed.Pki.PathOf("issuing-ca-F1.key"));
        var now = DateTimeOffset.UtcNow;
        const int n = 20_000;
        IEnumerable<RevokedEntry> Entries()
        {
            for (int i = 1; i <= n; i++)
            {
                // Big-endian, fixed width, top bit clear: ascending octet order.
                yield return new RevokedEntry([0x40, (byte)(i >> 16), (byte)(i >> 8), (byte)i], now, (CrlReason)(i % 6), i % 3 == 0 ? now.AddDays(-1) : null);
            }
        }

        var crl = new CrlBuilder().Build(CrlIssuer.FromCertificate(bed.IssuingCa), key, 42, now, now.AddDays(7), Entries());
        Assert.That(crl.EntryCount, Is.EqualTo(n));
        var der = Path.Combine(bed.DataDirectory, "big.crl");
        File.WriteAllBytes(der, crl.Der);
        var text = Tool.OpenSsl("crl", "-inform", "DER", "-in", der, "-noout", "-text", "-CAfile", bed.Pki.PathOf("issuing-ca-F1.crt")).EnsureSuccess("openssl crl");
        Assert.That(text.StdErr + text.StdOut, Does.Contain("verify OK"));
        Assert.That(System.Text.RegularExpressions.Regex.Count(text.StdOut, "Serial Number:"), Is.EqualTo(n));
        var bc = BouncyOracle.Crl(crl.Der, bed.IssuingCa);
        Assert.That(bc.CrlNumber, Is.EqualTo(new BigInteger(42)));
        Assert.That(bc.Entries, Has.Count.EqualTo(n));
        Assert.That(bc.Entries.Count(e => e.Reason is null), Is.EqualTo(n / 6), "reason 0 (i % 6 == 0) is written by omission");
        Assert.That(bc.Entries.Count(e => e.InvalidityDate is not null), Is.EqualTo(n / 3));
    }

    [Test]
    public void Each_lint_cites_its_rfc_section()
    {
        Assert.That(CrlLints.All.Select(l => l.Citation), Has.All.StartsWith("RFC 5280 §"));
        Assert.That(Ocsp.OcspLints.All.Select(l => l.Citation), Has.All.StartsWith("RFC 6960 §"));
    }
}
