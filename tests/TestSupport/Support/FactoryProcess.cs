using System.Diagnostics;
using System.Net;
using NUnit.Framework;

namespace OfflinePki.Tests.Support;

/// <summary>FactoryCa as a child process (<c>dotnet FactoryCa.dll serve</c>), for tests that SIGKILL it.</summary>
public static class FactoryProcess
{
    /// <summary>Starts <c>FactoryCa serve --config <paramref name="configPath"/></c> from the build the tests run in; output is drained.</summary>
    /// <param name="configPath">The config file.</param>
    /// <param name="umask">When set (e.g. "002"), the daemon runs under this umask (<c>bash -c 'umask N; exec dotnet ...'</c>).</param>
    public static Process Start(string configPath, string? umask = null)
    {
        string config = Path.GetFileName(Path.GetDirectoryName(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)))!; // bin/<Config>/net10.0
        string dll = Path.Combine(TestPki.RepoRoot, "src", "FactoryCa", "bin", config, "net10.0", "FactoryCa.dll");
        Assert.That(File.Exists(dll), Is.True, $"{dll} is built with the tests");
        var psi = new ProcessStartInfo(umask is null ? "dotnet" : "bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (umask is not null)
        {
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add($"umask {umask}; exec dotnet \"$@\"");
            psi.ArgumentList.Add("factoryca");
        }

        foreach (var a in new[] { dll, "serve", "--config", configPath })
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["Logging__LogLevel__Default"] = "Warning";
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    /// <summary>Waits (at most 60 s) until EST cacerts answers 200; fails the test if the process exits first.</summary>
    public static async Task WaitReadyAsync(HttpClient client, string estBase, Process process)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            Assert.That(process.HasExited, Is.False, "FactoryCa exited while starting (exit code " + (process.HasExited ? process.ExitCode : 0) + ")");
            try
            {
                using var r = await client.GetAsync(estBase + "/cacerts");
                if (r.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(50);
        }

        Assert.Fail("FactoryCa did not become ready in 60 s");
    }
}
