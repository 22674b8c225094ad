namespace Slub.Benchmarks.Mobility;

/// <summary>
/// The managed twin of <see cref="FragmentedCache"/>: N <see cref="ManagedObject64"/> in a reference table,
/// promoted to gen2 and compacted, then the same 70% dropped at the same random positions. The measured
/// collection then has to mark, plan, relocate and compact exactly the survivors of that pattern.
/// </summary>
public sealed class FragmentedHeap
{
    private readonly ManagedObject64?[] _refs;

    public FragmentedHeap(int objects)
    {
        _refs = new ManagedObject64?[objects];
        for (int i = 0; i < objects; i++) _refs[i] = new ManagedObject64(i);
        // Two full compacting collections: every object ends up in gen2, packed in allocation order, so the
        // heap before the drop looks like a full slab cache before the churn.
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        foreach (int i in Fragmentation.IndicesToFree(objects)) _refs[i] = null;
    }

    /// <summary>Surviving objects (what the collection moves).</summary>
    public int Survivors => _refs.Count(r => r is not null);

    /// <summary>The measured step: a blocking, compacting gen2 collection.</summary>
    public static void CompactingCollection() =>
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
}
