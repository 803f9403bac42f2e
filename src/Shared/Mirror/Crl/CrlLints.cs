namespace OfflinePki.Crl;

/// <summary>The standard CRL lints, in the order they run.</summary>
public static class CrlLints
{
    /// <summary>All lints below.</summary>
    public static IReadOnlyList<ICrlLint> All { get; } =
    [
        new CrlVersionIsV2WhenExtensionsPresent(),
        new CrlNextUpdateAfterThisUpdate(),
        new CrlNumberPresentAndInRange(),
        new CrlAuthorityKeyIdentifierPresent(),
        new CrlSerialsPositiveAndUnique(),
        new CrlNoRemoveFromCrlInFullCrl(),
        new CrlDeltaIndicatorCriticalWithOlderBase(),
        new CrlNoFreshestCrlInDelta(),
        new CrlIssuingDistributionPointConsistent(),
    ];

    /// <summary>Runs <paramref name="lints"/> over <paramref name="tbs"/>.</summary>
    /// <exception cref="CrlLintException">At least one lint failed.</exception>
    public static void Enforce(IEnumerable<ICrlLint> lints, TbsCertListView tbs, bool fullCrl)
    {
        ArgumentNullException.ThrowIfNull(lints);
        ArgumentNullException.ThrowIfNull(tbs);
        var failures = new List<string>();
        foreach (var lint in lints)
        {
            foreach (var message in lint.Check(tbs, fullCrl))
            {
                failures.Add($"{lint.Name} ({lint.Citation}): {message}");
            }
        }

        if (failures.Count > 0)
        {
            throw new CrlLintException(failures);
        }
    }
}
