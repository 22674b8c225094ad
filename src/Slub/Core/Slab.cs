using Slub.Pages;

namespace Slub;

/// <summary>Which list a slab is on (the kernel keeps this implicit; we keep it explicit for checking).</summary>
internal enum SlabList : byte { None, Partial, Full, CpuPartial, CpuSlab, Isolated }

/// <summary>
/// A slab: a page block carved into equal slots of one cache (the kernel's <c>struct slab</c>).
/// </summary>
/// <remarks>
/// <para><b>Which lock guards what.</b> <see cref="Freelist"/>, <see cref="Inuse"/> and <see cref="Frozen"/>
/// change only under the slab lock (<see cref="LockWord"/>). List membership (<see cref="List"/>,
/// <see cref="Prev"/>, <see cref="Next"/>) changes only under the owning node's list lock, except for the
/// per-CPU partial chain, which the owning CPU's lock guards. See docs/architecture.md for the order.</para>
/// <para><b>Frozen.</b> A frozen slab is owned by someone other than the node lists: a CPU (its current slab
/// or its partial chain) or the defragmenter (isolated). Nobody but the owner allocates from it, and a free
/// into it only pushes the slot onto <see cref="Freelist"/> — no list changes, no discard.</para>
/// <para><b>Inuse</b> counts slots not on <see cref="Freelist"/>: objects handed out plus, for a CPU slab,
/// the objects sitting on that CPU's private free list.</para>
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
    /// <summary>First object (slot 0 plus the left red zone).</summary>
    public nint FirstObject;

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
