using static Slub.Cli.Slabinfo.CFormat;

namespace Slub.Cli.Slabinfo;

/// <summary>The one-line-per-cache listing (slabcache() and first_line() of the C tool).</summary>
internal static class ListingWriter
{
    public static void Header(SlabinfoRun run)
    {
        if (run.Settings.ShowActivity)
            run.Out.Write("Name                   Objects      Alloc       Free   %Fast Fallb O CmpX   UL\n");
        else
            run.Out.Write($"Name                   Objects Objsize           {(run.Settings.SortLoss ? " Loss" : "Space")} Slabs/Part/Cpu  O/S O %Fr %Ef Flg\n");
    }

    /// <summary>Whether the listing shows <paramref name="s"/> as a row (the filters of slabcache()).</summary>
    public static bool Selected(SlabinfoRun run, SlabCache s)
    {
        var o = run.Settings;
        if (s.Name == "*" || (o.UnreclaimOnly && s.ReclaimAccount != 0))
            return false;
        if (o.SkipZero && !o.ShowEmpty && s.Slabs == 0)
            return false;
        if (o.ShowEmpty && s.Slabs != 0)
            return false;
        if (run.IsSmo && ((o.ShowCtor && !s.Ctor) || (o.ShowMovable && !s.Movable)))
            return false;
        return true;
    }

    public static void Row(SlabinfoRun run, SlabCache s)
    {
        var o = run.Settings;
        if (s.Name == "*" || (o.UnreclaimOnly && s.ReclaimAccount != 0))
            return;
        // A pattern that leaves a single cache turns the listing into its report.
        if (run.Tree.ActualSlabs == 1)
        {
            ReportWriter.Report(run, s);
            return;
        }
        if (!Selected(run, s))
            return;
        var size = run.Size(o.SortLoss ? s.Waste(run.PageSize) : s.TotalSize(run.PageSize));
        var dist = $"{UNum(unchecked(s.Slabs - (ulong)(long)s.CpuSlabs))}/{UNum(s.Partial)}/{Num(s.CpuSlabs)}";
        if (run.Line++ == 0)
            Header(run);
        var flags = Flags(run, s);
        if (o.ShowActivity)
        {
            var totalAlloc = unchecked(s.AllocFastpath + s.AllocSlowpath);
            var totalFree = unchecked(s.FreeFastpath + s.FreeSlowpath);
            run.Out.Write($"{Left(s.Name, 21)} {Num((long)s.Objects, 8)} {Num((long)totalAlloc, 10)} {Num((long)totalFree, 10)} " +
                $"{Num(totalAlloc != 0 ? (long)(s.AllocFastpath * 100 / totalAlloc) : 0, 3)} " +
                $"{Num(totalFree != 0 ? (long)(s.FreeFastpath * 100 / totalFree) : 0, 3)} " +
                $"{Num((long)s.OrderFallback, 5)} {Num(s.Order, 1)} {Num((long)s.CmpxchgDoubleFail, 4)} {Num((long)s.CmpxchgDoubleCpuFail, 4)}\n");
        }
        else
        {
            run.Out.Write($"{Left(s.Name, 21)} {Num((long)s.Objects, 8)} {Num((int)s.ObjectSize, 7)} {Right(size, 15)} {Right(dist, 14)} " +
                $"{Num((int)s.ObjsPerSlab, 4)} {Num(s.Order, 1)} {Num((long)PartialPercent(run, s), 3)} {Num((long)EfficiencyPercent(run, s), 3)} {flags}\n");
        }
    }

    /// <summary>The %Fr column. The SMO series divides by slabs*objs_per_slab (a slab count over an object count).</summary>
    public static ulong PartialPercent(SlabinfoRun run, SlabCache s)
    {
        if (s.Slabs == 0)
            return 100;
        var divisor = run.IsSmo ? unchecked(s.Slabs * s.ObjsPerSlab) : s.Slabs;
        // The C tool would die of SIGFPE here; a zero objs_per_slab shows 0 instead.
        return divisor == 0 ? 0 : unchecked(s.Partial * 100) / divisor;
    }

    /// <summary>The %Ef column: object bytes over slab bytes.</summary>
    public static ulong EfficiencyPercent(SlabinfoRun run, SlabCache s)
    {
        if (s.Slabs == 0)
            return 100;
        var size = s.TotalSize(run.PageSize);
        return size == 0 ? 0 : unchecked(s.Objects * s.ObjectSize * 100) / size;
    }

    /// <summary>The Flg column letters, in the tool's order.</summary>
    public static string Flags(SlabinfoRun run, SlabCache s)
    {
        var f = new System.Text.StringBuilder();
        if (s.Aliases != 0) f.Append('*');
        if (s.CacheDma != 0) f.Append('d');
        if (run.IsSmo && s.Ctor) f.Append('C');
        if (run.IsSmo && s.Movable) f.Append('M');
        if (s.HwcacheAlign != 0) f.Append('A');
        if (s.Poison != 0) f.Append('P');
        if (s.ReclaimAccount != 0) f.Append('a');
        if (s.RedZone != 0) f.Append('Z');
        if (s.SanityChecks != 0) f.Append('F');
        if (s.StoreUser != 0) f.Append('U');
        if (s.Trace != 0) f.Append('T');
        return f.ToString();
    }
}
