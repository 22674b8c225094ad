using Spectre.Console;

namespace Slub.Cli.Demo;

/// <summary>Tables for a <see cref="DemoReport"/>.</summary>
internal static class DemoRenderer
{
    public static void Render(DemoReport r)
    {
        AnsiConsole.MarkupLine("[bold]Slub.NET demo[/]: allocate, free a random 70%, then shrink every cache (SMO defrag where objects are movable).");
        var t = new Table().Border(TableBorder.Rounded).Title("Per cache: after the churn → after shrink");
        foreach (var h in new[] { "cache", "size", "objects", "slabs", "partial", "optimal", "moved", "time", "ok" })
            t.AddColumn(new TableColumn(h).RightAligned());
        foreach (var c in r.Caches)
        {
            var a = c.AfterDefrag;
            // Objects and optimal change only where the callback frees instead of moving (dentry): show both then.
            t.AddRow(c.Name + (c.Movable ? "" : " [grey](fixed)[/]"), $"{c.ObjectSize}",
                a is null || a.Objects == c.Objects ? $"{c.Objects:N0}" : $"{c.Objects:N0} → {a.Objects:N0}",
                a is null ? $"{c.Slabs:N0}" : $"{c.Slabs:N0} → {a.Slabs:N0}",
                a is null ? $"{c.Partial:N0}" : $"{c.Partial:N0} → {a.Partial:N0}",
                a is null || a.OptimalSlabs == c.OptimalSlabs ? $"{c.OptimalSlabs:N0}" : $"{c.OptimalSlabs:N0} → {a.OptimalSlabs:N0}",
                a is null ? "-" : a.ObjectsFreed > 0 ? $"{a.ObjectsMoved:N0} (+{a.ObjectsFreed:N0} freed)" : $"{a.ObjectsMoved:N0}",
                a is null ? "-" : a.CompileMilliseconds >= 1 ? $"{a.Milliseconds:F0} ms ({a.CompileMilliseconds:F0} JIT)" : $"{a.Milliseconds:F0} ms",
                a is null ? "-" : a.Verified ? "[green]yes[/]" : "[red]NO[/]");
        }
        AnsiConsole.Write(t);
        if (r.Dcache is { } d)
            AnsiConsole.MarkupLine(DcacheLine(d));
        AnsiConsole.MarkupLine($"Resident memory: start {Mb(r.RssBytesStart)}, after the churn {Mb(r.RssBytes)}, after shrink {Mb(r.RssBytesAfter)}.");
        var b = new Table().Border(TableBorder.Rounded).Title("buddyinfo: free blocks per order (before → after)");
        b.AddColumn("node");
        for (int o = 0; o < r.BuddyInfo[0].FreeBlocks.Length; o++) b.AddColumn(new TableColumn($"{o}").RightAligned());
        for (int i = 0; i < r.BuddyInfo.Count; i++)
        {
            var before = r.BuddyInfo[i].FreeBlocks;
            var after = r.BuddyInfoAfter[i].FreeBlocks;
            b.AddRow(new[] { $"{r.BuddyInfo[i].Node}" }.Concat(before.Select((v, o) => $"{v}→{after[o]}")).ToArray());
        }
        AnsiConsole.Write(b);
        foreach (var c in r.Caches.Where(c => c.AfterMove is not null))
        {
            var n = new Table().Border(TableBorder.Rounded).Title($"{c.Name}: objects per node — after the churn, after move to node {c.AfterMove!.To}, after balance");
            n.AddColumn("node"); n.AddColumn(new TableColumn("before").RightAligned());
            n.AddColumn(new TableColumn("after move").RightAligned()); n.AddColumn(new TableColumn("after balance").RightAligned());
            for (int i = 0; i < c.Nodes.Count; i++)
                n.AddRow($"{i}", $"{c.Nodes[i].Objects:N0}", $"{c.AfterMove.Nodes[i].Objects:N0}", $"{c.AfterBalance!.Nodes[i].Objects:N0}");
            AnsiConsole.Write(n);
            AnsiConsole.MarkupLine($"verified after move: {(c.AfterMove.Verified ? "[green]ok[/]" : "[red]FAILED[/]")}, after balance: {(c.AfterBalance!.Verified ? "[green]ok[/]" : "[red]FAILED[/]")}");
        }
    }

    /// <summary>The dentry workload's summary line (Spectre markup).</summary>
    internal static string DcacheLine(DcacheReport d) =>
        $"dentry: {Plural.Count(d.Paths, "path")} of {Markup.Escape(d.Root)} walked, LRU pressure, then SMO partial shrink; " +
        $"hot paths still cached {d.HotCachedAfterSmo}/{d.HotPaths} (before SMO {d.HotCachedBeforeSmo}); " +
        $"{Plural.Count(d.PathsVerified, "path")} re-resolved, {(d.Mismatches == 0 ? "[green]0 mismatches[/]" : $"[red]{Plural.Count(d.Mismatches, "mismatch", "mismatches")}[/]")}.";

    private static string Mb(long bytes) => $"{bytes / (1024.0 * 1024):F1} MiB";
}
