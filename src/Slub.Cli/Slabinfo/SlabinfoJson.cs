using System.Text.Json;

namespace Slub.Cli.Slabinfo;

/// <summary>
/// <c>--json</c>: the data of any listing as one JSON object instead of text. The object always has
/// <c>tool</c>, <c>dialect</c>, <c>source</c>, <c>pageSize</c> and <c>mode</c>; then, by mode:
/// <list type="bullet">
/// <item><c>aliases</c> (-a): <c>aliases</c>, an array of {alias, target} in the order the text would print them.</item>
/// <item><c>totals</c> (-T): <c>totals</c>, the summary numbers (raw, not store_size-formatted).</item>
/// <item><c>xtotals</c> (-X): <c>totals</c> and <c>sections</c>, each {sort, caches}.</item>
/// <item><c>caches</c> (listing, -r, -n, -o, -t, -D): <c>caches</c>, the caches the text would cover, in its order.</item>
/// </list>
/// Every cache object carries its attributes and the derived columns (size, loss, partialPercent,
/// efficiencyPercent, flags) with the same arithmetic as the text.
/// </summary>
internal static class SlabinfoJson
{
    public static void Write(SlabinfoRun run)
    {
        var o = run.Settings;
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("tool", "slabinfo");
            w.WriteString("dialect", o.Dialect == SlabinfoDialect.Smo ? "smo" : "current");
            w.WriteString("source", run.Source.Description);
            w.WriteNumber("pageSize", run.PageSize);
            w.WriteString("pattern", o.Pattern);
            if (o.ShowAlias)
            {
                w.WriteString("mode", "aliases");
                w.WriteStartArray("aliases");
                foreach (var a in AliasWriter.Prepare(run))
                {
                    w.WriteStartObject();
                    w.WriteString("alias", a.Name);
                    w.WriteString("target", a.Slab!.Name);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            else if (o.ExtendedTotals || o.ShowTotals)
            {
                w.WriteString("mode", o.ExtendedTotals ? "xtotals" : "totals");
                WriteTotals(w, run);
                if (o.ExtendedTotals)
                {
                    SlabOrdering.LinkSlabs(run.Tree);
                    SlabOrdering.RenameSlabs(run.Tree, o.ShowFirstAlias);
                    w.WriteStartArray("sections");
                    foreach (var section in SlabinfoTool.ExtendedSections(run))
                    {
                        SlabinfoTool.SetSort(o, section.Loss, section.Size, section.Partial);
                        SlabOrdering.SortSlabs(run);
                        w.WriteStartObject();
                        w.WriteString("sort", section.Key);
                        WriteCaches(w, run, SlabinfoTool.Visited(run).Where(s => ListingWriter.Selected(run, s)));
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                }
            }
            else
            {
                w.WriteString("mode", "caches");
                SlabOrdering.LinkSlabs(run.Tree);
                SlabOrdering.RenameSlabs(run.Tree, o.ShowFirstAlias);
                SlabOrdering.SortSlabs(run);
                var listing = !o.ShowNuma && !o.ShowTrack && !o.ShowOps && o.ShowSlab && run.Tree.ActualSlabs != 1;
                WriteCaches(w, run, SlabinfoTool.Visited(run).Where(s =>
                    s.Name != "*" && (!listing || ListingWriter.Selected(run, s))));
            }
            w.WriteEndObject();
        }
        run.Out.Write(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
        run.Out.Write("\n");
    }

    private static void WriteTotals(Utf8JsonWriter w, SlabinfoRun run)
    {
        var t = TotalsSummary.Compute(run.Tree, run.PageSize, out var empty);
        if (t is null)
        {
            w.WriteNull("totals");
            w.WriteString("totalsEmpty", empty!.TrimEnd('\n'));
            return;
        }
        w.WriteStartObject("totals");
        w.WriteNumber("caches", t.Caches);
        w.WriteNumber("aliases", t.Aliases);
        w.WriteNumber("aliasTargets", t.AliasTargets);
        w.WriteNumber("active", t.Active);
        w.WriteNumber("memoryLossPercent", t.MemoryRatio);
        w.WriteNumber("partialObjectPercent", t.ObjectRatio);
        void SpreadOf(string name, Spread s, bool total = true)
        {
            w.WriteStartObject(name);
            w.WriteNumber("average", s.Average);
            w.WriteNumber("min", s.Min);
            w.WriteNumber("max", s.Max);
            if (total)
                w.WriteNumber("total", s.Total);
            w.WriteEndObject();
        }
        w.WriteStartObject("perCache");
        SpreadOf("objects", t.Objects);
        SpreadOf("slabs", t.Slabs);
        SpreadOf("partialSlabs", t.PartialSlabs);
        SpreadOf("partialSlabPercent", t.PartialSlabPercent);
        SpreadOf("partialObjects", t.PartialObjects);
        SpreadOf("partialObjectPercent", t.PartialObjectPercent);
        SpreadOf("memory", t.Memory);
        SpreadOf("used", t.Used);
        SpreadOf("loss", t.Loss);
        w.WriteEndObject();
        w.WriteStartObject("perObject");
        SpreadOf("memory", t.ObjectMemory, total: false);
        SpreadOf("user", t.ObjectUser, total: false);
        SpreadOf("loss", t.ObjectLoss, total: false);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteCaches(Utf8JsonWriter w, SlabinfoRun run, IEnumerable<SlabCache> caches)
    {
        w.WriteStartArray("caches");
        foreach (var s in caches)
        {
            w.WriteStartObject();
            w.WriteString("name", s.Name);
            w.WriteString("directory", s.DirectoryName);
            w.WriteNumber("objects", s.Objects);
            w.WriteNumber("objectSize", s.ObjectSize);
            w.WriteNumber("slabSize", s.SlabSize);
            w.WriteNumber("objsPerSlab", s.ObjsPerSlab);
            w.WriteNumber("order", s.Order);
            w.WriteNumber("slabs", s.Slabs);
            w.WriteNumber("partial", s.Partial);
            w.WriteNumber("cpuSlabs", s.CpuSlabs);
            w.WriteNumber("objectsPartial", s.ObjectsPartial);
            w.WriteNumber("aliases", s.Aliases);
            w.WriteNumber("align", s.Align);
            w.WriteNumber("size", s.TotalSize(run.PageSize));
            w.WriteNumber("loss", s.Waste(run.PageSize));
            w.WriteNumber("partialPercent", ListingWriter.PartialPercent(run, s));
            w.WriteNumber("efficiencyPercent", ListingWriter.EfficiencyPercent(run, s));
            w.WriteString("flags", ListingWriter.Flags(run, s));
            w.WriteBoolean("ctor", s.Ctor);
            w.WriteBoolean("movable", s.Movable);
            if (run.IsSmo)
            {
                w.WriteNumber("defragUsedRatio", s.DefragUsedRatio);
                w.WriteNumber("remoteNodeDefragRatio", s.RemoteNodeDefragRatio);
            }
            w.WriteStartObject("activity");
            w.WriteNumber("allocFastpath", s.AllocFastpath);
            w.WriteNumber("allocSlowpath", s.AllocSlowpath);
            w.WriteNumber("freeFastpath", s.FreeFastpath);
            w.WriteNumber("freeSlowpath", s.FreeSlowpath);
            w.WriteNumber("orderFallback", s.OrderFallback);
            w.WriteNumber("cmpxchgDoubleFail", s.CmpxchgDoubleFail);
            w.WriteNumber("cmpxchgDoubleCpuFail", s.CmpxchgDoubleCpuFail);
            w.WriteEndObject();
            w.WriteStartArray("numaSlabs");
            for (var node = 0; node <= run.Tree.HighestNode; node++)
                w.WriteNumberValue(s.Numa[node]);
            w.WriteEndArray();
            w.WriteStartArray("numaPartial");
            for (var node = 0; node <= run.Tree.HighestNode; node++)
                w.WriteNumberValue(s.NumaPartial[node]);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }
}
