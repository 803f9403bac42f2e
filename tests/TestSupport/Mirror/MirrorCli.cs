using System.CommandLine;
using Microsoft.Extensions.Options;
using NUnit.Framework;
using OfflinePki.MirrorCa;
using OfflinePki.Registry;
using OfflinePki.Tests.Support;

namespace OfflinePki.Tests.Mirror;

/// <summary>Runs a MirrorCa verb in-process and captures what it prints.</summary>
internal static class MirrorCli
{
    /// <summary>Invokes <c>MirrorCa</c> with <paramref name="args"/>; returns its exit code, standard output and standard error.</summary>
    internal static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = MirrorCaCli.Create().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }
}
