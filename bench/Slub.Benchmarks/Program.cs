using BenchmarkDotNet.Running;

namespace Slub.Benchmarks;

/// <summary>Runs the benchmarks chosen on the command line, e.g. <c>dotnet run -c Release -- --filter '*Replay*'</c>.</summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
