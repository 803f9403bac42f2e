namespace OfflinePki.MirrorCa;

/// <summary>Builds the MirrorCa web application; used by <c>serve</c> and by tests.</summary>
public static class MirrorCaApp
{
    /// <summary>
    /// Builds (does not start) the mirror: configuration from <paramref name="configPath"/> (JSON), then environment
    /// variables prefixed <c>OFFLINEPKI_</c> (e.g. <c>OFFLINEPKI_MirrorCa__Http__Listen</c>), then <paramref name="overrides"/>.
    /// </summary>
    /// <param name="configPath">The config file; relative paths inside it resolve against its directory.</param>
    /// <param name="overrides">Extra configuration keys (e.g. "MirrorCa:Http:Listen" = "http://127.0.0.1:0" in tests).</param>
    /// <param name="configure">Last-chance service changes (e.g. a fake <see cref="TimeProvider"/>), or null.</param>
    /// <exception cref="FileNotFoundException"><paramref name="configPath"/> does not exist.</exception>
    public static WebApplication Build(string configPath, IDictionary<string, string?>? overrides = null, Action<WebApplicationBuilder>? configure = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(configPath);
        var fullPath = Path.GetFullPath(configPath);
        if (!File.Exists(fullPath))
        {
            throw new FileNotFoundException($"config file '{fullPath}' not found", fullPath);
        }

        // Issue 16 finding 7: everything the daemon creates is private to its user, whatever umask it was started with.
        OfflinePki.Hosting.PrivateFiles.Restrict();
        var configDirectory = Path.GetDirectoryName(fullPath)!;
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = configDirectory, Args = [] });
        builder.Configuration.AddJsonFile(fullPath, optional: false, reloadOnChange: false);
        builder.Configuration.AddEnvironmentVariables("OFFLINEPKI_");
        if (overrides is not null)
        {
            builder.Configuration.AddInMemoryCollection(overrides);
        }

        builder.Services.AddMirrorCa(builder.Configuration, configDirectory);

        builder.Services.AddMirrorListenersAndSync();
        builder.Services.AddMirrorAdmin();
        configure?.Invoke(builder);
        var app = builder.Build();
        app.UseMirrorListenerIsolation();
        app.MapMirrorCaHttp();
        app.MapMirrorSync();
        app.MapMirrorAdmin();
        return app;
    }
}
