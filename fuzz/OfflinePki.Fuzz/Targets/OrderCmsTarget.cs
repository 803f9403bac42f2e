using OfflinePki.Orders;

namespace OfflinePki.Fuzz;

/// <summary>A signed production order: DER CMS SignedData (<see cref="ProductionOrder.ParseSigned"/>), then full verification against the fixture root.</summary>
internal sealed class OrderCmsTarget : FuzzTarget
{
    private static readonly ProductionOrderVerifier Verifier = new(FixtureRoot, null, TimeProvider.System);

    public override string Name => "order-cms";

    public override void Run(byte[] data)
    {
        try
        {
            _ = ProductionOrder.ParseSigned(data);
        }
        catch (OrderRejectedException)
        {
            return;
        }

        try
        {
            _ = Verifier.VerifyOrigin(data);
        }
        catch (OrderRejectedException)
        {
        }
    }
}
