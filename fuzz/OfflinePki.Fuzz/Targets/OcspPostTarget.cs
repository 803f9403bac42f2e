using OfflinePki.Ocsp;

namespace OfflinePki.Fuzz;

/// <summary>OCSP POST body: a DER OCSPRequest (RFC 6960 §4.1.1) into <see cref="OcspRequestParser.Parse"/>.</summary>
internal sealed class OcspPostTarget : FuzzTarget
{
    public override string Name => "ocsp-post";

    public override void Run(byte[] data) => Parse(data);

    internal static void Parse(byte[] der)
    {
        try
        {
            _ = OcspRequestParser.Parse(der);
        }
        catch (OcspMalformedRequestException)
        {
        }
    }
}
