using static Slub.Cli.Slabinfo.CFormat;

namespace Slub.Cli.Slabinfo;

/// <summary>slab_numa(): the -n rows, and the NUMA section of a report.</summary>
internal static class NumaWriter
{
    public static void Numa(SlabinfoRun run, SlabCache s, bool report)
    {
        if (s.Name == "*")
            return;
        var w = run.Out;
        var highest = run.Tree.HighestNode;
        if (highest == 0)
        {
            w.Write($"\n{s.Name}: No NUMA information available.\n");
            return;
        }
        if (run.Settings.SkipZero && s.Slabs == 0)
            return;
        if (report && run.IsSmo)
            w.Write($"\nNUMA remote node defrag ratio: {Num(s.RemoteNodeDefragRatio, 3)}\n");
        if (run.Line == 0)
        {
            w.Write($"\n{Left(report ? "NUMA nodes" : "Slab", 21)}:");
            for (var node = 0; node <= highest; node++)
                w.Write($" {Num(node, 4)}");
            w.Write("\n----------------------");
            for (var node = 0; node <= highest; node++)
                w.Write("-----");
            w.Write("\n");
        }
        w.Write($"{Left(report ? "All slabs" : s.Name, 21)} ");
        for (var node = 0; node <= highest; node++)
            w.Write($" {Right(run.Size((ulong)(long)s.Numa[node]), 4)}");
        w.Write("\n");
        if (report)
        {
            w.Write($"{Left("Partial slabs", 21)} ");
            for (var node = 0; node <= highest; node++)
                w.Write($" {Right(run.Size((ulong)(long)s.NumaPartial[node]), 4)}");
            w.Write("\n");
        }
        run.Line++;
    }
}
