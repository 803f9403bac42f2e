using System.Diagnostics;

namespace OfflinePki.Tests.Support;

/// <summary>Runs real peers (openssl, curl, python3, pkcs11-tool) as child processes.</summary>
public static class Tool
{
    /// <summary>Result of a finished process.</summary>
    public sealed record Result(int ExitCode, string StdOut, string StdErr, byte[] StdOutBytes)
    {
        /// <summary>Throws with both streams unless the exit code is 0.</summary>
        public Result EnsureSuccess(string what)
        {
            if (ExitCode != 0)
            {
                throw new InvalidOperationException($"{what} exited {ExitCode}\nstdout: {StdOut}\nstderr: {StdErr}");
            }

            return this;
        }
    }

    /// <summary>Runs <paramref name="file"/> with <paramref name="args"/>, optional stdin bytes, and a timeout.</summary>
    public static Result Run(string file, IEnumerable<string> args, byte[]? stdin = null, string? workingDirectory = null,
        TimeSpan? timeout = null, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        if (env is not null)
        {
            foreach (var (k, v) in env)
            {
                psi.Environment[k] = v;
            }
        }

        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var stdoutTask = Task.Run(() =>
        {
            using var ms = new MemoryStream();
            p.StandardOutput.BaseStream.CopyTo(ms);
            return ms.ToArray();
        });
        var stderrTask = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.BaseStream.Write(stdin);
        }

        p.StandardInput.Close();
        if (!p.WaitForExit(timeout ?? TimeSpan.FromSeconds(60)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} timed out");
        }

        var bytes = stdoutTask.GetAwaiter().GetResult();
        return new Result(p.ExitCode, System.Text.Encoding.UTF8.GetString(bytes), stderrTask.GetAwaiter().GetResult(), bytes);
    }

    /// <summary>Runs openssl with the given arguments.</summary>
    public static Result OpenSsl(params string[] args) => Run("openssl", args);
}
