using Microsoft.Extensions.Configuration;
using OfflinePki.FactoryCa;
using OfflinePki.MirrorCa;

namespace OfflinePki.Fuzz;

/// <summary>
/// A JSON configuration file bound the way the hosts bind it (sections FactoryCa and MirrorCa) and checked by the
/// hosts' options validators.
/// </summary>
internal sealed class ConfigTarget : FuzzTarget
{
    public override string Name => "config";

    public override void Run(byte[] data)
    {
        IConfigurationRoot config;
        try
        {
            config = new ConfigurationBuilder().AddJsonStream(new MemoryStream(data)).Build();
        }
        catch (FormatException)
        {
            // Not JSON, or a JSON the configuration provider refuses (a duplicate key, a top level that is not an object).
            return;
        }

        var factory = new FactoryCaOptions();
        if (Bind(config.GetSection(FactoryCaOptions.SectionName), factory))
        {
            _ = new FactoryCaOptionsValidator().Validate(null, factory);
        }

        var mirror = new MirrorCaOptions();
        if (Bind(config.GetSection(MirrorCaOptions.SectionName), mirror))
        {
            _ = new MirrorCaOptionsValidator().Validate(null, mirror);
        }
    }

    private static bool Bind(IConfigurationSection section, object options)
    {
        try
        {
            section.Bind(options);
            return true;
        }
        catch (InvalidOperationException)
        {
            // ConfigurationBinder: a value that does not convert to the property's type.
            return false;
        }
    }
}
