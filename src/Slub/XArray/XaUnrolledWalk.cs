using System.Runtime.CompilerServices;

namespace Slub.XArray;

/// <summary>
/// The load walk for trees of one to four levels (2^24 indices), unrolled: one test per interior level, no
/// loop. Shared by <see cref="XArray"/>'s loads and <see cref="XaReader"/>'s, both from the head.
/// </summary>
/// <remarks>
/// A loop whose trip count is the tree height cost a third of the walk in the load-breakdown probe. A child's
/// shift is its parent's minus 6 for the node's whole life (growth, shrinking and migration keep it;
/// <c>XArray.Validate</c> checks it), so it is never read from the child: that would be a dependent load
/// from the child's first cache line, usually not the line of the slot we want. The caller must be inside a
/// read section (or hold the array's lock) so that no node reached here is freed under it, or pass a guard that
/// validates every read (the plain load's <c>XArray.RetireSeqGuard</c>).
/// </remarks>
internal static class XaUnrolledWalk
{
    /// <summary>
    /// Walks from <paramref name="root"/>, a node heading a tree of <paramref name="levels"/> levels, to
    /// <paramref name="index"/>. False when the walk cannot answer: <paramref name="levels"/> is not 1..4 or the
    /// index lies beyond what the root covers. Otherwise <paramref name="entry"/> is the slot's entry (or the
    /// first non-node entry met on the way down, which the caller sorts out).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryWalk(ulong root, int levels, ulong index, out ulong entry) =>
        TryWalk(root, levels, index, new InSection(), out entry);

    /// <summary>
    /// <see cref="TryWalk(ulong, int, ulong, out ulong)"/> for a reader that holds no read section: after every
    /// slot read, before anything read is used, <paramref name="guard"/> confirms that no node has been retired
    /// since the walk began (see <c>XArray.TryLoadFast</c>). When it does not, the walk stops and answers
    /// <see cref="XaCodec.RetryEntry"/>, which every caller already sends to the slow path.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryWalk<TGuard>(ulong root, int levels, ulong index, TGuard guard, out ulong entry) where TGuard : struct, IWalkGuard
    {
        ulong e = root, top;
        // The root's slot is index >> shift, which must be below 64: the range check and the slot number at once.
        switch (levels)
        {
            case 3: top = index >> 12; if (top > XaCodec.ChunkMask) goto Uncovered; goto L12;
            case 2: top = index >> 6; if (top > XaCodec.ChunkMask) goto Uncovered; goto L6;
            case 4: top = index >> 18; if (top > XaCodec.ChunkMask) goto Uncovered; break;
            case 1: top = index; if (top > XaCodec.ChunkMask) goto Uncovered; goto L0;
            default: goto Uncovered;
        }
        guard.BeforeRead();
        e = XaNode.SlotAt(e, top);
        if (!guard.Holds()) goto Raced;
        if (!XaCodec.IsNodeFast(e)) goto Done;
        top = (index >> 12) & XaCodec.ChunkMask;
    L12:
        guard.BeforeRead();
        e = XaNode.SlotAt(e, top);
        if (!guard.Holds()) goto Raced;
        if (!XaCodec.IsNodeFast(e)) goto Done;
        top = (index >> 6) & XaCodec.ChunkMask;
    L6:
        guard.BeforeRead();
        e = XaNode.SlotAt(e, top);
        if (!guard.Holds()) goto Raced;
        if (!XaCodec.IsNodeFast(e)) goto Done;
        top = index & XaCodec.ChunkMask;
    L0:
        guard.BeforeRead();
        e = XaNode.SlotAt(e, top);
        if (!guard.Holds()) goto Raced;
    Done:
        entry = e;
        return true;
    Raced:
        entry = XaCodec.RetryEntry;
        return true;
    Uncovered:
        entry = 0;
        return false;
    }

    /// <summary>Says whether what a walk has read so far can be trusted.</summary>
    public interface IWalkGuard
    {
        bool Holds();

        /// <summary>Runs before each read through a pointer the walk holds (a point for tests to act; empty otherwise).</summary>
        void BeforeRead();
    }

    /// <summary>The caller is inside a read section or holds the lock: nothing it reaches is freed, nothing to check.</summary>
    public readonly struct InSection : IWalkGuard
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool Holds() => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void BeforeRead() { }
    }
}
