using System.Text.RegularExpressions;
using OfflinePki.Enrollment;
using OfflinePki.Factory;

namespace OfflinePki.Fuzz;

/// <summary>EST body decoding (RFC 7030 §4.2.1, <see cref="CsrIntake.DecodeBody"/>, as EstEndpoints calls it) and CSR intake.</summary>
internal sealed class EstTarget : FuzzTarget
{
    private static readonly CsrIntake Intake = new(new Regex("^[A-Za-z0-9-]{1,64}$", RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100)));

    public override string Name => "est";

    public override void Run(byte[] data)
    {
        byte[] der;
        try
        {
            der = CsrIntake.DecodeBody(data);
        }
        catch (EnrollmentRejectedException)
        {
            return;
        }

        try
        {
            _ = Intake.Validate(der);
        }
        catch (EnrollmentRejectedException)
        {
        }

        try
        {
            _ = Intake.ReadServerKeyGenRequest(der);
        }
        catch (EnrollmentRejectedException)
        {
        }
    }
}
