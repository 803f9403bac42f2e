using Google.Protobuf;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Microsoft.Extensions.Options;
using OfflinePki.Sync;
using OfflinePki.Sync.V1;

namespace OfflinePki.Hosting.Sync;

/// <summary>Limits of the mirror's JournalSync service.</summary>
public sealed class JournalSyncServiceOptions
{
    /// <summary>Largest request message accepted, in bytes (default 4 MiB); larger → RESOURCE_EXHAUSTED.</summary>
    public int MaxReceiveMessageBytes { get; set; } = SyncLimits.DefaultMaxMessageBytes;

    /// <summary>Upper bound on any call's duration even without a client deadline (default 10 min); past it → DEADLINE_EXCEEDED.</summary>
    public TimeSpan MaxCallDuration { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>
/// The mirror's <c>offlinepki.sync.v1.JournalSync</c> service on grpc-dotnet: a thin adapter to <see cref="SyncApplier"/>.
/// The caller is authorised by <see cref="CallerAuthorizationInterceptor"/> and the applier's exceptions become statuses in
/// <see cref="SyncErrorInterceptor"/>.
/// </summary>
/// <remarks>
/// The methods are bound by <see cref="BindService"/> (same names and messages as the generated
/// <see cref="JournalSync.JournalSyncBase"/>, from the generated descriptor) rather than by the generated binder, so that a
/// request that does not parse is answered INVALID_ARGUMENT with what is wrong: the generated marshallers throw before any
/// interceptor runs, and grpc-dotnet answers that as UNKNOWN. grpc-dotnet binds a method only if it is virtual and first
/// declared on the type that carries <see cref="BindServiceMethodAttribute"/>, hence the virtual methods here.
/// </remarks>
[BindServiceMethod(typeof(JournalSyncService), nameof(BindService))]
public class JournalSyncService
{
    /// <summary>The gRPC service name.</summary>
    public const string ServiceName = "offlinepki.sync.v1.JournalSync";

    private readonly SyncApplier _applier;
    private readonly JournalSyncServiceOptions _options;
    private readonly TimeProvider _time;

    /// <summary>Creates the service (per call, by grpc-dotnet).</summary>
    /// <param name="applier">The core sync logic.</param>
    /// <param name="options">Limits.</param>
    /// <param name="timeProvider">Clock for <see cref="JournalSyncServiceOptions.MaxCallDuration"/>; <see cref="TimeProvider.System"/> when null.</param>
    /// <exception cref="ArgumentNullException"><paramref name="applier"/> or <paramref name="options"/> is null.</exception>
    public JournalSyncService(SyncApplier applier, IOptions<JournalSyncServiceOptions> options, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(applier);
        ArgumentNullException.ThrowIfNull(options);
        _applier = applier;
        _options = options.Value;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>
    /// Binds GetHead and PushEntries with request marshallers that answer INVALID_ARGUMENT to an unparsable message.
    /// grpc-dotnet calls it with a null service to discover the methods, then invokes the overrides of the per-call instance.
    /// </summary>
    /// <param name="binder">grpc-dotnet's binder.</param>
    /// <param name="service">The service instance, or null during discovery.</param>
    /// <exception cref="ArgumentNullException"><paramref name="binder"/> is null.</exception>
    public static void BindService(ServiceBinderBase binder, JournalSyncService? service)
    {
        ArgumentNullException.ThrowIfNull(binder);
        var name = JournalSync.Descriptor.FullName;
        binder.AddMethod(
            new Method<GetHeadRequest, GetHeadResponse>(MethodType.Unary, name, "GetHead", RequestMarshaller(GetHeadRequest.Parser), ResponseMarshaller<GetHeadResponse>()),
            service is null ? null : service.GetHead);
        binder.AddMethod(
            new Method<PushRequest, PushResponse>(MethodType.ClientStreaming, name, "PushEntries", RequestMarshaller(PushRequest.Parser), ResponseMarshaller<PushResponse>()),
            service is null ? null : service.PushEntries);
    }

    /// <summary>JournalSync.GetHead: the mirror's head of one journal, for the authorised caller.</summary>
    /// <param name="request">The request.</param>
    /// <param name="context">The call.</param>
    /// <returns>The head.</returns>
    /// <exception cref="SyncRejectedException">As <see cref="SyncApplier.GetHead"/>; mapped by <see cref="SyncErrorInterceptor"/>.</exception>
    public virtual Task<GetHeadResponse> GetHead(GetHeadRequest request, ServerCallContext context) =>
        Task.FromResult(_applier.GetHead(request, CallerAuthorizationInterceptor.Caller(context)));

    /// <summary>JournalSync.PushEntries: verifies and applies a pushed range, read as it arrives.</summary>
    /// <param name="requestStream">The client stream.</param>
    /// <param name="context">The call.</param>
    /// <returns>The mirror head after the push.</returns>
    /// <exception cref="SyncRejectedException">As <see cref="SyncApplier.ApplyAsync"/>; mapped by <see cref="SyncErrorInterceptor"/>.</exception>
    /// <exception cref="CallDurationExceededException">The push ran longer than <see cref="JournalSyncServiceOptions.MaxCallDuration"/>.</exception>
    public virtual async Task<PushResponse> PushEntries(IAsyncStreamReader<PushRequest> requestStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(requestStream);
        ArgumentNullException.ThrowIfNull(context);
        using var limit = new CancellationTokenSource(_options.MaxCallDuration, _time);
        using var call = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, limit.Token);
        try
        {
            return await _applier.ApplyAsync(CallerAuthorizationInterceptor.Caller(context), requestStream.ReadAllAsync(call.Token), call.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (limit.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            throw new CallDurationExceededException(_options.MaxCallDuration, ex);
        }
    }

    private static Marshaller<T> RequestMarshaller<T>(MessageParser<T> parser)
        where T : IMessage<T> => new(
        static (message, context) => Serialize(message, context),
        context =>
        {
            try
            {
                return parser.ParseFrom(context.PayloadAsReadOnlySequence());
            }
            catch (InvalidProtocolBufferException ex)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"the request is not a valid {typeof(T).Name}: {ex.Message}"));
            }
        });

    private static Marshaller<T> ResponseMarshaller<T>()
        where T : IMessage<T>, new() => new(
        static (message, context) => Serialize(message, context),
        static context => new MessageParser<T>(() => new T()).ParseFrom(context.PayloadAsReadOnlySequence()));

    private static void Serialize<T>(T message, SerializationContext context)
        where T : IMessage<T>
    {
        context.SetPayloadLength(message.CalculateSize());
        message.WriteTo(context.GetBufferWriter());
        context.Complete();
    }
}
