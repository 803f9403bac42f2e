using NUnit.Framework;

/// <summary>Runs once for each test assembly (linked into every test project by tests/Directory.Build.props): the product's hosts turn on the OpenSSL fast path, so the tests do too.</summary>
[SetUpFixture]
public sealed class AssemblySetup
{
    [OneTimeSetUp]
    public void EnableOpenSslAcceleration() => OfflinePki.OpenSsl.OpenSslAcceleration.Enable();
}
