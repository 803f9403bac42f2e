using OfflinePki.Orders;

namespace OfflinePki.Fuzz;

/// <summary>The production order JSON content (what the CMS carries) through the schema parser directly.</summary>
internal sealed class OrderJsonTarget : FuzzTarget
{
    public override string Name => "order-json";

    public override void Run(byte[] data)
    {
        try
        {
            _ = ProductionOrder.Parse(data, data);
        }
        catch (OrderRejectedException)
        {
        }
    }
}
