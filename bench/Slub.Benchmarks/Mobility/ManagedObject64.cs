namespace Slub.Benchmarks.Mobility;

/// <summary>
/// A managed object of 64 bytes on the heap: 16 bytes of header and method table plus 48 bytes of fields,
/// the same footprint as a slab object, so the GC copies the same bytes per survivor.
/// </summary>
public sealed class ManagedObject64
{
#pragma warning disable CS0169, CS0649 // the fields exist for their size
    private long _a, _b, _c, _d, _e;
#pragma warning restore CS0169, CS0649
    public long Slot;

    public ManagedObject64(long slot) => Slot = slot;
}
