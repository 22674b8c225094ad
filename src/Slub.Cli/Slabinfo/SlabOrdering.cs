namespace Slub.Cli.Slabinfo;

/// <summary>
/// Linking aliases to caches, renaming merged caches, and the tool's two sorts. The sorts are the C tool's exchange
/// sort (for i &lt; j: swap when compare(i, j) &gt; 0), copied literally because it is neither stable nor a standard
/// sort, and ties keep an order that depends on the source order.
/// </summary>
internal static class SlabOrdering
{
    /// <summary>strcasecmp on ASCII-lowered characters: only the sign of the result is used.</summary>
    public static int StrCaseCmp(string a, string b)
    {
        var n = Math.Min(a.Length, b.Length);
        for (var i = 0; i < n; i++)
        {
            int x = char.ToLowerInvariant(a[i]) is var lx && a[i] < 128 ? lx : a[i];
            int y = char.ToLowerInvariant(b[i]) is var ly && b[i] < 128 ? ly : b[i];
            if (x != y)
                return x - y;
        }
        return a.Length - b.Length;
    }

    /// <summary>link_slabs(): each alias finds its cache by exact name and bumps its refs.</summary>
    public static void LinkSlabs(SlabTree tree)
    {
        foreach (var a in tree.Aliases)
        {
            var target = tree.Caches.FirstOrDefault(s => string.Equals(a.Ref, s.Name, StringComparison.Ordinal))
                ?? throw new SlabinfoFatalException($"Unresolved alias {a.Ref}\n");
            a.Slab = target;
            target.Refs++;
        }
    }

    /// <summary>rename_slabs(): merged ':' caches take an alias name, or become "*" (hidden) when they have none.</summary>
    public static void RenameSlabs(SlabTree tree, bool firstAlias)
    {
        foreach (var s in tree.Caches)
        {
            if (!s.Name.StartsWith(':'))
                continue;
            if (s.Refs > 1 && !firstAlias)
                continue;
            var a = FindOneAlias(tree, s);
            if (a is not null)
            {
                s.Name = a.Name;
            }
            else
            {
                s.Name = "*";
                tree.ActualSlabs--;
            }
        }
    }

    /// <summary>find_one_alias(): despite its comment ("shortest"), keeps the longest alias name (first one on ties),
    /// and stops at once at a name starting with "kmall".</summary>
    public static SlabAlias? FindOneAlias(SlabTree tree, SlabCache find)
    {
        SlabAlias? best = null;
        foreach (var a in tree.Aliases)
        {
            if (a.Slab == find && (best is null || best.Name.Length < a.Name.Length))
            {
                best = a;
                if (a.Name.StartsWith("kmall", StringComparison.Ordinal))
                    return best;
            }
        }
        return best;
    }

    public static void SortSlabs(SlabinfoRun run)
    {
        var o = run.Settings;
        var list = run.Tree.Caches;
        var current = !run.IsSmo;
        for (var i = 0; i < list.Count; i++)
        {
            for (var j = i + 1; j < list.Count; j++)
            {
                var s1 = list[i];
                var s2 = list[j];
                int result;
                if (o.SortSize)
                    result = Numeric(s1.TotalSize(run.PageSize), s2.TotalSize(run.PageSize), s1, s2, current);
                else if (o.SortActive)
                    result = Numeric(s1.Activity, s2.Activity, s1, s2, current);
                else if (o.SortLoss)
                    result = Numeric(s1.Waste(run.PageSize), s2.Waste(run.PageSize), s1, s2, current);
                else if (o.SortPartial)
                    result = Numeric(s1.Partial, s2.Partial, s1, s2, current);
                else
                    result = StrCaseCmp(s1.Name, s2.Name);
                if (o.ShowInverted)
                    result = -result;
                if (result > 0)
                    (list[i], list[j]) = (s2, s1);
            }
        }
    }

    // "a < b" (1 or 0) sorts descending; only the current tool breaks ties by name.
    private static int Numeric(ulong a, ulong b, SlabCache s1, SlabCache s2, bool tieBreak) =>
        tieBreak && a == b ? StrCaseCmp(s1.Name, s2.Name) : a < b ? 1 : 0;

    /// <summary>sort_aliases(): by target name for -a, by alias name for -a -i (and in any other mode).</summary>
    public static void SortAliases(SlabTree tree, bool byTarget)
    {
        var list = tree.Aliases;
        for (var i = 0; i < list.Count; i++)
        {
            for (var j = i + 1; j < list.Count; j++)
            {
                var n1 = byTarget ? list[i].Ref : list[i].Name;
                var n2 = byTarget ? list[j].Ref : list[j].Name;
                if (StrCaseCmp(n1, n2) > 0)
                    (list[i], list[j]) = (list[j], list[i]);
            }
        }
    }
}
