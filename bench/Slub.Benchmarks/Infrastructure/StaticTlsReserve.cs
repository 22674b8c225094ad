using System.Diagnostics;
using System.Reflection;

namespace Slub.Benchmarks.Infrastructure;

/// <summary>
/// Makes room for the native allocators' thread-local storage before any of them is loaded.
/// </summary>
/// <remarks>
/// Debian's libjemalloc.so.2 (and mimalloc, tcmalloc) are built with initial-exec TLS (ELF flag STATIC_TLS),
/// meant for linking or LD_PRELOAD. Loading one with dlopen must fit its TLS into glibc's small optional
/// static TLS reserve (512 bytes by default), which the .NET runtime's own libraries have already used:
/// dlopen of jemalloc then fails with "cannot allocate memory in static TLS block". The reserve is a glibc
/// tunable read once at process start, so the benchmark host re-executes itself with it set; the
/// BenchmarkDotNet child processes inherit the environment and can load jemalloc too.
/// </remarks>
public static class StaticTlsReserve
{
    private const string Variable = "GLIBC_TUNABLES";
    private const string Tunable = "glibc.rtld.optional_static_tls=16384";

    /// <summary>
    /// On Linux, if the tunable is not in force, runs this program again with it and returns the child's
    /// exit code; returns null when the current process already has it (or on other systems).
    /// </summary>
    public static int? ReexecIfNeeded(string[] args)
    {
        if (!OperatingSystem.IsLinux()) return null;
        string? current = Environment.GetEnvironmentVariable(Variable);
        if (current is not null && current.Contains("glibc.rtld.optional_static_tls")) return null;

        var start = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false };
        // Under "dotnet Slub.Benchmarks.dll" the host is dotnet and the assembly must be passed again;
        // under the apphost (dotnet run) the executable is the program itself.
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
            start.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
        foreach (string a in args) start.ArgumentList.Add(a);
        start.Environment[Variable] = string.IsNullOrEmpty(current) ? Tunable : current + ":" + Tunable;
        using var child = Process.Start(start)!;
        child.WaitForExit();
        return child.ExitCode;
    }
}
