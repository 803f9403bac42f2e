namespace OfflinePki.Sync;

/// <summary>Limits both ends of the journal sync agree on.</summary>
public static class SyncLimits
{
    /// <summary>Default largest gRPC message, in bytes, sent or received by the factory's client and the mirror's service (4 MiB).</summary>
    public const int DefaultMaxMessageBytes = 4 * 1024 * 1024;
}
