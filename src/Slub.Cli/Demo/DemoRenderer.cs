using Spectre.Console;

namespace Slub.Cli.Demo;

/// <summary>Tables for a <see cref="DemoReport"/>.</summary>
internal static class DemoRenderer
{
    public static void Render(DemoReport r)
    {
        AnsiConsole.MarkupLine("[bold]Slub.NET demo[/]: allocate, free a random 70%, then shrink every cache (SMO defrag where objects are movable).");
        var t = new Table().Border(TableBorder.Rounded).Title("Per cache: after the churn → after shrink");
        foreach (var h in new[] { "cache", "obj size", "objs/slab", "order", "movable", "objects", "slabs", "partial", "optimal", "slabs after", "partial after", "moved", "time", "verified" })
            t.AddColumn(new TableColumn(h).RightAligned());
        foreach (var c in r.Caches)
        {
            var a = c.AfterDefrag;
            t.AddRow(c.Name, $"{c.ObjectSize}", $"{c.ObjsPerSlab}", $"{c.Order}", c.Movable ? "yes" : "no",
                $"{c.Objects:N0}", $"{c.Slabs:N0}", $"{c.Partial:N0}", $"{c.OptimalSlabs:N0}",
                a is null ? "-" : $"{a.Slabs:N0}", a is null ? "-" : $"{a.Partial:N0}",
                a is null ? "-" : $"{a.ObjectsMoved:N0}", a is null ? "-" : $"{a.Milliseconds:F1} ms",
                a is null ? "-" : a.Verified ? "[green]ok[/]" : "[red]FAILED[/]");
        }
        AnsiConsole.Write(t);
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
    }

    private static string Mb(long bytes) => $"{bytes / (1024.0 * 1024):F1} MiB";
}
