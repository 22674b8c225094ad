using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Slub.XArray;

public unsafe ref partial struct XaReader
{
    /// <summary>
    /// Loads many indices at once: <c>entries[i]</c> becomes what <see cref="Load"/>(<c>indices[i]</c>) returns
    /// (value and pointer entries as stored, null for a missing or reserved index, the covering entry for any index
    /// of a multi-index entry). Faster per index than <see cref="Load"/>: four keys walk down together, with one
    /// test per level for the four, and runs of consecutive indices are copied from their leaf four slots at a
    /// time (see "Fast loads" in docs/xarray.md).
    /// </summary>
    /// <remarks>Thread-safety as <see cref="Load"/>: lock-free, concurrent writers and migration are safe. Each
    /// entry is a linearizable load of its index; the loads of different indices are not one atomic snapshot.
    /// Entries beyond <c>indices.Length</c> are left as they are. Both spans are <c>scoped</c>: the reader keeps no
    /// reference to them, so they may be stack-allocated.</remarks>
    /// <exception cref="ArgumentException"><paramref name="entries"/> is shorter than <paramref name="indices"/>,
    /// or the two overlap in memory.</exception>
    /// <exception cref="ObjectDisposedException">The reader was disposed.</exception>
    public void LoadMany(scoped ReadOnlySpan<ulong> indices, scoped Span<XaEntry> entries)
    {
        if (entries.Length < indices.Length)
            throw new ArgumentException($"entries has {entries.Length} elements, indices {indices.Length}", nameof(entries));
        if (indices.Overlaps(MemoryMarshal.Cast<XaEntry, ulong>(entries)))
            throw new ArgumentException("entries overlaps indices", nameof(entries));
        if (!_open) ThrowDisposed();
        fixed (ulong* idx = indices)
        fixed (XaEntry* output = entries)
            LoadAll(idx, (ulong*)output, indices.Length);
    }

    /// <summary>
    /// Runs the directory's lockstep load, and beyond the directory the lockstep walk for the head's current height
    /// (a separate machine-code body per height, with the shifts as constants); groups neither can take, and the
    /// last <c>n % 4</c> keys, go one by one.
    /// </summary>
    private void LoadAll(ulong* idx, ulong* output, int n)
    {
        ulong* end4 = idx + (n & ~3);
        while (idx < end4)
        {
            long done = _dirLength != 0 ? LockstepDirectory(idx, output, end4) : 0;
            if (done == 0)
            {
                ulong head = Volatile.Read(ref _xa._headWalk);
                done = (int)(head >> 56) switch
                {
                    3 => Lockstep<Height3>(idx, output, end4, head),
                    2 => Lockstep<Height2>(idx, output, end4, head),
                    4 => Lockstep<Height4>(idx, output, end4, head),
                    1 => Lockstep<Height1>(idx, output, end4, head),
                    _ => 0,
                };
            }
            if (done == 0)
            {
                // A tree the unrolled walk does not take: one group the per-key way.
                for (int k = 0; k < 4; k++) output[k] = LoadOneSlow(idx[k]);
                done = 4;
            }
            idx += done;
            output += done;
        }
        for (int k = 0; k < (n & 3); k++) output[k] = LoadOneSlow(idx[k]);
    }

    /// <summary>
    /// The lockstep walk: four keys go down from the head's root together, one load per key and level, with one
    /// combined test per level (all four slots are nodes) and one at the leaves (no internal entry), so a key
    /// costs far fewer instructions than a separate walk, and the four walks' cache misses overlap. A group with
    /// a key out of the root's reach or an interior slot that is not a node, and any key whose leaf slot is
    /// internal (sibling, retry, reservation), take the per-key load. Each group first checks that the head is
    /// still <paramref name="head"/> (see "The walk" on <see cref="XaReader"/>), so each result is the same as a
    /// separate walk's. Four keys in one leaf walk once; four consecutive indices in one leaf start a run copy
    /// (<see cref="CopyRun"/>), the common case of keys in order. Returns the number of keys done (a multiple of 4)
    /// when the end is reached or the head changed.
    /// </summary>
    private long Lockstep<THeight>(ulong* idx, ulong* output, ulong* end, ulong head) where THeight : struct, IHeight
    {
        const ulong NodeMask = 0x8000_0000_0000_0003;   // as in XaCodec.IsNodeFast
        int Top = (THeight.Levels - 1) * XaCodec.ChunkShift;   // a JIT-time constant per height
        ulong* start = idx;
        ulong root = head & XArray.HeadWalkAddressMask;
        while (idx < end)
        {
            // Every group starts from the current head: a root read for an earlier group may have been unlinked
            // since (see "The walk" on XaReader), and a group's loads must not return what that replaced.
            if (idx != start && Volatile.Read(ref _xa._headWalk) != head) break;
            ulong i0 = idx[0], i1 = idx[1], i2 = idx[2], i3 = idx[3];
            if (((i0 | i1 | i2 | i3) >> Top) > XaCodec.ChunkMask) goto Slow;   // some key beyond the root's reach
            ulong e0, e1, e2, e3;
            if (THeight.Levels == 1 || (((i0 ^ i1) | (i0 ^ i2) | (i0 ^ i3)) >> XaCodec.ChunkShift) == 0)
            {
                // All four in one leaf (keys in order): one walk, four slots of the leaf.
                ulong leaf = root;
                if (THeight.Levels > 1)
                {
                    leaf = XaNode.SlotAt(root, i0 >> Top);
                    if (!XaCodec.IsNodeFast(leaf)) goto Slow;
                }
                if (THeight.Levels > 3)
                {
                    leaf = XaNode.SlotAt(leaf, (i0 >> 12) & XaCodec.ChunkMask);
                    if (!XaCodec.IsNodeFast(leaf)) goto Slow;
                }
                if (THeight.Levels > 2)
                {
                    leaf = XaNode.SlotAt(leaf, (i0 >> 6) & XaCodec.ChunkMask);
                    if (!XaCodec.IsNodeFast(leaf)) goto Slow;
                }
                if (Avx2.IsSupported && i1 == i0 + 1 && i2 == i0 + 2 && i3 == i0 + 3)
                {
                    // Consecutive indices: copy the leaf's slots four at a time while the keys go on counting up.
                    long groups = Math.Min((XaCodec.ChunkSize - (long)(i0 & XaCodec.ChunkMask)) >> 2, (end - idx) >> 2);
                    long copied = CopyRun(idx, output, leaf + (XaNode.SlotsOffset - 2) + ((i0 & XaCodec.ChunkMask) << 3), groups);
                    if (copied != 0)
                    {
                        idx += copied;
                        output += copied;
                        continue;
                    }
                    // The first group holds an internal entry: read it slot by slot below, which sorts it out.
                    // (Re-read the keys so that none is live across the call: that made the JIT spill all four
                    // on every group, random ones included.)
                    i0 = idx[0]; i1 = idx[1]; i2 = idx[2]; i3 = idx[3];
                }
                e0 = XaNode.SlotAt(leaf, i0 & XaCodec.ChunkMask); e1 = XaNode.SlotAt(leaf, i1 & XaCodec.ChunkMask);
                e2 = XaNode.SlotAt(leaf, i2 & XaCodec.ChunkMask); e3 = XaNode.SlotAt(leaf, i3 & XaCodec.ChunkMask);
                goto Leaves;
            }
            e0 = XaNode.SlotAt(root, i0 >> Top); e1 = XaNode.SlotAt(root, i1 >> Top);
            e2 = XaNode.SlotAt(root, i2 >> Top); e3 = XaNode.SlotAt(root, i3 >> Top);
            if (THeight.Levels > 1 && (((e0 - 4098) | (e1 - 4098) | (e2 - 4098) | (e3 - 4098)) & NodeMask) != 0) goto Slow;
            if (THeight.Levels > 3)
            {
                e0 = XaNode.SlotAt(e0, (i0 >> 12) & XaCodec.ChunkMask); e1 = XaNode.SlotAt(e1, (i1 >> 12) & XaCodec.ChunkMask);
                e2 = XaNode.SlotAt(e2, (i2 >> 12) & XaCodec.ChunkMask); e3 = XaNode.SlotAt(e3, (i3 >> 12) & XaCodec.ChunkMask);
                if ((((e0 - 4098) | (e1 - 4098) | (e2 - 4098) | (e3 - 4098)) & NodeMask) != 0) goto Slow;
            }
            if (THeight.Levels > 2)
            {
                e0 = XaNode.SlotAt(e0, (i0 >> 6) & XaCodec.ChunkMask); e1 = XaNode.SlotAt(e1, (i1 >> 6) & XaCodec.ChunkMask);
                e2 = XaNode.SlotAt(e2, (i2 >> 6) & XaCodec.ChunkMask); e3 = XaNode.SlotAt(e3, (i3 >> 6) & XaCodec.ChunkMask);
                if ((((e0 - 4098) | (e1 - 4098) | (e2 - 4098) | (e3 - 4098)) & NodeMask) != 0) goto Slow;
            }
            if (THeight.Levels > 1)
            {
                e0 = XaNode.SlotAt(e0, i0 & XaCodec.ChunkMask); e1 = XaNode.SlotAt(e1, i1 & XaCodec.ChunkMask);
                e2 = XaNode.SlotAt(e2, i2 & XaCodec.ChunkMask); e3 = XaNode.SlotAt(e3, i3 & XaCodec.ChunkMask);
            }
        Leaves:
            if (StoreGroup(idx, output, e0, e1, e2, e3))
            {
                idx += 4;
                output += 4;
                continue;
            }
            goto Refresh;
        Slow:
            for (int k = 0; k < 4; k++) output[k] = LoadOneSlow(idx[k]);
        Refresh:
            idx += 4;
            output += 4;
        }
        return idx - start;
    }

    /// <summary>
    /// The lockstep load through the leaf directory: four directory entries, then four leaf slots, with one test
    /// for "all four keys inside the directory" (its length is a power of two, so the OR of the keys' entry numbers
    /// is below it exactly when each is) and one at the leaves (no internal entry). A directory entry is used as the
    /// per-key load uses it (see "The leaf directory"); keys whose slot is internal (<see cref="XArray.NoLeaf"/>
    /// shows retry entries) take the per-key load. Four consecutive indices in one leaf start a run copy.
    /// Returns the number of keys done (a multiple of 4): at the end, at a group beyond the directory (the root
    /// lockstep takes over), or when a per-key load re-read the directory.
    /// </summary>
    private long LockstepDirectory(ulong* idx, ulong* output, ulong* end)
    {
        ulong* start = idx;
        ulong* dir = _dir;
        ulong length = _dirLength;
        while (idx < end)
        {
            ulong i0 = idx[0], i1 = idx[1], i2 = idx[2], i3 = idx[3];
            if ((((i0 | i1 | i2 | i3) >> XaCodec.ChunkShift)) >= length) break;
            ulong l0 = Volatile.Read(ref dir[i0 >> XaCodec.ChunkShift]), l1 = Volatile.Read(ref dir[i1 >> XaCodec.ChunkShift]);
            ulong l2 = Volatile.Read(ref dir[i2 >> XaCodec.ChunkShift]), l3 = Volatile.Read(ref dir[i3 >> XaCodec.ChunkShift]);
            if (Avx2.IsSupported && i1 == i0 + 1 && i2 == i0 + 2 && i3 == i0 + 3 && (i0 & XaCodec.ChunkMask) <= XaCodec.ChunkSize - 4)
            {
                // Consecutive indices, all four in l0's leaf: copy its slots four at a time (NoLeaf's retry entries stop the copy).
                PrefetchLeafSlots(dir, length, (i0 >> XaCodec.ChunkShift) + 2);
                long groups = Math.Min((XaCodec.ChunkSize - (long)(i0 & XaCodec.ChunkMask)) >> 2, (end - idx) >> 2);
                long copied = CopyRun(idx, output, l0 + (XaNode.SlotsOffset - 2) + ((i0 & XaCodec.ChunkMask) << 3), groups);
                if (copied != 0)
                {
                    idx += copied;
                    output += copied;
                    continue;
                }
                i0 = idx[0]; i1 = idx[1]; i2 = idx[2]; i3 = idx[3];   // none live across the call (see Lockstep)
            }
            ulong e0 = XaNode.SlotAt(l0, i0 & XaCodec.ChunkMask), e1 = XaNode.SlotAt(l1, i1 & XaCodec.ChunkMask);
            ulong e2 = XaNode.SlotAt(l2, i2 & XaCodec.ChunkMask), e3 = XaNode.SlotAt(l3, i3 & XaCodec.ChunkMask);
            bool clean = StoreGroup(idx, output, e0, e1, e2, e3);
            idx += 4;
            output += 4;
            if (clean) continue;
            if (_dir != dir || _dirLength != length) break;   // the per-key loads re-read the directory
        }
        return idx - start;
    }

    /// <summary>
    /// Stores a group's four leaf entries. True when none is internal (one test for the four: internal is bit 1
    /// set and bit 0 clear); otherwise the internal ones are re-read the per-key way, which may refresh the
    /// reader's caches, and the caller must check them before going on.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool StoreGroup(ulong* idx, ulong* output, ulong e0, ulong e1, ulong e2, ulong e3)
    {
        output[0] = e0; output[1] = e1; output[2] = e2; output[3] = e3;
        if (((((e0 >> 1) & ~e0) | ((e1 >> 1) & ~e1) | ((e2 >> 1) & ~e2) | ((e3 >> 1) & ~e3)) & 1) == 0) return true;
        for (int k = 0; k < 4; k++)
            if (XaCodec.IsInternal(output[k])) output[k] = LoadOneSlow(idx[k]);
        return false;
    }

    /// <summary>
    /// Keys in order reach a new leaf every 64 indices, at an address the hardware prefetcher cannot guess (leaves
    /// lie wherever their slab put them; at a million keys that miss dominated: 1.4× Dictionary): when a run copy
    /// starts, ask for all slot lines of the leaf two directory entries on, about one memory latency of copying
    /// ahead. Once per run, so random order (which never copies runs) pays nothing. A prefetch never faults: a
    /// stale entry is harmless. (The per-key reader does not do this: a test per load cost it more at 100 000
    /// keys than it gained at a million, docs/benchmarks.md §4.)
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchLeafSlots(ulong* dir, ulong length, ulong key)
    {
        if (!Sse.IsSupported || key >= length) return;
        byte* slots = (byte*)(dir[key] + (XaNode.SlotsOffset - 2));
        for (int line = 0; line <= XaCodec.ChunkSize * sizeof(ulong); line += 64) Sse.Prefetch0(slots + line);
    }

    /// <summary>
    /// A run of consecutive indices in one leaf: <paramref name="idx"/>[0..3] are known to count up from the first;
    /// copies up to <paramref name="groups"/> groups of four slots starting at <paramref name="slots"/> (the first
    /// index's slot) with one 32-byte load and store per group, while the next group's keys go on counting up and
    /// the group holds no internal entry. Returns the number of keys copied (a multiple of 4, possibly 0).
    /// </summary>
    /// <remarks>The slots are read with plain vector loads, not one acquire load each: the leaf was reached by
    /// acquire loads, so its slots are read after it was published, and the four slots are four independent loads
    /// (no order among them is needed; each is a linearizable load of its own index, as with separate loads).
    /// The one assumption: each 8-byte-aligned slot inside the 32-byte load is read in one piece. The x64 manuals
    /// guarantee that for single aligned quadword (and, on AVX processors, aligned 16-byte) accesses but do not
    /// state it for the quadwords of a wider one; it holds in practice (an aligned slot never crosses a cache
    /// line; the JVM copies reference arrays, which must never tear, with the same 32-byte moves). Four scalar
    /// loads instead cost 0.3 ns per key more in key order (docs/benchmarks.md §4).
    /// A slot holding an internal entry (sibling, retry, reservation) stops the run before its group.</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static long CopyRun(ulong* idx, ulong* output, ulong slots, long groups)
    {
        var want = Vector256.Create(idx[0]) + Vector256.Create(0UL, 1, 2, 3);
        var step = Vector256.Create(4UL);
        var low2 = Vector256.Create(3UL);
        var internalTag = Vector256.Create(2UL);
        ulong* src = (ulong*)slots;
        long g = 0;
        do
        {
            if (g != 0 && Vector256.Load(idx) != want) break;
            var v = Vector256.Load(src);
            if (Vector256.EqualsAny(v & low2, internalTag)) break;
            v.Store(output);
            want += step;
            idx += 4; output += 4; src += 4;
        }
        while (++g < groups);
        return g << 2;
    }

    /// <summary>The tree heights the lockstep walk is compiled for (<see cref="Lockstep{THeight}"/>).</summary>
    private interface IHeight { static abstract int Levels { get; } }
    private struct Height1 : IHeight { public static int Levels => 1; }
    private struct Height2 : IHeight { public static int Levels => 2; }
    private struct Height3 : IHeight { public static int Levels => 3; }
    private struct Height4 : IHeight { public static int Levels => 4; }

    /// <summary>One key the per-key way, as <see cref="Load"/> returns it (a reservation reads as null).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong LoadOneSlow(ulong index)
    {
        ulong e = LoadRaw(index);
        return e == XaCodec.ZeroEntry ? 0 : e;
    }
}
