using System.Collections;
using System.Numerics;
using System.Runtime.CompilerServices;
using Slub.Rcu;

namespace Slub.XArray;

// Enumeration (xa_for_each*): a struct enumerable and enumerator, so foreach neither allocates nor calls through
// interfaces, with a step that reads the next entry from the leaf the directory names.
public sealed unsafe partial class XArray
{
    /// <summary>
    /// The entries <see cref="Enumerate"/> or <see cref="EnumerateMarked"/> report: a range and a filter, nothing
    /// else (no snapshot). <c>foreach</c> binds to <see cref="GetEnumerator"/>; LINQ and the interfaces box it.
    /// </summary>
    public readonly struct EntryRange : IEnumerable<KeyValuePair<ulong, XaEntry>>
    {
        private readonly XArray _xa;
        private readonly ulong _start, _last;
        private readonly int _filter;

        internal EntryRange(XArray xa, ulong start, ulong last, int filter)
        {
            _xa = xa;
            _start = start;
            _last = last;
            _filter = filter;
        }

        /// <summary>A new enumerator at the start of the range.</summary>
        public Enumerator GetEnumerator() => new(_xa, _start, _last, _filter);
        IEnumerator<KeyValuePair<ulong, XaEntry>> IEnumerable<KeyValuePair<ulong, XaEntry>>.GetEnumerator() => GetEnumerator();
        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>
    /// Enumerator of an <see cref="XArray"/> (<c>xa_for_each_range</c>, <c>xa_for_each_marked</c>): a mutable
    /// struct owned by one thread at a time, like <c>List&lt;T&gt;.Enumerator</c>.
    /// </summary>
    /// <remarks>
    /// Each <see cref="MoveNext"/> is one <c>xa_find</c> (the first) or <c>xa_find_after</c> (the rest) from the
    /// index reported last, in its own read section: the loop body runs outside any section, so it may block,
    /// wait for a grace period or run for long, and entries may be stored and erased meanwhile, by this thread or
    /// others. Between calls the enumerator keeps only indices, never a node. The common step — the slot after
    /// the last index, or the first non-null (marked) one after it in the same leaf, holds a plain entry — reads
    /// the directory entry and that leaf's slots; everything else (leaf boundaries, siblings, reservations, retry
    /// entries, no directory) takes the general search.
    /// </remarks>
    public struct Enumerator : IEnumerator<KeyValuePair<ulong, XaEntry>>
    {
        private readonly XArray? _xa;
        private readonly ulong _start, _last;
        private readonly int _filter;
        private bool _started, _done;
        // Current's parts, kept apart: a caller reading the pair with one 16-byte load right after MoveNext
        // stored it as two 8-byte halves stalled on the failed store-to-load forward (measured: ≈10 ns a step).
        private ulong _index, _entry;

        internal Enumerator(XArray xa, ulong start, ulong last, int filter)
        {
            _xa = xa;
            _start = start;
            _last = last;
            _filter = filter;
            _started = false;
            _done = start > last;
            _index = 0;
            _entry = 0;
        }

        /// <summary>The entry <see cref="MoveNext"/> found last and its index.</summary>
        public readonly KeyValuePair<ulong, XaEntry> Current => new(_index, new XaEntry(_entry));

        readonly object IEnumerator.Current => Current;

        /// <summary>Moves to the next entry of the range; false at the end (and on a default enumerator).</summary>
        public bool MoveNext()
        {
            XArray? xa = _xa;
            if (_done || xa is null) return false;
            if (!_started)
            {
                _started = true;
                return First(xa);
            }
            ulong index = _index;
            if (index >= _last) { _done = true; return false; }   // also index == ulong.MaxValue
            ulong next = index + 1;
            int filter = _filter;
            var r = xa._rcu.EnterReadFast();   // nothing below throws: no try/finally needed
            nint d = Volatile.Read(ref xa._dir);
            ulong key = next >> XaCodec.ChunkShift;
            if (key < DirectoryLength(d))
            {
                // The leaf covering next, if the directory names one (NoLeaf's slots are retry entries). Whatever
                // it holds was true while the entry was read or when the leaf was unlinked since (docs/xarray.md,
                // "The leaf directory"): a null slot is an absent index, a plain entry the entry there.
                XaNode* leaf = (XaNode*)XaCodec.ToNode(Volatile.Read(ref DirectoryEntries(d)[key]));
                int off = (int)(next & XaCodec.ChunkMask);
                ulong e;
                if (filter == FilterPresent)
                {
                    while ((e = XaNode.ReadSlot(leaf, off)) == 0 && off < XaCodec.ChunkMask) off++;
                }
                else
                {
                    // Marked entries: the first marked slot at or after next. No bit left in this leaf (or NoLeaf,
                    // whose marks are clear) proves nothing about the next leaves: search.
                    ulong bits = Volatile.Read(ref leaf->Marks[filter]) >> off;
                    if (bits == 0) goto search;
                    off += BitOperations.TrailingZeroCount(bits);
                    e = XaNode.ReadSlot(leaf, off);
                }
                if (e != 0 && ((e - 2) & 3) != 0)   // plain: not null, not internal
                {
                    EpochReclaimer.ExitReadFast(r);
                    ulong at = (next & ~(ulong)XaCodec.ChunkMask) + (ulong)off;
                    if (at > _last) { _done = true; return false; }
                    _index = at;
                    _entry = e;
                    return true;
                }
            }
        search:
            return After(xa, next, r);
        }

        /// <summary>The general step (<c>xa_find_after</c>), inside the section <see cref="MoveNext"/> entered.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private bool After(XArray xa, ulong next, EpochReclaimer.ReaderRecord? r)
        {
            bool ok = xa.FindUser(next, _last, _filter, after: true, out var found);
            EpochReclaimer.ExitReadFast(r);
            return Found(ok, in found);
        }

        private bool Found(bool ok, in Found found)
        {
            if (!ok) { _done = true; return false; }
            _index = found.Index;
            _entry = found.Entry;
            return true;
        }

        /// <summary>The first step: <c>xa_find</c> at the start of the range.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private bool First(XArray xa)
        {
            var r = xa._rcu.EnterReadFast();
            bool ok = xa.FindUser(_start, _last, _filter, after: false, out var found);
            EpochReclaimer.ExitReadFast(r);
            return Found(ok, in found);
        }

        /// <summary>Back to the start of the range.</summary>
        public void Reset()
        {
            _started = false;
            _done = _start > _last;
            _index = 0;
            _entry = 0;
        }

        /// <summary>Nothing to release: the enumerator holds no read section between calls.</summary>
        public readonly void Dispose() { }
    }
}
