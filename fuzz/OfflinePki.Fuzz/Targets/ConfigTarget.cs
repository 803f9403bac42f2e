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
            // As the hosts load it (FactoryCaApp, MirrorCaApp, the CLIs): AddJsonFile, which reports a file that is not
            // JSON, or a JSON it refuses (a duplicate key, a top level that is not an object), as InvalidDataException.
            config = new ConfigurationBuilder().AddJsonFile(ScratchFile("config.json", data), optional: false).Build();
        }
        catch (InvalidDataException)
        {
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
