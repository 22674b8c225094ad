using System.Collections;
using Slub.Rcu;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace Slub.XArray;

// Searching: the forward walk shared by find / find_after / enumeration / extract, the cursor and ID allocation.
public sealed unsafe partial class XArray : IEnumerable<KeyValuePair<ulong, XaEntry>>
{
    /// <summary>Find filters: 0..2 are marks; the rest are pseudo-filters.</summary>
    internal const int FilterPresent = 3, FilterPresentOrZero = 4, FilterFree = 5;

    /// <summary>Where a search found its entry.</summary>
    internal struct Found
    {
        public ulong Entry;
        /// <summary>Index reported to the caller: the search start if that lies inside the entry, else the entry's first index.</summary>
        public ulong Index;
        /// <summary>First index of the entry.</summary>
        public ulong Base;
        public XaNode* Node;   // null: the head
        public int Offset;     // canonical slot
        public ulong NodeBase; // first index covered by Node
    }

    internal static int FilterOf(XaMark mark) => mark switch
    {
        XaMark.Mark0 or XaMark.Mark1 or XaMark.Mark2 => (int)mark,
        XaMark.Present => FilterPresent,
        _ => throw new ArgumentOutOfRangeException(nameof(mark), mark, "not a mark"),
    };

    private bool MatchHead(ulong head, int filter) => filter switch
    {
        FilterPresent => head != 0 && head != XaCodec.ZeroEntry,
        FilterPresentOrZero => head != 0,
        FilterFree => head == 0,
        _ => head != 0 && (Volatile.Read(ref _headMarks) & (1 << filter)) != 0,
    };

    private static bool Match(ulong e, XaNode* n, int off, int filter) => filter switch
    {
        FilterPresent => e != 0 && e != XaCodec.ZeroEntry,
        FilterPresentOrZero => e != 0,
        FilterFree => e == 0,
        _ => e != 0 && XaNode.MarkBit(n, filter, off),
    };

    /// <summary>Slots of <paramref name="n"/> that can hold anything (only 16 at shift 60).</summary>
    private static int SlotLimit(XaNode* n) => n->Shift == XaCodec.MaxShift ? 16 : XaCodec.ChunkSize;

    /// <summary>
    /// First entry at or after <paramref name="start"/> (an entry covering start counts) and starting at most at
    /// <paramref name="max"/> that passes <paramref name="filter"/>. Starts from the root, or resumes at slot
    /// (<paramref name="rn"/>, <paramref name="roff"/>) of a node whose first index is <paramref name="rbase"/>.
    /// Lock-free safe: a retry entry restarts the search from the root at the current position.
    /// </summary>
    /// <remarks>
    /// Mark 0 of an allocating array is its free mark (<c>XA_FREE_MARK</c>): set on empty slots only (and on interior
    /// slots with an empty slot below), never on an entry, so a search for entries carrying it finds nothing — the
    /// kernel's <c>xa_find</c> stops at the first free index, whose entry is null, and returns null. That answer is
    /// given at once: the scan below would visit every free slot of the tree first (6.3 million for 100 000 sparse
    /// keys, ≈190 ms per call). It also keeps a lock-free reader from reporting an entry a writer has just stored
    /// into a free slot before clearing the slot's free bit. <see cref="FilterFree"/> (ID allocation) is not a mark
    /// filter and is not affected.
    /// </remarks>
    internal bool FindCore(ulong start, ulong max, int filter, out Found found, XaNode* rn = null, int roff = 0, ulong rbase = 0)
    {
        found = default;
        if (filter == 0 && _trackFree) return false;
    restart:
        XaNode* n;
        int off;
        ulong nb;
        bool first;
        if (rn != null)
        {
            n = rn; off = roff; nb = rbase; first = false;
            rn = null;
        }
        else
        {
            ulong head = Volatile.Read(ref _head);
            if (!XaCodec.IsNode(head))
            {
                if (start != 0 || !MatchHead(head, filter)) return false;
                found = new Found { Entry = head };
                return true;
            }
            n = (XaNode*)XaCodec.ToNode(head);
            nb = 0;
            if ((start >> n->Shift) > XaCodec.ChunkMask) return false;
            off = (int)((start >> n->Shift) & XaCodec.ChunkMask);
            first = true;
        }
        while (true)
        {
            if (off >= SlotLimit(n))
            {
                XaNode* p = XaNode.ReadParent(n);
                if (p == null) return false;
                off = n->Offset + 1;
                nb = p->Shift + XaCodec.ChunkShift >= 64 ? 0 : nb & ~((1UL << (p->Shift + XaCodec.ChunkShift)) - 1);
                n = p;
                continue;
            }
            ulong e;
            if (!first && filter >= FilterPresent && filter != FilterFree)
            {
                // Present entries: step over null slots without the checks below (sparse nodes are mostly null).
                e = XaNode.ReadSlot(n, off);
                if (e == 0)
                {
                    int lim = SlotLimit(n);
                    while (++off < lim && (e = XaNode.ReadSlot(n, off)) == 0) { }
                    if (e == 0) continue;   // off == lim: up to the parent
                }
            }
            else
            {
                if (!first)
                {
                    ulong bits = Volatile.Read(ref n->Marks[filter == FilterFree ? 0 : filter]) >> off;
                    if (bits == 0) { off = XaCodec.ChunkSize; continue; }
                    off += BitOperations.TrailingZeroCount(bits);
                    if (off >= SlotLimit(n)) continue;
                }
                e = XaNode.ReadSlot(n, off);
            }
            ulong slotStart = nb + ((ulong)off << n->Shift);
            if (!first && slotStart > max) return false;
            if (e == XaCodec.RetryEntry)
            {
                if (!first) start = slotStart;
                goto restart;
            }
            if (n->Shift > 0 && XaCodec.IsNode(e))
            {
                XaNode* c = (XaNode*)XaCodec.ToNode(e);
                if (!first) PrefetchNode(c);   // a scan enters it at slot 0 (the first descent reads one slot per level)
                nb = slotStart;
                off = first ? (int)((start >> c->Shift) & XaCodec.ChunkMask) : 0;
                n = c;
                continue;
            }
            if (XaCodec.IsSibling(e))
            {
                if (first)
                {
                    int c = XaCodec.SiblingOffset(e);
                    ulong ce = XaNode.ReadSlot(n, c);
                    if (ce == XaCodec.RetryEntry || XaCodec.IsNode(ce)) goto restart;
                    if (Match(ce, n, c, filter))
                    {
                        found = new Found { Entry = ce, Index = start, Base = nb + ((ulong)c << n->Shift), Node = n, Offset = c, NodeBase = nb };
                        return true;
                    }
                }
                first = false;
                off++;
                continue;
            }
            if (Match(e, n, off, filter))
            {
                found = new Found { Entry = e, Index = first ? start : slotStart, Base = slotStart, Node = n, Offset = off, NodeBase = nb };
                return true;
            }
            first = false;
            off++;
        }
    }

    /// <summary>
    /// Asks for every cache line of <paramref name="n"/> at once before a search scans it: the scan's loads would
    /// otherwise miss one line after another (a sparse tree's nodes are scattered over many pages).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchNode(XaNode* n)
    {
        if (!Sse.IsSupported) return;
        byte* p = (byte*)((nint)n & ~(nint)63);
        byte* end = (byte*)n + sizeof(XaNode);
        for (; p < end; p += 64) Sse.Prefetch0(p);
    }

    /// <summary>Number of indices the entry found at (node, offset) covers, minus one.</summary>
    internal static ulong EntryLastOffset(in Found f) =>
        f.Node == null ? 0 : ((ulong)(SiblingCount(f.Node, f.Offset) + 1) << f.Node->Shift) - 1;

    /// <summary>
    /// <c>xa_find</c>: the first present entry (or entry with <paramref name="filter"/>'s mark) at an index in
    /// [<paramref name="index"/>, <paramref name="max"/>]. On success <paramref name="index"/> is updated (left
    /// alone if it already lies inside the multi-index entry found); on failure it is unchanged. Reserved entries
    /// are skipped. Lock-free.
    /// </summary>
    public XaEntry Find(ref ulong index, ulong max = ulong.MaxValue, XaMark filter = XaMark.Present)
    {
        int f = FilterOf(filter);
        if (index > max) return XaEntry.Null;
        var r = _rcu.EnterReadFast();
        bool ok = FindUser(index, max, f, after: false, out var found);
        EpochReclaimer.ExitReadFast(r);
        if (!ok) return XaEntry.Null;
        index = found.Index;
        return new XaEntry(found.Entry);
    }

    /// <summary>
    /// <c>xa_find_after</c>: like <see cref="Find"/> but strictly after <paramref name="index"/>, skipping the rest
    /// of the multi-index entry containing it. Null if <paramref name="index"/> is <see cref="ulong.MaxValue"/>.
    /// Lock-free.
    /// </summary>
    public XaEntry FindAfter(ref ulong index, ulong max = ulong.MaxValue, XaMark filter = XaMark.Present)
    {
        int f = FilterOf(filter);
        if (index == ulong.MaxValue || index >= max) return XaEntry.Null;
        var r = _rcu.EnterReadFast();   // the search cannot throw: no try/finally needed
        bool ok = FindUser(index + 1, max, f, after: true, out var found);
        EpochReclaimer.ExitReadFast(r);
        if (!ok) return XaEntry.Null;
        index = found.Index;
        return new XaEntry(found.Entry);
    }

    /// <summary>
    /// <see cref="FindCore"/> for the normal API: skips reservations (a marked one matches a mark filter; the
    /// kernel's <c>xa_find</c> drops it with <c>xas_retry</c>) and, for <paramref name="after"/>, an entry that
    /// starts before <paramref name="start"/> (the rest of the multi-index entry <c>xa_find_after</c> began in).
    /// </summary>
    private bool FindUser(ulong start, ulong max, int filter, bool after, out Found found)
    {
        bool viaDirectory = after;
        while (true)
        {
            if (viaDirectory)
            {
                // Enumeration's step (xa_find_after): when the leaf directory names the leaf holding start, scan on
                // from there instead of walking down from the root. The leaf was linked when its entry was read (or
                // has been unlinked since: null slots lead up through its parents, retry entries restart the
                // search from the root). A sibling at start is skipped, as "after" skips its entry anyway.
                viaDirectory = false;
                nint d = Volatile.Read(ref _dir);
                ulong key = start >> XaCodec.ChunkShift;
                if (key < DirectoryLength(d))
                {
                    ulong leaf = Volatile.Read(ref DirectoryEntries(d)[key]);
                    if (leaf != NoLeaf)
                    {
                        if (!FindCore(start, max, filter, out found, (XaNode*)XaCodec.ToNode(leaf),
                                (int)(start & XaCodec.ChunkMask), start & ~(ulong)XaCodec.ChunkMask)) return false;
                        goto check;
                    }
                }
            }
            if (!FindCore(start, max, filter, out found)) return false;
        check:
            if (found.Entry != XaCodec.ZeroEntry && !(after && found.Base < start)) return true;
            ulong end = found.Base + EntryLastOffset(found);
            if (end >= max) return false;
            start = end + 1;
        }
    }

    /// <summary>
    /// <c>xa_for_each_range</c> / <c>xa_for_each_marked</c>: entries with index in [<paramref name="start"/>,
    /// <paramref name="last"/>] (present, or carrying <paramref name="filter"/>'s mark), in index order, each
    /// multi-index entry once (at its first index, or at <paramref name="start"/> if that lies inside it);
    /// reservations skipped. Safe against concurrent modification (not a snapshot): every step is a fresh
    /// lock-free <c>xa_find_after</c> in its own read section. <c>foreach</c> binds to the struct
    /// <see cref="Enumerator"/> without allocating; LINQ and the interfaces box it.
    /// </summary>
    public EntryRange Enumerate(ulong start = 0, ulong last = ulong.MaxValue, XaMark filter = XaMark.Present) =>
        new(this, start, last, FilterOf(filter));

    /// <summary>Entries carrying <paramref name="mark"/> (<c>xa_for_each_marked</c>). Lock-free, like <see cref="Enumerate"/>.</summary>
    public EntryRange EnumerateMarked(XaMark mark, ulong start = 0, ulong last = ulong.MaxValue) =>
        Enumerate(start, last, mark);

    /// <summary><c>xa_for_each</c>. Lock-free, like <see cref="Enumerate"/>; the enumerator itself belongs to one thread.</summary>
    public Enumerator GetEnumerator() => new(this, 0, ulong.MaxValue, FilterPresent);
    IEnumerator<KeyValuePair<ulong, XaEntry>> IEnumerable<KeyValuePair<ulong, XaEntry>>.GetEnumerator() => GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>
    /// <c>xa_extract</c>: copies up to <c>destination.Length</c> present (or marked) entries with index in
    /// [<paramref name="start"/>, <paramref name="max"/>] into <paramref name="destination"/>; returns how many.
    /// Reserved entries are skipped. Not a snapshot.
    /// Lock-free.
    /// </summary>
    public int Extract(Span<XaEntry> destination, ulong start, ulong max, XaMark filter = XaMark.Present)
    {
        if (destination.Length == 0) return 0;
        ulong index = start;
        var e = Find(ref index, max, filter);
        int n = 0;
        while (!e.IsNull)
        {
            destination[n++] = e;
            if (n == destination.Length) break;
            e = FindAfter(ref index, max, filter);
        }
        return n;
    }

    /// <summary>Lowest free index in [min, max] of a free-tracking array; caller holds the lock.</summary>
    internal bool FindFree(ulong min, ulong max, out ulong index)
    {
        index = 0;
        if (min > max) return false;
        ulong head = _head;
        if (!XaCodec.IsNode(head))
        {
            ulong i = min == 0 && head != 0 ? 1 : min;
            if (i > max) return false;
            index = i;
            return true;
        }
        XaNode* root = (XaNode*)XaCodec.ToNode(head);
        ulong rootLast = root->Shift >= 58 ? ulong.MaxValue : (64UL << root->Shift) - 1;
        if (min > rootLast) { index = min; return true; }
        if (FindCore(min, Math.Min(max, rootLast), FilterFree, out var f)) { index = f.Index; return true; }
        if (rootLast != ulong.MaxValue && rootLast + 1 <= max) { index = rootLast + 1; return true; }
        return false;
    }
}
