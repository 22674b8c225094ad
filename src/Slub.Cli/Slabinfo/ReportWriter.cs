using static Slub.Cli.Slabinfo.CFormat;

namespace Slub.Cli.Slabinfo;

/// <summary>The per-cache report (-r) and its parts: ops (-o), tracking (-t), and the SLUB_STATS counters.</summary>
internal static class ReportWriter
{
    private static string OnOff(bool on) => on ? "On " : "Off";

    public static void Report(SlabinfoRun run, SlabCache s)
    {
        if (s.Name == "*")
            return;
        var w = run.Out;
        var page = s.SlabBytes(run.PageSize);
        var pageU = (ulong)(long)page;
        w.Write($"\nSlabcache: {Left(s.Name, 15)}  Aliases: {Num(s.Aliases, 2)} Order : {Num(s.Order, 2)} Objects: {UNum(s.Objects)}\n");
        if (s.HwcacheAlign != 0) w.Write("** Hardware cacheline aligned\n");
        if (s.CacheDma != 0) w.Write("** Memory is allocated in a special DMA zone\n");
        if (s.DestroyByRcu != 0) w.Write("** Slabs are destroyed via RCU\n");
        if (s.ReclaimAccount != 0) w.Write("** Reclaim accounting active\n");
        if (run.IsSmo && s.Movable) w.Write($"** Defragmentation at {s.DefragUsedRatio}%\n");
        w.Write("\nSizes (bytes)     Slabs              Debug                Memory\n");
        w.Write(new string('-', 72) + "\n");
        unchecked
        {
            var used = s.Objects * s.ObjectSize;
            w.Write($"Object : {Num((int)s.ObjectSize, 7)}  Total  : {Num((long)s.Slabs, 7)}   Sanity Checks : {OnOff(s.SanityChecks != 0)}  Total: {Num((long)(s.Slabs * pageU), 7)}\n");
            w.Write($"SlabObj: {Num((int)s.SlabSize, 7)}  Full   : {Num((long)(s.Slabs - s.Partial - (ulong)(long)s.CpuSlabs), 7)}   Redzoning     : {OnOff(s.RedZone != 0)}  Used : {Num((long)used, 7)}\n");
            w.Write($"SlabSiz: {Num(page, 7)}  Partial: {Num((long)s.Partial, 7)}   Poisoning     : {OnOff(s.Poison != 0)}  Loss : {Num((long)(s.Slabs * pageU - used), 7)}\n");
            w.Write($"Loss   : {Num((int)(s.SlabSize - s.ObjectSize), 7)}  CpuSlab: {Num(s.CpuSlabs, 7)}   Tracking      : {OnOff(s.StoreUser != 0)}  Lalig: {Num((long)((ulong)(s.SlabSize - s.ObjectSize) * s.Objects), 7)}\n");
            w.Write($"Align  : {Num(s.Align, 7)}  Objects: {Num((int)s.ObjsPerSlab, 7)}   Tracing       : {OnOff(s.Trace != 0)}  Lpadd: {Num((long)((ulong)((uint)page - s.ObjsPerSlab * s.SlabSize) * s.Slabs), 7)}\n");
        }
        Ops(run, s);
        Tracking(run, s);
        NumaWriter.Numa(run, s, report: true);
        Stats(run, s);
    }

    public static void Ops(SlabinfoRun run, SlabCache s)
    {
        if (s.Name == "*")
            return;
        var text = SlabTreeReader.ReadLimited(run.Source, s.Name, "ops");
        if (text.Length > 0)
            run.Out.Write($"\n{s.Name}: kmem_cache operations\n{new string('-', 44)}\n{text}");
        else
            run.Out.Write($"\n{s.Name} has no kmem_cache operations\n");
    }

    // The C tool does not skip "*" here, so hidden caches print a section named "*".
    public static void Tracking(SlabinfoRun run, SlabCache s)
    {
        run.Out.Write($"\n{s.Name}: Kernel object allocation\n{new string('-', 71)}\n");
        run.Out.Write(TraceText(run, s, "alloc_traces", "alloc_calls"));
        run.Out.Write($"\n{s.Name}: Kernel object freeing\n{new string('-', 72)}\n");
        run.Out.Write(TraceText(run, s, "free_traces", "free_calls"));
    }

    // The current tool reads debugfs first; both fall back to the sysfs file, then to "No Data".
    private static string TraceText(SlabinfoRun run, SlabCache s, string debugName, string sysfsName)
    {
        if (!run.IsSmo)
        {
            string? debug;
            try
            {
                debug = run.Source.ReadDebugAttribute(s.Name, debugName);
            }
            catch (SlabSourceException)
            {
                debug = null;
            }
            var text = SlabTreeReader.Truncate(debug);
            if (text.Length > 0)
                return text;
        }
        var calls = SlabTreeReader.ReadLimited(run.Source, s.Name, sysfsName);
        return calls.Length > 0 ? calls : "No Data\n";
    }

    public static void Stats(SlabinfoRun run, SlabCache s)
    {
        if (s.AllocSlab == 0)
            return;
        unchecked
        {
            var totalAlloc = s.AllocFastpath + s.AllocSlowpath;
            var totalFree = s.FreeFastpath + s.FreeSlowpath;
            if (totalAlloc == 0)
                return;
            var w = run.Out;
            ulong PctA(ulong v) => v * 100 / totalAlloc;
            ulong PctF(ulong v) => totalFree != 0 ? v * 100 / totalFree : 0;
            void Line(string label, ulong a, ulong f, ulong pa, ulong pf) =>
                w.Write($"{label} {UNum(a, 8)} {UNum(f, 8)} {UNum(pa, 3)} {UNum(pf, 3)}\n");

            w.Write("\n");
            w.Write("Slab Perf Counter       Alloc     Free %Al %Fr\n");
            w.Write(new string('-', 50) + "\n");
            Line("Fastpath            ", s.AllocFastpath, s.FreeFastpath, PctA(s.AllocFastpath), PctF(s.FreeFastpath));
            Line("Slowpath            ", totalAlloc - s.AllocFastpath, s.FreeSlowpath, PctA(totalAlloc - s.AllocFastpath), PctF(s.FreeSlowpath));
            Line("Page Alloc          ", s.AllocSlab, s.FreeSlab, PctA(s.AllocSlab), PctF(s.FreeSlab));
            var toPartial = s.DeactivateToHead + s.DeactivateToTail;
            Line("Add partial         ", toPartial, s.FreeAddPartial, PctA(toPartial), PctF(s.FreeAddPartial));
            Line("Remove partial      ", s.AllocFromPartial, s.FreeRemovePartial, PctA(s.AllocFromPartial), PctF(s.FreeRemovePartial));
            Line("Cpu partial list    ", s.CpuPartialAlloc, s.CpuPartialFree, PctA(s.CpuPartialAlloc), PctF(s.CpuPartialFree));
            Line("RemoteObj/SlabFrozen", s.DeactivateRemoteFrees, s.FreeFrozen, PctA(s.DeactivateRemoteFrees), PctF(s.FreeFrozen));
            w.Write($"Total                {UNum(totalAlloc, 8)} {UNum(totalFree, 8)}\n\n");
            if (s.CpuslabFlush != 0)
                w.Write($"Flushes {UNum(s.CpuslabFlush, 8)}\n");
            var total = s.DeactivateFull + s.DeactivateEmpty + s.DeactivateToHead + s.DeactivateToTail + s.DeactivateBypass;
            if (total != 0)
            {
                void Deact(string label, ulong v) => w.Write($"{Left(label, 30)}{UNum(v, 7)}  {UNum(v * 100 / total, 3)}%\n");
                w.Write("\nSlab Deactivation             Occurrences %\n");
                w.Write(new string('-', 49) + "\n");
                Deact("Slab full", s.DeactivateFull);
                Deact("Slab empty", s.DeactivateEmpty);
                Deact("Moved to head of partial list", s.DeactivateToHead);
                Deact("Moved to tail of partial list", s.DeactivateToTail);
                Deact("Deactivation bypass", s.DeactivateBypass);
                Deact("Refilled from foreign frees", s.AllocRefill);
                Deact("Node mismatch", s.AllocNodeMismatch);
            }
            if (s.CmpxchgDoubleFail != 0 || s.CmpxchgDoubleCpuFail != 0)
            {
                w.Write("\nCmpxchg_double Looping\n------------------------\n");
                w.Write($"Locked Cmpxchg Double redos   {UNum(s.CmpxchgDoubleFail)}\nUnlocked Cmpxchg Double redos {UNum(s.CmpxchgDoubleCpuFail)}\n");
            }
        }
    }
}
