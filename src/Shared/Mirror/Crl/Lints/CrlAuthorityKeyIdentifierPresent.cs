using System.Formats.Asn1;
using OfflinePki.Asn1;

namespace OfflinePki.Crl;

/// <summary>RFC 5280 §5.2.1: conforming CRL issuers MUST include the authorityKeyIdentifier extension (with a keyIdentifier, as we always do).</summary>
public sealed class CrlAuthorityKeyIdentifierPresent : ICrlLint
{
    /// <inheritdoc />
    public string Name => "crl_authority_key_identifier_present";
    /// <inheritdoc />
    public string Citation => "RFC 5280 §5.2.1";

    /// <inheritdoc />
    public IEnumerable<string> Check(TbsCertListView tbs, bool fullCrl)
    {
        ArgumentNullException.ThrowIfNull(tbs);
        var ext = tbs.FindExtension(Oids.AuthorityKeyIdentifier);
        if (ext is null)
        {
            yield return "authorityKeyIdentifier is absent";
            yield break;
        }

        bool hasKeyId;
        try
        {
            var seq = new AsnReader(ext.Value, AsnEncodingRules.DER).ReadSequence();
            hasKeyId = seq.HasData && seq.PeekTag() == new Asn1Tag(TagClass.ContextSpecific, 0) && seq.ReadOctetString(new Asn1Tag(TagClass.ContextSpecific, 0)).Length > 0;
        }
        catch (AsnContentException)
        {
            hasKeyId = false;
        }

        if (!hasKeyId)
        {
            yield return "authorityKeyIdentifier has no keyIdentifier";
        }
    }
}
