namespace Slub.Tests.Replay;

/// <summary>Paths of the trace fixtures (copied next to the test assembly).</summary>
internal static class Fixtures
{
    public static string Dir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "traces");
    /// <summary>A real capture (Linux 6.18, 2 CPUs): tmpfs file churn. See Fixtures/traces/README.md.</summary>
    public static string SampleTrace => Path.Combine(Dir, "sample-churn.trace.gz");
    public static string SampleBefore => Path.Combine(Dir, "sample-churn.before");
    public static string SampleAfter => Path.Combine(Dir, "sample-churn.after");
}
