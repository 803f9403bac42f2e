namespace OfflinePki.Issuance;

/// <summary>
/// The profiles one issuing CA serves, by name, with a default. Immutable; names compare ordinally and are unique.
/// </summary>
public sealed class CertificateProfileSet : IReadOnlyCollection<CertificateProfile>
{
    private readonly Dictionary<string, CertificateProfile> _byName;
    private readonly CertificateProfile[] _ordered;

    /// <summary>Creates the set; every profile is checked with <see cref="CertificateProfile.EnsureValid"/>.</summary>
    /// <param name="profiles">At least one profile, unique names.</param>
    /// <param name="defaultName">The profile used when a request names none; null or empty for the first.</param>
    /// <exception cref="ArgumentNullException"><paramref name="profiles"/> is null.</exception>
    /// <exception cref="ArgumentException">No profile, a duplicate name, an unknown default, or an invalid profile.</exception>
    public CertificateProfileSet(IEnumerable<CertificateProfile> profiles, string? defaultName = null)
    {
        ArgumentNullException.ThrowIfNull(profiles);
        _ordered = profiles.ToArray();
        if (_ordered.Length == 0)
        {
            throw new ArgumentException("at least one profile is required", nameof(profiles));
        }

        _byName = new Dictionary<string, CertificateProfile>(StringComparer.Ordinal);
        foreach (var p in _ordered)
        {
            ArgumentNullException.ThrowIfNull(p, nameof(profiles));
            p.EnsureValid();
            if (!_byName.TryAdd(p.Name, p))
            {
                throw new ArgumentException($"profile name '{p.Name}' is used twice", nameof(profiles));
            }
        }

        if (string.IsNullOrEmpty(defaultName))
        {
            Default = _ordered[0];
        }
        else if (!_byName.TryGetValue(defaultName, out var d))
        {
            throw new ArgumentException($"default profile '{defaultName}' is not one of {string.Join(", ", _byName.Keys)}", nameof(defaultName));
        }
        else
        {
            Default = d;
        }
    }

    /// <summary>A set of one profile (the single-profile configuration).</summary>
    /// <param name="profile">The profile.</param>
    /// <exception cref="ArgumentException">The profile is invalid.</exception>
    public CertificateProfileSet(CertificateProfile profile) : this([profile ?? throw new ArgumentNullException(nameof(profile))])
    {
    }

    /// <summary>The profile used when a request names none.</summary>
    public CertificateProfile Default { get; }

    /// <summary>The profile names, in configuration order.</summary>
    public IEnumerable<string> Names => _ordered.Select(p => p.Name);

    /// <inheritdoc />
    public int Count => _ordered.Length;

    /// <summary>Finds a profile by name.</summary>
    /// <param name="name">Profile name (ordinal).</param>
    /// <param name="profile">The profile, when found.</param>
    /// <returns>True when found.</returns>
    public bool TryGet(string name, out CertificateProfile profile)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _byName.TryGetValue(name, out profile!);
    }

    /// <summary>True when <paramref name="profile"/> is this set's instance of that name.</summary>
    /// <param name="profile">A profile.</param>
    public bool Contains(CertificateProfile profile) =>
        profile is not null && _byName.TryGetValue(profile.Name, out var mine) && ReferenceEquals(mine, profile);

    /// <summary>
    /// The profiles a certificate of this CA looks like it was issued under: same subject CN and O, and the kind's
    /// marks (a Matter DAC's vendor and product id, a tls-client's id-kp-clientAuth EKU, an IDevID's neither).
    /// Used by simplereenroll so that a device renews under the profile it has.
    /// </summary>
    /// <param name="certificate">A device certificate.</param>
    /// <returns>The matching profiles (usually one).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="certificate"/> is null.</exception>
    public IReadOnlyList<CertificateProfile> Matching(System.Security.Cryptography.X509Certificates.X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var attributes = new List<(string Oid, string? Value)>();
        foreach (var rdn in certificate.SubjectName.EnumerateRelativeDistinguishedNames())
        {
            if (!rdn.HasMultipleElements)
            {
                attributes.Add((rdn.GetSingleElementType().Value ?? string.Empty, rdn.GetSingleElementValue()));
            }
        }

        string? Attr(string oid) => attributes.Where(a => a.Oid == oid).Select(a => a.Value).SingleOrDefault();
        bool clientAuth = certificate.Extensions.OfType<System.Security.Cryptography.X509Certificates.X509EnhancedKeyUsageExtension>()
            .Any(e => e.EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>().Any(o => o.Value == Asn1.Oids.ClientAuthEku));
        string? vid = Attr(Asn1.Oids.MatterVendorId), pid = Attr(Asn1.Oids.MatterProductId);
        return _ordered.Where(p =>
            Attr("2.5.4.3") == p.SubjectCommonName && Attr("2.5.4.10") == p.SubjectOrganization && p.Kind switch
            {
                CertificateProfileKind.MatterDac => vid == $"{p.MatterVendorId:X4}" && pid == $"{p.MatterProductId:X4}",
                CertificateProfileKind.TlsClient => clientAuth && vid is null,
                _ => !clientAuth && vid is null,
            }).ToList();
    }

    /// <inheritdoc />
    public IEnumerator<CertificateProfile> GetEnumerator() => ((IEnumerable<CertificateProfile>)_ordered).GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
