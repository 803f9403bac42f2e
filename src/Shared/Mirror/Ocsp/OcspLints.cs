namespace OfflinePki.Ocsp;

/// <summary>The standard OCSP response lints.</summary>
public static class OcspLints
{
    /// <summary>All lints.</summary>
    public static IReadOnlyList<IOcspLint> All { get; } =
    [
        new OcspResponsesNotEmpty(),
        new OcspResponderIdIsSha1KeyHash(),
        new OcspThisUpdateNotAfterProducedAt(),
        new OcspNextUpdateAfterThisUpdate(),
        new OcspRevocationTimeNotAfterThisUpdate(),
        new OcspNonceEchoedWhenRequested(),
        new OcspExtendedRevokeWhenNeverIssuedIsRevoked(),
        new OcspResponderCertificateValidAtProducedAt(),
        new OcspNonceLengthWithinRfc8954(),
    ];

    /// <summary>Runs the lints.</summary>
    /// <exception cref="OcspLintException">A lint failed.</exception>
    public static void Enforce(IReadOnlyList<IOcspLint> lints, OcspResponseDraft draft)
    {
        ArgumentNullException.ThrowIfNull(lints);
        ArgumentNullException.ThrowIfNull(draft);
        List<string>? failures = null;
        foreach (var lint in lints)
        {
            if (lint.Check(draft) is { } message)
            {
                (failures ??= []).Add($"{lint.Name} ({lint.Citation}): {message}");
            }
        }

        if (failures is not null)
        {
            throw new OcspLintException(failures);
        }
    }
}
