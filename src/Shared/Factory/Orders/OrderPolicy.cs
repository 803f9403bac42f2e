using OfflinePki.Enrollment;
using OfflinePki.Journal.V1;
using OfflinePki.Policy;
using OfflinePki.Factory;

namespace OfflinePki.Orders;

/// <summary>Settings of the <see cref="OrderPolicy"/> (FactoryCa:Orders).</summary>
public sealed class OrderPolicyOptions
{
    /// <summary>True: every enrollment must name an accepted order (X-Order-Id or an EST label that selects one).</summary>
    public bool Required { get; set; }
}

/// <summary>
/// The production-order rule of the registration authority (issue 6 §2). When a request names an order: the order is
/// accepted, valid now, for the requested profile, usable by the station (FactoryCa:Stations[i]:Orders), and covers
/// the device ID; then one unit is reserved atomically (initial and refurb; a rework re-issue does not consume a unit).
/// The admission writes the order id into CertificateIssued.batch_id.
/// </summary>
public sealed class OrderPolicy : IEnrollmentPolicy
{
    private readonly OrderBook _book;
    private readonly OrderPolicyOptions _options;

    /// <summary>Creates the policy.</summary>
    /// <param name="book">The factory's order book (rebuilt from the journal).</param>
    /// <param name="options">Whether an order is mandatory.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public OrderPolicy(OrderBook book, OrderPolicyOptions options)
    {
        ArgumentNullException.ThrowIfNull(book);
        ArgumentNullException.ThrowIfNull(options);
        _book = book;
        _options = options;
    }

    /// <inheritdoc />
    /// <exception cref="EnrollmentRejectedException">
    /// <see cref="EnrollmentError.OrderUnknown"/>: no order named while one is required, or the order is not accepted;
    /// <see cref="EnrollmentError.OrderNotValidNow"/>: outside the order's window;
    /// <see cref="EnrollmentError.OrderProfileMismatch"/>: the order is for another profile;
    /// <see cref="EnrollmentError.StationNotAuthorizedForOrder"/>: the station's Orders list excludes it;
    /// <see cref="EnrollmentError.DeviceIdOutsideOrder"/>: the device ID is outside the order's range or pattern;
    /// <see cref="EnrollmentError.OrderExhausted"/>: every unit is issued or in flight.
    /// </exception>
    public IEnrollmentAdmission Admit(EnrollmentContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        string? orderId = context.Request.OrderId;
        if (string.IsNullOrEmpty(orderId))
        {
            if (_options.Required)
            {
                throw new EnrollmentRejectedException(EnrollmentError.OrderUnknown,
                    "this factory issues only under a production order (FactoryCa:Orders:Required): send the order id in the X-Order-Id header");
            }

            return NoReservation.Instance;
        }

        var order = _book.Find(orderId);
        if (order is null)
        {
            throw new EnrollmentRejectedException(EnrollmentError.OrderUnknown,
                $"no accepted production order '{orderId}': import it (FactoryCa import-order) or let the mirror deliver it at the next sync");
        }

        if (!order.IsValidAt(context.Now))
        {
            throw new EnrollmentRejectedException(EnrollmentError.OrderNotValidNow,
                $"order {order.OrderId} is valid {order.NotBefore:yyyy-MM-ddTHH:mm:ssZ}..{order.NotAfter:yyyy-MM-ddTHH:mm:ssZ}, not now ({context.Now:yyyy-MM-ddTHH:mm:ssZ})");
        }

        if (!string.Equals(order.Profile, context.ProfileName, StringComparison.Ordinal))
        {
            throw new EnrollmentRejectedException(EnrollmentError.OrderProfileMismatch,
                $"order {order.OrderId} is for profile '{order.Profile}', the request is for profile '{context.ProfileName}'");
        }

        if (!context.Station.MayUseOrder(order.OrderId))
        {
            throw new EnrollmentRejectedException(EnrollmentError.StationNotAuthorizedForOrder,
                $"station CN={context.Station.SubjectCn} is not authorised for order {order.OrderId} (FactoryCa:Stations, Id {context.Station.Id}: Orders)");
        }

        if (!order.DeviceIds.Contains(context.DeviceId))
        {
            throw new EnrollmentRejectedException(EnrollmentError.DeviceIdOutsideOrder,
                $"device ID {context.DeviceId} is outside order {order.OrderId} ({order.DeviceIds})");
        }

        if (!OrderBook.Consumes(context.Request.Kind))
        {
            return new Admission(order.OrderId, null);
        }

        var reservation = _book.TryReserve(order.OrderId);
        if (reservation is null)
        {
            throw new EnrollmentRejectedException(EnrollmentError.OrderExhausted,
                $"order {order.OrderId} is used up: all {order.Quantity} units are issued or in progress");
        }

        return new Admission(order.OrderId, reservation);
    }

    private sealed class Admission(string orderId, OrderBook.Reservation? reservation) : IEnrollmentAdmission
    {
        public void Annotate(CertificateIssued payload) => payload.BatchId = orderId;

        public void Commit(CertificateIssued payload, ulong seq) => reservation?.Commit();

        public void Dispose() => reservation?.Dispose();
    }
}
