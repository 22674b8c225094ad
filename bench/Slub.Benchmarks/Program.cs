using BenchmarkDotNet.Running;

namespace Slub.Benchmarks;

/// <summary>
/// Runs the benchmarks chosen on the command line, e.g. <c>dotnet run -c Release -- --filter '*Replay*' --job short</c>;
/// <c>-- --replay-cpu-time</c> runs <see cref="ReplayCpuTimeProbe"/> instead (thread CPU time, no BenchmarkDotNet).
/// </summary>
public static class Program
{
    public static void Main(string[] args)
    {
        if (args is ["--replay-cpu-time"])
        {
            ReplayCpuTimeProbe.Run();
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
