namespace OfflinePki.Hosting.Grpc;

/// <summary>Limits of the gRPC server adapter.</summary>
public sealed class GrpcServerOptions
{
    /// <summary>Largest request message accepted, in bytes (default 4 MiB); larger → RESOURCE_EXHAUSTED.</summary>
    public int MaxReceiveMessageBytes { get; set; } = OfflinePki.Sync.Grpc.GrpcProtocol.DefaultMaxMessageBytes;

    /// <summary>Largest response message sent, in bytes (default 4 MiB).</summary>
    public int MaxSendMessageBytes { get; set; } = OfflinePki.Sync.Grpc.GrpcProtocol.DefaultMaxMessageBytes;

    /// <summary>Upper bound on any call's duration even without a client <c>grpc-timeout</c> (default 10 min).</summary>
    public TimeSpan MaxCallDuration { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Clock for deadlines; <see cref="TimeProvider.System"/> by default.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}
