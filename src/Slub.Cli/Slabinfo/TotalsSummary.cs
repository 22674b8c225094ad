namespace Slub.Cli.Slabinfo;

/// <summary>Average / minimum / maximum / total of one quantity over the active caches.</summary>
public readonly record struct Spread(ulong Average, ulong Min, ulong Max, ulong Total);

/// <summary>
/// The numbers of the -T summary. Only caches with slabs and objects count ("active"), but every cache read counts,
/// including merged ':' caches the pattern did not select.
/// </summary>
public sealed record TotalsSummary(
    int Caches, int Aliases, int AliasTargets, int Active,
    ulong MemoryRatio, ulong ObjectRatio,
    Spread Objects, Spread Slabs, Spread PartialSlabs, Spread PartialSlabPercent, Spread PartialObjects,
    Spread PartialObjectPercent, Spread Memory, Spread Used, Spread Loss,
    Spread ObjectMemory, Spread ObjectUser, Spread ObjectLoss)
{
    /// <summary>Computes the summary, or returns null with the tool's "No objects" / "No slabs" reason.</summary>
    public static TotalsSummary? Compute(SlabTree tree, int pageSize, out string? emptyReason)
    {
        const ulong Max = 1UL << 63;
        var active = 0;
        ulong minObjsize = Max, maxObjsize = 0, minPartial = Max, maxPartial = 0, totalPartial = 0;
        ulong minSlabs = Max, maxSlabs = 0, totalSlabs = 0, minSize = Max, maxSize = 0, totalSize = 0;
        ulong minUsed = Max, maxUsed = 0, totalUsed = 0, minWaste = Max, maxWaste = 0, totalWaste = 0;
        ulong minObjects = Max, maxObjects = 0, totalObjects = 0, minObjwaste = Max, maxObjwaste = 0, totalObjwaste = 0;
        ulong minMemobj = Max, maxMemobj = 0, totalObjsize = 0;
        ulong minPpart = 100, maxPpart = 0, totalPpart = 0, minPartobj = Max, maxPartobj = 0, totalPartobj = 0;
        ulong minPpartobj = 100, maxPpartobj = 0, totalPpartobj = 0;
        unchecked
        {
            foreach (var s in tree.Caches)
            {
                if (s.Slabs == 0 || s.Objects == 0)
                    continue;
                active++;
                var size = s.TotalSize(pageSize);
                var used = s.Objects * s.ObjectSize;
                var wasted = size - used;
                var objwaste = (ulong)(s.SlabSize - s.ObjectSize);
                var ppart = Math.Min(s.Partial * 100 / s.Slabs, 100UL);
                var ppartobj = Math.Min(s.ObjectsPartial * 100 / s.Objects, 100UL);

                minObjsize = Math.Min(minObjsize, s.ObjectSize); maxObjsize = Math.Max(maxObjsize, s.ObjectSize);
                minPartial = Math.Min(minPartial, s.Partial); maxPartial = Math.Max(maxPartial, s.Partial);
                minSlabs = Math.Min(minSlabs, s.Slabs); maxSlabs = Math.Max(maxSlabs, s.Slabs);
                minSize = Math.Min(minSize, size); maxSize = Math.Max(maxSize, size);
                minWaste = Math.Min(minWaste, wasted); maxWaste = Math.Max(maxWaste, wasted);
                minObjwaste = Math.Min(minObjwaste, objwaste); maxObjwaste = Math.Max(maxObjwaste, objwaste);
                minObjects = Math.Min(minObjects, s.Objects); maxObjects = Math.Max(maxObjects, s.Objects);
                minUsed = Math.Min(minUsed, used); maxUsed = Math.Max(maxUsed, used);
                minPartobj = Math.Min(minPartobj, s.ObjectsPartial); maxPartobj = Math.Max(maxPartobj, s.ObjectsPartial);
                minPpart = Math.Min(minPpart, ppart); maxPpart = Math.Max(maxPpart, ppart);
                minPpartobj = Math.Min(minPpartobj, ppartobj); maxPpartobj = Math.Max(maxPpartobj, ppartobj);
                minMemobj = Math.Min(minMemobj, s.SlabSize); maxMemobj = Math.Max(maxMemobj, s.SlabSize);

                totalPartial += s.Partial; totalSlabs += s.Slabs; totalSize += size; totalWaste += wasted;
                totalObjects += s.Objects; totalUsed += used; totalPartobj += s.ObjectsPartial;
                totalPpart += ppart; totalPpartobj += ppartobj;
                totalObjwaste += s.Objects * objwaste;
                totalObjsize += s.Objects * s.SlabSize;
            }
            if (totalObjects == 0)
            {
                emptyReason = "No objects\n";
                return null;
            }
            if (active == 0)
            {
                emptyReason = "No slabs\n";
                return null;
            }
            emptyReason = null;
            var n = (ulong)active;
            // [quirk] The PartObjs "average" is overwritten with a percentage in the C tool.
            var avgPartobj = totalPartobj * 100 / totalObjects;
            return new TotalsSummary(
                tree.Caches.Count, tree.Aliases.Count, tree.AliasTargets, active,
                totalUsed == 0 ? 0 : totalWaste * 100 / totalUsed,
                totalPartobj * 100 / totalObjects,
                new(totalObjects / n, minObjects, maxObjects, totalObjects),
                new(totalSlabs / n, minSlabs, maxSlabs, totalSlabs),
                new(totalPartial / n, minPartial, maxPartial, totalPartial),
                new(totalPpart / n, minPpart, maxPpart, totalPartial * 100 / totalSlabs),
                new(avgPartobj, minPartobj, maxPartobj, totalPartobj),
                new(totalPpartobj / n, minPpartobj, maxPpartobj, totalPartobj * 100 / totalObjects),
                new(totalSize / n, minSize, maxSize, totalSize),
                new(totalUsed / n, minUsed, maxUsed, totalUsed),
                new(totalWaste / n, minWaste, maxWaste, totalWaste),
                new(totalObjsize / totalObjects, minMemobj, maxMemobj, 0),
                new(totalUsed / totalObjects, minObjsize, maxObjsize, 0),
                new(totalObjwaste / totalObjects, minObjwaste, maxObjwaste, 0));
        }
    }
}
