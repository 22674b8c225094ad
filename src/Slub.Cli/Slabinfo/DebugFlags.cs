namespace Slub.Cli.Slabinfo;

/// <summary>The -d option: parsing its letters (debug_opt_scan) and applying them to a cache (slab_debug).</summary>
internal static class DebugFlags
{
    /// <summary>Parses the -d argument; false for an unknown or repeated letter. No argument (or "-") means all off;
    /// "a"/"A" means sanity, redzone, poison and tracking (not tracing).</summary>
    public static bool Scan(SlabinfoSettings o, string? opt)
    {
        if (string.IsNullOrEmpty(opt) || opt == "-")
            return true;
        if (opt.Equals("a", StringComparison.OrdinalIgnoreCase))
        {
            o.Sanity = o.Poison = o.Redzone = o.Tracking = true;
            return true;
        }
        foreach (var c in opt)
        {
            switch (char.ToLowerInvariant(c))
            {
                case 'f' when !o.Sanity: o.Sanity = true; break;
                case 'p' when !o.Poison: o.Poison = true; break;
                case 'z' when !o.Redzone: o.Redzone = true; break;
                case 'u' when !o.Tracking: o.Tracking = true; break;
                case 't' when !o.Tracing: o.Tracing = true; break;
                default: return false; // unknown or repeated letter
            }
        }
        return true;
    }

    /// <summary>Brings one cache's debug flags to the requested state, as far as the kernel allows.</summary>
    public static void Apply(SlabinfoRun run, SlabCache s)
    {
        if (s.Name == "*")
            return;
        var o = run.Settings;
        // v5.2 and the SMO series write a file named "sanity", which sysfs does not have.
        var sanityFile = run.IsSmo ? "sanity" : "sanity_checks";
        if (o.Sanity && s.SanityChecks == 0)
            run.SetObj(s, sanityFile, 1);
        if (!o.Sanity && s.SanityChecks != 0)
            Change(run, s, sanityFile, 0, "disable sanity checks");
        if (o.Redzone && s.RedZone == 0)
            Change(run, s, "red_zone", 1, "enable redzoning");
        if (!o.Redzone && s.RedZone != 0)
            Change(run, s, "red_zone", 0, "disable redzoning");
        if (o.Poison && s.Poison == 0)
            Change(run, s, "poison", 1, "enable poisoning");
        if (!o.Poison && s.Poison != 0)
            Change(run, s, "poison", 0, "disable poisoning");
        if (o.Tracking && s.StoreUser == 0)
            Change(run, s, "store_user", 1, "enable tracking");
        if (!o.Tracking && s.StoreUser != 0)
            Change(run, s, "store_user", 0, "disable tracking");
        if (o.Tracing && s.Trace == 0)
        {
            if (run.Tree.Caches.Count == 1)
                run.SetObj(s, "trace", 1);
            else
                run.Err.Write($"{s.Name} can only enable trace for one slab at a time\n");
        }
        // [quirk] Turning tracing off writes 1 (fixed upstream only in 2026).
        if (!o.Tracing && s.Trace != 0)
            run.SetObj(s, "trace", 1);
    }

    private static void Change(SlabinfoRun run, SlabCache s, string file, int value, string what)
    {
        if (Empty(run, s))
            run.SetObj(s, file, value);
        else
            run.Err.Write($"{s.Name} not empty cannot {what}\n");
    }

    // slab_empty(): a cache without objects may still hold slabs; shrinking frees them first.
    private static bool Empty(SlabinfoRun run, SlabCache s)
    {
        if (s.Objects > 0)
            return false;
        if (s.Slabs != 0)
            run.SetObj(s, "shrink", 1);
        return true;
    }
}
