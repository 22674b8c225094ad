using System.Diagnostics;

namespace Slub.Tests.Cli;

/// <summary>Runs the built <c>slub</c> command (Slub.Cli.dll next to the tests) as a separate process.</summary>
internal static class CliRunner
{
    public static string DllPath => Path.Combine(AppContext.BaseDirectory, "Slub.Cli.dll");

    public static (int ExitCode, string Stdout, string Stderr) Run(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(DllPath);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["SLUB_DEBUG"] = "";
        psi.Environment.Remove("SLUB_DEBUG");
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3))) { p.Kill(true); throw new TimeoutException($"slub {string.Join(' ', args)} did not finish"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
