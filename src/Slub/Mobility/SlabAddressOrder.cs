using System.Buffers;

namespace Slub;

/// <summary>
/// The order in which a defrag run empties its source slabs: by address.
/// </summary>
/// <remarks>
/// Sources are chosen by fill, so in the order chosen they lie at random addresses, and each slab's objects
/// and (later) buddy entries are a fresh DRAM row. In address order neighbouring sources are neighbouring
/// pages: the memory system streams them instead (perf, 1M-object shrink at 30% use: 31–35 → 28–30 ns per
/// moved object). The order changes neither which slabs are emptied nor where their objects go.
/// <para>The result is a permutation of positions, computed from the addresses recorded when the slabs were
/// chosen: no descriptor is read (they are scattered over the managed heap) and no object reference is moved
/// (each store would be a GC write barrier). Sources usually cover most pages of the range they span, so the
/// positions are placed straight into a table indexed by page (linear, no comparisons); a sparse set is radix
/// sorted instead, whose histogram passes would otherwise dominate (a run of equal digits is a chain of
/// dependent increments).</para>
/// </remarks>
internal static class SlabAddressOrder
{
    /// <summary>Below this many slabs the chosen order is kept: the gain is per slab, the passes cost a fixed amount.</summary>
    private const int MinSlabs = 64;

    /// <summary>The page table is used while the range spans at most this many pages per slab.</summary>
    private const int MaxPagesPerSlab = 8;

    /// <summary>
    /// Fills <paramref name="order"/> (as long as <paramref name="addresses"/>) with the positions of the slabs
    /// whose start addresses are <paramref name="addresses"/>, lowest address first. Addresses are distinct
    /// page-aligned slab starts. A short list keeps its order.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]   // called once per run, so tiering would leave it unoptimized: see KmemCache.DefragNode
    public static void Fill(ReadOnlySpan<nint> addresses, Span<int> order)
    {
        int count = addresses.Length;
        if (order.Length != count) throw new ArgumentException($"{order.Length} positions for {count} slabs", nameof(order));
        nint lo = nint.MaxValue, hi = 0;
        foreach (nint a in addresses)
        {
            if (a < lo) lo = a;
            if (a > hi) hi = a;
        }
        long pages = count == 0 ? 0 : ((long)(hi - lo) >> Pages.OsMemory.PageShift) + 1;
        if (count < MinSlabs) { for (int i = 0; i < count; i++) order[i] = i; }
        else if (pages <= (long)count * MaxPagesPerSlab) ByPageTable(addresses, order, lo, (int)pages);
        else ByRadix(addresses, order, lo, (ulong)(pages - 1));
    }

    /// <summary>Each position goes into its page's entry; a scan of the table in page order reads them out.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]   // called once per run, so tiering would leave it unoptimized: see KmemCache.DefragNode
    private static void ByPageTable(ReadOnlySpan<nint> addresses, Span<int> order, nint lo, int pages)
    {
        int[] rented = ArrayPool<int>.Shared.Rent(pages);
        var table = rented.AsSpan(0, pages);
        // Entries are position + 1, so 0 is empty and the table is cleared rather than filled: Span.Fill<int> is
        // a generic loop the runtime does not precompile, and its first large call was compiled on the spot
        // (on-stack replacement, ~2 ms inside a shrink); Clear is precompiled.
        table.Clear();
        for (int i = 0; i < addresses.Length; i++) table[(int)((addresses[i] - lo) >> Pages.OsMemory.PageShift)] = i + 1;
        int k = 0;
        foreach (int v in table)
            if (v != 0) order[k++] = v - 1;
        ArrayPool<int>.Shared.Return(rented);
        if (k != order.Length) throw new ArgumentException("two slabs start on one page", nameof(addresses));
    }

    /// <summary>An LSD radix sort of (page offset, position) pairs packed into one ulong, 8 bits of page a pass.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]   // called once per run, so tiering would leave it unoptimized: see KmemCache.DefragNode
    private static void ByRadix(ReadOnlySpan<nint> addresses, Span<int> order, nint lo, ulong maxPage)
    {
        int count = addresses.Length;
        ulong[] keys = ArrayPool<ulong>.Shared.Rent(2 * count);
        int[] start = ArrayPool<int>.Shared.Rent(257);
        Span<ulong> from = keys.AsSpan(0, count), to = keys.AsSpan(count, count);
        for (int i = 0; i < count; i++) from[i] = ((ulong)((addresses[i] - lo) >> Pages.OsMemory.PageShift) << 32) | (uint)i;
        for (int shift = 0; (maxPage >> shift) != 0; shift += 8)
        {
            Array.Clear(start, 0, 257);
            foreach (ulong k in from) start[(int)((k >> (32 + shift)) & 255) + 1]++;
            for (int d = 1; d <= 256; d++) start[d] += start[d - 1];
            foreach (ulong k in from) to[start[(int)((k >> (32 + shift)) & 255)]++] = k;
            var swap = from;
            from = to;
            to = swap;
        }
        for (int i = 0; i < count; i++) order[i] = (int)(uint)from[i];
        ArrayPool<ulong>.Shared.Return(keys);
        ArrayPool<int>.Shared.Return(start);
    }
}
