using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OfflinePki.Registry;

/// <summary>What the registry holds for one factory journal.</summary>
/// <param name="FactoryId">Factory id from genesis.</param>
/// <param name="JournalIdHex">Journal id, upper-case hex.</param>
/// <param name="IssuerKeyHashHex">SHA-1 issuerKeyHash of its issuing CA, upper-case hex.</param>
/// <param name="HeadSeq">Last applied seq.</param>
/// <param name="Entries">Raw entries stored.</param>
/// <param name="Certificates">Issued certificates recorded.</param>
/// <param name="Revoked">Of those, how many are revoked.</param>
public sealed record FactorySummary(string FactoryId, string JournalIdHex, string IssuerKeyHashHex, ulong HeadSeq, long Entries, long Certificates, long Revoked);

/// <summary>A snapshot of the registry for the <c>status</c> verb and the admin API.</summary>
/// <param name="Factories">One row per journal, ordered by factory id.</param>
/// <param name="RevocationVersion">The current revocation counter.</param>
/// <param name="RegistryVersion">The current registry counter.</param>
public sealed record RegistrySummary(IReadOnlyList<FactorySummary> Factories, long RevocationVersion, long RegistryVersion);

