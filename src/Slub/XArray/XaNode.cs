using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Slub.XArray;

/// <summary>
/// The native layout of a node (<c>struct xa_node</c>), 560 bytes, allocated from the <c>xa_node</c> slab cache.
/// </summary>
/// <remarks>
/// Differences from the kernel's 576 bytes: no <c>private_list</c>/<c>rcu_head</c> union (deferred freeing is done
/// by <see cref="Rcu.EpochReclaimer"/>, and there is no workingset list), and <see cref="Array"/> holds the owning
/// array's registry id instead of a pointer (see <see cref="XArrayRegistry"/>). Fields a lock-free reader reads
/// (<see cref="Shift"/>, <see cref="Offset"/>, <see cref="Parent"/>, slots, marks) are written with single aligned
/// stores by writers holding the array's lock.
/// </remarks>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct XaNode
{
    /// <summary>Index bits below this node: 0 for a leaf, then 6, 12, … 60.</summary>
    public byte Shift;
    /// <summary>This node's slot number in its parent.</summary>
    public byte Offset;
    /// <summary>Non-null slots (entries, siblings, retry entries and children).</summary>
    public byte Count;
    /// <summary>Slots holding a value entry or a sibling of one.</summary>
    public byte NrValues;
    /// <summary>
    /// For a leaf: <c>index &gt;&gt; 6</c> of the 64 indices it covers (fixed for the leaf's life) if that is below
    /// <see cref="XArray.DirectoryMaxKeys"/>, else <see cref="NoDirKey"/>: its entry in the leaf directory (docs/xarray.md).
    /// Set when the leaf is linked, copied by migration; unused in interior nodes.
    /// </summary>
    public uint DirKey;
    /// <summary>Parent node, or null for the root.</summary>
    public XaNode* Parent;
    /// <summary>Owning array's registry id; <see cref="NoArray"/> when not in use, <see cref="RetiredArray"/> while waiting for its grace period.</summary>
    public long Array;
    /// <summary>The 64 entries.</summary>
    public fixed ulong Slots[XaCodec.ChunkSize];
    /// <summary>One bitmap per mark: bit i set when slot i (or something below it) carries the mark.</summary>
    public fixed ulong Marks[3];

    /// <summary><c>array</c> of a node that is free or freshly allocated.</summary>
    public const long NoArray = 0;
    /// <summary><c>array</c> of a node unlinked and waiting for its grace period (the kernel's <c>XA_RCU_FREE</c>).</summary>
    public const long RetiredArray = 1;
    /// <summary><see cref="DirKey"/> of a leaf beyond the directory's reach.</summary>
    public const uint NoDirKey = uint.MaxValue;

    public static int Size => sizeof(XaNode);

    /// <summary>Byte offset of <see cref="Slots"/> in the node.</summary>
    public const int SlotsOffset = 24;

    /// <summary>Reads a slot (acquire): lock-free readers see fully initialised nodes behind node entries.</summary>
    /// <remarks>Pointer arithmetic rather than <c>n-&gt;Slots[offset]</c>: taking a reference to a fixed buffer
    /// through a pointer makes the JIT insert a null check that loads the node's first byte — for a leaf read at
    /// random, an extra cache miss on the header line besides the slot's own line.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong ReadSlot(XaNode* n, int offset) => Volatile.Read(ref *(ulong*)((byte*)n + SlotsOffset + ((nint)offset << 3)));

    /// <summary>
    /// The slot of node entry <paramref name="nodeEntry"/> (address | 2) that covers <paramref name="index"/> at
    /// <paramref name="shift"/>, read with acquire semantics: the lock-free fast paths' one load per level.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong SlotOf(ulong nodeEntry, ulong index, int shift) =>
        Volatile.Read(ref *(ulong*)(nodeEntry + (SlotsOffset - 2) + (((index >> shift) & XaCodec.ChunkMask) << 3)));

    /// <summary>Slot <paramref name="offset"/> (below 64) of node entry <paramref name="nodeEntry"/>, read with acquire semantics.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong SlotAt(ulong nodeEntry, ulong offset) =>
        Volatile.Read(ref *(ulong*)(nodeEntry + (SlotsOffset - 2) + (offset << 3)));

    /// <summary>Writes a slot (release), so readers never see a node entry before the node's contents.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WriteSlot(XaNode* n, int offset, ulong entry) => Volatile.Write(ref n->Slots[offset], entry);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool MarkBit(XaNode* n, int mark, int offset) => (Volatile.Read(ref n->Marks[mark]) & (1UL << offset)) != 0;

    /// <summary>Reads the parent pointer (acquire).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static XaNode* ReadParent(XaNode* n) => (XaNode*)Volatile.Read(ref *(nint*)&n->Parent);

    /// <summary>Writes the parent pointer (release).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WriteParent(XaNode* n, XaNode* parent) => Volatile.Write(ref *(nint*)&n->Parent, (nint)parent);

    /// <summary>Zeroes a node (the cache constructor, and every allocation).</summary>
    public static void Clear(XaNode* n) => Unsafe.InitBlockUnaligned(n, 0, (uint)sizeof(XaNode));
}
