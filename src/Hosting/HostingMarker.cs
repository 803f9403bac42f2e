namespace OfflinePki.Hosting;

/// <summary>Assembly marker for the hosting glue.</summary>
public static class HostingAssembly
{
}
