using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OfflinePki.Enrollment;
using OfflinePki.Journal;
using OfflinePki.Policy;

namespace OfflinePki.FactoryCa;

/// <summary>Wiring of the device rules (issue 6, "Device IDs"): check digits, one active IDevID, rework, refurb, cloned keys.</summary>
public static class FactoryDevicePolicyServices
{
    /// <summary>
    /// Binds FactoryCa:Rework and FactoryCa:Refurb (validated at startup) and registers, in this order, the
    /// <see cref="DeviceIdCheckDigitPolicy"/> (FactoryCa:Profile:DeviceIdCheckDigit) and the <see cref="DevicePolicy"/>,
    /// whose state is rebuilt from the journal when the host starts. An <see cref="IOrderReworkWindows"/> in DI, if
    /// any, gives per-order rework windows.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="configuration">The configuration holding the FactoryCa section.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddFactoryDevicePolicy(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<DevicePolicyOptions>().Bind(configuration.GetSection(FactoryCaOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<DevicePolicyOptions>, DevicePolicyOptionsValidator>());
        services.TryAddSingleton(sp =>
        {
            // One check-digit scheme per configured profile (FactoryCa:Profile or FactoryCa:Profiles:i).
            var schemes = new Dictionary<string, DeviceIdCheckDigit>(StringComparer.Ordinal);
            foreach (var (key, profile) in sp.GetRequiredService<IOptions<FactoryCaOptions>>().Value.EffectiveProfiles())
            {
                schemes[profile.Name] = DeviceIdFormat.Parse(profile.DeviceIdCheckDigit, key + ":DeviceIdCheckDigit");
            }

            return new DeviceIdCheckDigitPolicy(schemes);
        });
        services.TryAddSingleton(sp => DevicePolicy.Rebuild(sp.GetRequiredService<IJournalReader>(),
            sp.GetRequiredService<IOptions<DevicePolicyOptions>>().Value, sp.GetService<IOrderReworkWindows>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEnrollmentPolicy, DeviceIdCheckDigitPolicy>(sp => sp.GetRequiredService<DeviceIdCheckDigitPolicy>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEnrollmentPolicy, DevicePolicy>(sp => sp.GetRequiredService<DevicePolicy>()));
        return services;
    }
}

/// <summary>Validates FactoryCa:Rework and FactoryCa:Refurb at startup; each failure names its key.</summary>
public sealed class DevicePolicyOptionsValidator : IValidateOptions<DevicePolicyOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, DevicePolicyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate(FactoryCaOptions.SectionName);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
