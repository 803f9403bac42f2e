namespace OfflinePki.Sync;

/// <summary>A caller authenticated by its TLS client certificate and mapped to a principal by the host's caller policy.</summary>
/// <param name="ClientName">The certificate's subject CN, e.g. "factory-F1-sync".</param>
/// <param name="Principal">What the policy maps that CN to for this service, e.g. the factory id "F1".</param>
public sealed record CallerIdentity(string ClientName, string Principal);
