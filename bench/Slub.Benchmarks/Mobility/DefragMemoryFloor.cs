using System.Diagnostics;
using System.Runtime.Intrinsics.X86;
using Slub.Benchmarks.Infrastructure;

namespace Slub.Benchmarks.Mobility;

/// <summary>
/// The memory work of a shrink with nothing else: the same objects copied to the same new places in the same
/// order, the same references redirected and the same old slots written, replayed with plain loads and stores.
/// It is the floor any defrag core has on this machine for this layout, and what the probe's per-object figure
/// is set against.
/// </summary>
/// <remarks>
/// A recording shrink of one fragmented cache gives the moves (slot, old, new) in the order made. A second cache
/// built from the same seed has the same layout relative to its lowest object (one CPU slot: see
/// <see cref="FragmentedCache"/>), so the moves translate into it; every old slot is checked to hold the object
/// the move names before the replay starts. The caches are then evicted (a write pass over a buffer several times
/// the last-level cache) and the replay is timed with prefetches as far ahead as the core uses.
/// </remarks>
public static unsafe class DefragMemoryFloor
{
    /// <summary>
    /// Replays one shrink's moves; returns (wall ns, CPU ns, moves). With <paramref name="prefetchPerSlab"/> the old
    /// objects are prefetched as a defrag core sees them, a source slab at a time (all of slab k+2's before slab k),
    /// instead of in an even stream 16 moves ahead.
    /// </summary>
    public static (long Wall, long Cpu, long Moved) Replay(int objects, bool slotsOf64, bool prefetchPerSlab = false)
    {
        List<(int Slot, nint Old, nint New)> moves = new(objects);
        nint recordedBase;
        using (var recorded = new FragmentedCache(objects, freePageReportingDelay: Timeout.InfiniteTimeSpan, slotsOf64: slotsOf64))
        {
            recordedBase = LowestObject(recorded.Table.References);
            recorded.Table.MovesMade = moves;
            recorded.Cache.Shrink(DefragPolicy.FillFullestFirst);
        }
        if (moves.Count == 0) throw new InvalidOperationException("the recording shrink moved nothing");

        using var f = new FragmentedCache(objects, freePageReportingDelay: Timeout.InfiniteTimeSpan, slotsOf64: slotsOf64);
        nint[] refs = f.Table.References;
        nint shift = LowestObject(refs) - recordedBase;
        var old = new nint[moves.Count];
        var fresh = new nint[moves.Count];
        var slots = new int[moves.Count];
        for (int i = 0; i < moves.Count; i++)
        {
            (slots[i], old[i], fresh[i]) = (moves[i].Slot, moves[i].Old + shift, moves[i].New + shift);
            if (refs[slots[i]] != old[i] || *(long*)old[i] != slots[i])
                throw new InvalidOperationException($"the second cache's layout differs from the recorded one at move {i} (slot {slots[i]})");
        }
        int fpOffset = slotsOf64 ? 8 : MovableObjectTable.ObjectBytes;   // where the core links a freed slot
        var slabStarts = new List<int>();   // first move of each source slab, then the end
        for (int i = 0; i < old.Length; i++) if (i == 0 || (old[i] >> 12) != (old[i - 1] >> 12)) slabStarts.Add(i);
        slabStarts.Add(old.Length);
        int[] starts = slabStarts.ToArray();
        EvictCaches();

        long wall = Stopwatch.GetTimestamp(), cpu = ThreadCpuClock.NowNanoseconds();
        if (prefetchPerSlab) CopyPrefetchingPerSlab(old, fresh, slots, refs, fpOffset, starts);
        else Copy(old, fresh, slots, refs, fpOffset);
        cpu = ThreadCpuClock.NowNanoseconds() - cpu;
        long elapsed = (long)Stopwatch.GetElapsedTime(wall).TotalNanoseconds;
        for (int i = 0; i < slots.Length; i++)
            if (refs[slots[i]] != fresh[i] || *(long*)fresh[i] != slots[i]) throw new InvalidOperationException($"replay lost move {i}");
        return (elapsed, cpu, moves.Count);
    }

    /// <summary>The loop being timed: every move with the old and new slots and the reference prefetched 16 moves ahead, an even stream.</summary>
    private static void Copy(nint[] old, nint[] fresh, int[] slots, nint[] refs, int fpOffset)
    {
        nint freelist = 0;
        fixed (nint* table = refs)
        {
            for (int i = 0; i < old.Length; i++)
            {
                if (Sse.IsSupported && i + Ahead < old.Length)
                {
                    Sse.Prefetch0((void*)old[i + Ahead]);
                    Sse.Prefetch0((void*)(old[i + Ahead] + fpOffset + 7));
                    PrefetchNew(fresh[i + Ahead]);
                    Sse.Prefetch0(table + slots[i + Ahead]);
                }
                Move(old[i], fresh[i], table, slots[i], fpOffset, ref freelist);
            }
        }
    }

    /// <summary>
    /// The same moves with the old objects prefetched as a core working slab by slab sees them: all of source slab
    /// g+2's before slab g (<paramref name="starts"/>: each slab's first move, then the end); new slots and references as in <see cref="Copy"/>.
    /// </summary>
    private static void CopyPrefetchingPerSlab(nint[] old, nint[] fresh, int[] slots, nint[] refs, int fpOffset, int[] starts)
    {
        nint freelist = 0;
        for (int k = 0; k < 2 && k + 1 < starts.Length; k++) Prefetch(old, starts[k], starts[k + 1], fpOffset + 7);
        fixed (nint* table = refs)
        {
            for (int g = 0; g + 1 < starts.Length; g++)
            {
                if (g + 3 < starts.Length) Prefetch(old, starts[g + 2], starts[g + 3], fpOffset + 7);
                for (int i = starts[g]; i < starts[g + 1]; i++)
                {
                    if (Sse.IsSupported && i + Ahead < old.Length)
                    {
                        PrefetchNew(fresh[i + Ahead]);
                        Sse.Prefetch0(table + slots[i + Ahead]);
                    }
                    Move(old[i], fresh[i], table, slots[i], fpOffset, ref freelist);
                }
            }
        }
    }

    private const int Ahead = 16;

    /// <summary>Both lines a new 64-byte object may span. (Straight-line prefetches: a helper with a loop here cost the replay 3 ns per move.)</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void PrefetchNew(nint slot)
    {
        Sse.Prefetch0((void*)slot);
        Sse.Prefetch0((void*)(slot + MovableObjectTable.ObjectBytes - 1));
    }

    /// <summary>One move's memory work: copy 64 bytes, redirect the reference, mark the old slot and link it into a free list.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void Move(nint o, nint n, nint* table, int slot, int fpOffset, ref nint freelist)
    {
        Buffer.MemoryCopy((void*)o, (void*)n, MovableObjectTable.ObjectBytes, MovableObjectTable.ObjectBytes);
        table[slot] = n;
        *(long*)o = -1;
        *(nint*)(o + fpOffset) = freelist;
        freelist = o;
    }

    /// <summary>Asks for the first line and the line at <paramref name="last"/> of slots <paramref name="from"/> up to <paramref name="to"/>.</summary>
    private static void Prefetch(nint[] slots, int from, int to, int last)
    {
        if (!Sse.IsSupported) return;
        for (int j = from; j < to; j++)
        {
            Sse.Prefetch0((void*)slots[j]);
            Sse.Prefetch0((void*)(slots[j] + last));
        }
    }

    private static nint LowestObject(nint[] refs)
    {
        nint low = nint.MaxValue;
        foreach (nint r in refs) if (r != 0 && r < low) low = r;
        return low;
    }

    /// <summary>Writes a buffer 8× the size of a large last-level cache, so the replay starts from memory, as the shrink does.</summary>
    private static void EvictCaches()
    {
        const int Bytes = 128 << 20;
        byte* p = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc(Bytes);
        try
        {
            for (int i = 0; i < Bytes; i += 64) p[i] = (byte)i;
        }
        finally
        {
            System.Runtime.InteropServices.NativeMemory.Free(p);
        }
    }
}
