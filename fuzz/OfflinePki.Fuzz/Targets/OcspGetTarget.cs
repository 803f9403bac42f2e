using System.Text;
using OfflinePki.Ocsp;

namespace OfflinePki.Fuzz;

/// <summary>
/// OCSP GET (RFC 6960 Appendix A.1): the URL path segment after "/ocsp/" (Latin-1 of the input, as a raw request target
/// carries it) through <see cref="OcspRequestParser.DecodeGetPath"/> (what MirrorCaEndpoints calls), then the parser.
/// </summary>
internal sealed class OcspGetTarget : FuzzTarget
{
    public override string Name => "ocsp-get";

    public override void Run(byte[] data)
    {
        byte[] der;
        try
        {
            der = OcspRequestParser.DecodeGetPath(Encoding.Latin1.GetString(data));
        }
        catch (OcspMalformedRequestException)
        {
            return;
        }

        OcspPostTarget.Parse(der);
    }
}
