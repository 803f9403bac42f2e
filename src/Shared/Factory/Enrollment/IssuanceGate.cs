using OfflinePki.Factory;
namespace OfflinePki.Enrollment;

/// <summary>
/// A check <see cref="EnrollmentService"/> makes before it signs anything (e.g. bounded divergence from the mirror).
/// Must be cheap: it runs on every enrollment.
/// </summary>
public interface IIssuanceGate
{
    /// <summary>Returns when issuance may proceed; throws when the line is stopped.</summary>
    /// <exception cref="EnrollmentUnavailableException">Issuance is stopped; the message says why (EST answers 503).</exception>
    void EnsureOpen();
}
