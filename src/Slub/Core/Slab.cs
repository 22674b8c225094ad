using Slub.Pages;

namespace Slub;

/// <summary>Which list a slab is on (the kernel keeps this implicit; we keep it explicit for checking).</summary>
/// <remarks>Isolated: a defrag source, being emptied. Reserved: a defrag target whose free slots the
/// defragmenting thread hands out to migrate (see MigrationContext). Both are frozen and on no list.</remarks>
internal enum SlabList : byte { None, Partial, Full, CpuPartial, CpuSlab, Isolated, Reserved }

/// <summary>
/// A slab: a page block carved into equal slots of one cache (the kernel's <c>struct slab</c>).
/// </summary>
/// <remarks>
/// <para><b>Which lock guards what.</b> <see cref="Freelist"/>, <see cref="Inuse"/> and <see cref="Frozen"/>
/// change only under the slab lock (<see cref="LockWord"/>). List membership (<see cref="List"/>,
/// <see cref="Prev"/>, <see cref="Next"/>) changes only under the owning node's list lock, except for the
/// per-CPU partial chain, which the owning CPU's lock guards. See docs/architecture.md for the order.</para>
/// <para><b>Frozen.</b> A frozen slab is owned by someone other than the node lists: a CPU (its current slab
/// or its partial chain), the defragmenter (isolated, reserved), or its creator (a new slab, until published).
/// Nobody but the owner allocates from it, and a free into it only pushes the slot onto <see cref="Freelist"/>
/// — no list changes, no discard. An unfrozen slab on no list is either full and untracked (no full list kept;
/// a NUMA move may isolate it under the slab lock) or empty and about to be discarded. A defrag source that
/// emptied stays frozen until it is discarded.</para>
/// <para><b>Inuse</b> counts slots not on <see cref="Freelist"/>: objects handed out plus, for a CPU slab,
/// the objects sitting on that CPU's private free list.</para>
/// <para><b>FreeMap</b> (movable, non-debug caches only): bit i is set exactly when slot i is on
/// <see cref="Freelist"/>, so its population count is <c>Objects - Inuse</c>. It changes with Freelist, under
/// the slab lock, only on the slab-level paths (new slab, refill, remote free, deactivation) — never on the
/// per-thread magazine or per-CPU free-list fast paths. Defragmentation reads it to find the objects in use
/// without touching a free slot. One exception, an emptied defrag source (isolated, frozen, in use 0): every
/// bit is set but its free list is empty, since it goes back to the page allocator without being allocated from
/// again (<c>KmemCache.EmptyWholeSource</c>).</para>
/// </remarks>
internal sealed class Slab : PageBlock
{
    public readonly KmemCache Cache;
    public nint Freelist;
    public int Inuse;
    public bool Frozen;
    public int LockWord;
    public SlabList List;
    public Slab? Prev, Next;
    /// <summary>The fill-level bucket of the partial list this slab is linked in (see <see cref="PartialList"/>).</summary>
    public byte Bucket;
    /// <summary>Objects in this slab.</summary>
    public int Objects;
    /// <summary>Free objects counted for this slab when it joined a CPU's partial chain (its share of the kernel's
    /// <c>pobjects</c>, which keeps the counts of join time); taken off the chain's count when it leaves.</summary>
    public int CpuPartialFree;
    /// <summary>First object (slot 0 plus the left red zone).</summary>
    public nint FirstObject;
    /// <summary>Bit i set ⇔ slot i is on <see cref="Freelist"/> (see remarks); null when not kept.</summary>
    public ulong[]? FreeMap;

    public Slab(KmemCache cache) => Cache = cache;

    public int Free => Objects - Inuse;

    /// <summary>Index of the slot holding <paramref name="obj"/>, or -1 when it is not at an object boundary inside this slab.</summary>
    public int IndexOf(nint obj)
    {
        ulong offset = (ulong)(obj - FirstObject);   // negative offsets wrap to huge values and fail the bound
        ulong size = (ulong)Cache.SlabSize;
        if (offset >= (ulong)Objects * size) return -1;
        ulong index = Cache.DivideBySize(offset);
        return index * size == offset ? (int)index : -1;
    }

    public nint ObjectAt(int index) => FirstObject + (nint)index * Cache.Geometry.Size;

    /// <summary>Slot index of an object already known to be at a boundary of this slab (no check).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public int SlotOf(nint obj) => (int)Cache.DivideBySize((ulong)(obj - FirstObject));

    /// <summary>Starts a free map with every slot free (a new slab; frozen, not yet published).</summary>
    public void InitFreeMap()
    {
        int words = (Objects + 63) >> 6;
        var map = FreeMap is { } old && old.Length == words ? old : new ulong[words];   // a recycled descriptor keeps its map
        for (int w = 0; w < map.Length; w++) map[w] = ulong.MaxValue;   // a word or a few: a plain loop, not a generic Fill call
        if ((Objects & 63) != 0) map[^1] = (1UL << (Objects & 63)) - 1;
        FreeMap = map;
    }

    /// <summary>The whole free list was taken (by a CPU or a reservation): no slot is on it now. Slab lock held.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public void ClearFreeMap()
    {
        if (FreeMap is { } map) map.AsSpan().Clear();
    }

    /// <summary>Records that <paramref name="obj"/> went onto <see cref="Freelist"/>. Slab lock held.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public void MarkFree(nint obj)
    {
        if (FreeMap is { } map)
        {
            int i = SlotOf(obj);
            map[i >> 6] |= 1UL << i;
        }
    }

    /// <summary>Is slot <paramref name="index"/> on <see cref="Freelist"/> according to the map? Slab lock held; map present.</summary>
    public bool IsMarkedFree(int index) => (FreeMap![index >> 6] & (1UL << index)) != 0;

    public override string ToString() =>
        $"slab 0x{Address:x} objects={Objects} used={Inuse} fp=0x{Freelist:x} frozen={(Frozen ? 1 : 0)} node={Node}";
}

/// <summary>A doubly linked list of slabs threaded through <see cref="Slab.Prev"/>/<see cref="Slab.Next"/>.</summary>
internal struct SlabLinkedList
{
    public Slab? Head, Tail;
    public long Count;

    public void AddHead(Slab s)
    {
        s.Prev = null; s.Next = Head;
        if (Head is not null) Head.Prev = s; else Tail = s;
        Head = s; Count++;
    }

    public void AddTail(Slab s)
    {
        s.Next = null; s.Prev = Tail;
        if (Tail is not null) Tail.Next = s; else Head = s;
        Tail = s; Count++;
    }

    public void Remove(Slab s)
    {
        if (s.Prev is not null) s.Prev.Next = s.Next; else Head = s.Next;
        if (s.Next is not null) s.Next.Prev = s.Prev; else Tail = s.Prev;
        s.Prev = s.Next = null; Count--;
    }
}
