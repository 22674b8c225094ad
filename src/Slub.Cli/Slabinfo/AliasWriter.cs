using static Slub.Cli.Slabinfo.CFormat;

namespace Slub.Cli.Slabinfo;

/// <summary>The -a alias map: "target &lt;- alias alias ..." lines, or "alias -&gt; target" with -i.</summary>
internal static class AliasWriter
{
    /// <summary>Sorts and links the aliases, then returns those the map shows (single references only with -1).</summary>
    public static List<SlabAlias> Prepare(SlabinfoRun run)
    {
        var o = run.Settings;
        SlabOrdering.SortAliases(run.Tree, byTarget: o.ShowAlias && !o.ShowInverted);
        SlabOrdering.LinkSlabs(run.Tree);
        return run.Tree.Aliases.Where(a => o.ShowSingleRef || a.Slab!.Refs != 1).ToList();
    }

    public static void Aliases(SlabinfoRun run)
    {
        string? active = null;
        foreach (var a in Prepare(run))
        {
            var target = a.Slab!.Name;
            if (!run.Settings.ShowInverted)
            {
                if (active is not null && target == active)
                {
                    run.Out.Write($" {a.Name}");
                    continue;
                }
                run.Out.Write($"\n{Left(target, 12)} <- {a.Name}");
                active = target;
            }
            else
            {
                run.Out.Write($"{Left(a.Name, 15)} -> {target}\n");
            }
        }
        if (active is not null)
            run.Out.Write("\n");
    }
}
