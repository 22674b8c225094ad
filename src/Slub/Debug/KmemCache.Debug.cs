using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Slub.Pages;

namespace Slub;

// slub_debug: red zones, poisoning, alloc/free tracks, consistency checks, validate. These run only on
// caches with debug flags, which never use the per-CPU fast path (as in the kernel).
public sealed unsafe partial class KmemCache
{
    internal const byte RedInactive = 0xbb, RedActive = 0xcc;
    internal const byte PoisonInuse = 0x5a, PoisonFree = 0x6b, PoisonEnd = 0xa5;

    /// <summary>One allocation or free record of store_user (the kernel's <c>struct track</c>).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Track
    {
        public int CallSite;   // index into the allocator's call-site table, 0 = none
        public int Cpu;
        public int Thread;
        public int Pad;
        public long When;      // Environment.TickCount64
    }

    /// <summary>
    /// Debug set-up of a new slab (<c>setup_slab_debug</c>, <c>setup_object_debug</c>): with poisoning the whole
    /// slab gets the in-use poison first (the padding keeps it), then every object its red zones and poison,
    /// and empty tracks, since recycled pages may still hold an earlier slab's bytes there.
    /// </summary>
    private void InitSlabDebug(Slab slab)
    {
        if ((Flags & SlabFlags.Poison) != 0)
            new Span<byte>((void*)slab.Address, slab.Bytes).Fill(PoisonInuse);
        for (int i = 0; i < slab.Objects; i++)
        {
            nint obj = slab.FirstObject + (nint)i * _size;
            InitObjectDebug(obj, active: false);
            if ((Flags & SlabFlags.StoreUser) != 0)
                new Span<byte>((void*)(obj + Geometry.TrackOffset), 2 * CacheGeometry.TrackSize).Clear();
        }
    }

    /// <summary>Writes the red zones (and, for free objects, the poison) of an object.</summary>
    private void InitObjectDebug(nint obj, bool active)
    {
        byte val = active ? RedActive : RedInactive;
        var g = Geometry;
        if ((Flags & SlabFlags.RedZone) != 0)
        {
            new Span<byte>((void*)(obj - g.RedLeftPad), g.RedLeftPad).Fill(val);
            new Span<byte>((void*)(obj + g.ObjectSize), g.Inuse - g.ObjectSize).Fill(val);
        }
        if (_poison && !active)
        {
            var body = new Span<byte>((void*)obj, g.ObjectSize);
            body.Fill(PoisonFree);
            body[^1] = PoisonEnd;
            if ((Flags & SlabFlags.RedZone) == 0)
                new Span<byte>((void*)(obj + g.ObjectSize), g.Inuse - g.ObjectSize).Fill(PoisonInuse);
        }
    }

    /// <summary>Checks the red zones and poison of an object (<c>check_object</c>); returns the problem or null.</summary>
    private string? CheckObject(Slab slab, nint obj, bool active, out string detail)
    {
        detail = "";
        var g = Geometry;
        byte val = active ? RedActive : RedInactive;
        if ((Flags & SlabFlags.RedZone) != 0)
        {
            if (FindMismatch(slab, obj - g.RedLeftPad, g.RedLeftPad, val, out detail)) return "Left Redzone overwritten";
            if (FindMismatch(slab, obj + g.ObjectSize, g.Inuse - g.ObjectSize, val, out detail)) return "Right Redzone overwritten";
        }
        else if (_poison && g.Inuse > g.ObjectSize)
        {
            if (FindMismatch(slab, obj + g.ObjectSize, g.Inuse - g.ObjectSize, PoisonInuse, out detail)) return "Alignment padding overwritten";
        }
        if (_poison && !active)
        {
            if (FindMismatch(slab, obj, g.ObjectSize - 1, PoisonFree, out detail)
                || FindMismatch(slab, obj + g.ObjectSize - 1, 1, PoisonEnd, out detail))
                return "Poison overwritten";
        }
        if ((Flags & SlabFlags.Poison) != 0 && PaddingBytes is var pad and > 0
            && FindMismatch(slab, obj + g.PaddingOffset, pad, PoisonInuse, out detail))
            return "Object padding overwritten";
        if (!active)
        {
            nint fp = *(nint*)(obj + _fpOffset);
            if (fp != 0 && slab.IndexOf(fp) < 0)
            {
                detail = $"Freepointer 0x{fp:x} is not an object of {slab}";
                return "Freepointer corrupt";
            }
        }
        return null;
    }

    /// <summary>Bytes from <see cref="CacheGeometry.PaddingOffset"/> to the next slot's left red zone.</summary>
    private int PaddingBytes => Geometry.Size - Geometry.RedLeftPad - Geometry.PaddingOffset;

    /// <summary>The kernel's <c>check_bytes_and_report</c>: finds bytes of <paramref name="length"/> from <paramref name="start"/>
    /// that differ from <paramref name="expected"/> and describes them; <c>@offset</c> is the first one's distance from the start
    /// of <paramref name="slab"/> (the kernel's <c>fault - slab_address(slab)</c>), as in the <c>Object</c> and padding lines.</summary>
    private static bool FindMismatch(Slab slab, nint start, int length, byte expected, out string detail)
    {
        var span = new ReadOnlySpan<byte>((void*)start, length);
        int i = span.IndexOfAnyExcept(expected);
        if (i < 0) { detail = ""; return false; }
        int last = i;
        for (int j = length - 1; j > i; j--) if (span[j] != expected) { last = j; break; }
        detail = $"0x{start + i:x}-0x{start + last:x} @offset={(long)(start + i - slab.Address)}. First byte 0x{span[i]:x} instead of 0x{expected:x}";
        return true;
    }

    private Track* TrackOf(nint obj, bool free) =>
        (Track*)(obj + Geometry.TrackOffset + (free ? CacheGeometry.TrackSize : 0));

    private void SetTrack(nint obj, bool free)
    {
        if ((Flags & SlabFlags.StoreUser) == 0) return;
        var t = TrackOf(obj, free);
        t->CallSite = _allocator.CallSites.Intern(CallerOutsideAllocator());
        t->Cpu = _allocator.CurrentCpu();
        t->Thread = Environment.CurrentManagedThreadId;
        t->When = Environment.TickCount64;
    }

    private static string CallerOutsideAllocator()
    {
        var trace = new StackTrace(2, false);
        var own = typeof(KmemCache).Assembly;
        foreach (var frame in trace.GetFrames())
        {
            var m = frame.GetMethod();
            if (m is null || m.DeclaringType?.Assembly == own) continue;
            return $"{m.DeclaringType?.Name}.{m.Name}+0x{frame.GetILOffset():x}";
        }
        return "<unknown>";
    }

    /// <summary>The kernel-style report for a damaged object: header, detail, tracks, slab and object lines.</summary>
    internal string Report(Slab slab, nint obj, string problem, string detail)
    {
        var sb = new StringBuilder();
        sb.Append('=', 77).Append('\n');
        sb.Append($"BUG {Name} (Not tainted): {problem}\n");
        sb.Append('-', 77).Append("\n\n");
        if (detail.Length > 0) sb.Append(detail).Append('\n');
        if ((Flags & SlabFlags.StoreUser) != 0 && slab.IndexOf(obj) >= 0)
        {
            AppendTrack(sb, "Allocated", TrackOf(obj, false));
            AppendTrack(sb, "Freed", TrackOf(obj, true));
        }
        sb.Append($"Slab 0x{slab.Address:x} objects={slab.Objects} used={slab.Inuse} fp=0x{slab.Freelist:x} flags={(slab.Frozen ? "frozen" : "")}\n");
        int index = slab.IndexOf(obj);
        sb.Append($"Object 0x{obj:x} @offset={(long)(obj - slab.Address)}");
        if (index >= 0) sb.Append($" fp=0x{*(nint*)(obj + _fpOffset):x}");
        sb.Append('\n');
        if (index >= 0) AppendSections(sb, slab, obj);
        return sb.ToString();
    }

    /// <summary>
    /// The byte dumps of the kernel's <c>print_trailer</c> after a blank line: the left red zone (or the 16 bytes
    /// before the object, "Bytes b4 ", when there is no red zone and the object is not at the slab's start), the
    /// object (at most a page), the right red zone, and the padding after the metadata when there is any.
    /// </summary>
    private void AppendSections(StringBuilder sb, Slab slab, nint obj)
    {
        var g = Geometry;
        sb.Append('\n');
        bool redZone = (Flags & SlabFlags.RedZone) != 0;
        if (redZone) HexDump(sb, "Redzone  ", obj - g.RedLeftPad, g.RedLeftPad);
        else if (obj > slab.Address + 16) HexDump(sb, "Bytes b4 ", obj - 16, 16);
        HexDump(sb, "Object   ", obj, Math.Min(g.ObjectSize, OsMemory.PageSize));
        if (redZone) HexDump(sb, "Redzone  ", obj + g.ObjectSize, g.Inuse - g.ObjectSize);
        if (PaddingBytes > 0) HexDump(sb, "Padding  ", obj + g.PaddingOffset, PaddingBytes);
    }

    /// <summary>
    /// <c>print_hex_dump(…, DUMP_PREFIX_ADDRESS, 16, 1, …, true)</c>: per 16 bytes the label, the address (16 hex
    /// digits, as <c>%p</c> prints on 64-bit), ": ", the bytes in lower-case hex separated by blanks, blanks up to
    /// column 49, and the bytes as ASCII ('.' for anything not printable).
    /// </summary>
    private static void HexDump(StringBuilder sb, string label, nint start, int length)
    {
        var bytes = new ReadOnlySpan<byte>((void*)start, length);
        for (int i = 0; i < bytes.Length; i += 16)
        {
            var row = bytes.Slice(i, Math.Min(16, bytes.Length - i));
            int begin = sb.Append(label).Append($"{start + i:x16}: ").Length;
            for (int j = 0; j < row.Length; j++)
            {
                if (j > 0) sb.Append(' ');
                sb.Append(row[j].ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
            }
            sb.Append(' ', 49 - (sb.Length - begin));
            foreach (byte b in row) sb.Append(b is >= 0x20 and < 0x7f ? (char)b : '.');
            sb.Append('\n');
        }
    }

    private void AppendTrack(StringBuilder sb, string what, Track* t)
    {
        if (t->When == 0) return;
        long age = Environment.TickCount64 - t->When;
        sb.Append($"{what} in {_allocator.CallSites.Name(t->CallSite)} age={age} cpu={t->Cpu} pid={t->Thread}\n");
    }

    /// <summary>Allocation for debug caches: one object from the head partial slab, fully checked (<c>alloc_debug_processing</c>).</summary>
    private nint AllocDebug(int localNode, int node)
    {
        int want = node < 0 ? localNode : node;
        bool wantedNodeFull = false;   // as in AllocSlow
        while (true)
        {
            nint obj = AllocFromPartialDebug(_nodes[want]);
            if (obj != 0) return obj;
            if (node < 0 || wantedNodeFull)
            {
                for (int i = 1; i < _nodes.Length && obj == 0; i++)
                {
                    var other = _nodes[(want + i) % _nodes.Length];
                    if (other.Partial.Count > MinPartial && Random.Shared.Next(1024) <= RemoteNodeDefragRatio * 10)
                        obj = AllocFromPartialDebug(other);
                }
                if (obj != 0) return obj;
            }
            var fresh = NewSlabFor(node, localNode, ref wantedNodeFull, out bool tryOtherNodes);
            if (tryOtherNodes) continue;
            if (fresh is null) return 0;
            var n = _nodes[fresh.Node];
            lock (n.ListLock)
            {
                fresh.Inuse = 0;
                fresh.Frozen = false;
                n.AddPartial(fresh, atHead: true);
            }
            Stats._allocSlab++;
            // The new slab is at the head of its node's list: take the object from it, also when it came from
            // another node because the wanted one had no memory (else each pass added one more slab there).
            want = fresh.Node;
        }
    }

    private nint AllocFromPartialDebug(KmemCacheNode n)
    {
        // Log lines are written after the list lock is released: a LineWritten handler runs on this thread and may
        // wait for another thread that uses this cache.
        string? trace = null, problem = null;
        nint obj;
        lock (n.ListLock)
        {
            var s = n.Partial.Head;
            if (s is null) return 0;
            SpinLockWord.Enter(ref s.LockWord);
            obj = s.Freelist;
            problem = obj == 0 ? "Freelist empty on a partial slab" : null;
            string detail = "";
            if (problem is null && s.IndexOf(obj) < 0) { problem = "Freepointer corrupt"; detail = $"Free list head 0x{obj:x} is not an object of this slab"; }
            if (problem is null && (Flags & (SlabFlags.ConsistencyChecks | SlabFlags.RedZone | SlabFlags.Poison)) != 0)
                problem = CheckObject(s, obj, active: false, out detail);
            if (problem is not null)
            {
                // Never hand out anything from this slab again (the kernel's "Marking all objects used").
                trace = Report(s, obj, problem, detail);
                n.RemovePartial(s);
                s.Freelist = 0;
                s.Inuse = s.Objects;
                AddFull(n, s);
                SpinLockWord.Exit(ref s.LockWord);
            }
            else
            {
                s.Freelist = *(nint*)(obj + _fpOffset);
                s.Inuse++;
                n.Allocated(s, 1);
                if (s.Freelist == 0)
                {
                    n.RemovePartial(s);
                    AddFull(n, s);
                }
                else if (n.Partial.NeedsRefile(s))
                {
                    n.Partial.Refile(s);
                }
                InitObjectDebug(obj, active: true);
                SpinLockWord.Exit(ref s.LockWord);
                SetTrack(obj, free: false);
                if ((Flags & SlabFlags.Trace) != 0)
                    trace = $"TRACE {Name} alloc 0x{obj:x} inuse={s.Inuse} fp=0x{s.Freelist:x}";
            }
        }
        if (trace is not null) _allocator.Log.Write(trace);
        if (problem is not null) throw new SlabCorruptionException(Name, obj, problem, trace!);
        return obj;
    }

    /// <summary>Free for debug caches: double free, red zones and the free list are checked before anything changes (<c>free_debug_processing</c>).</summary>
    private void FreeDebug(Slab slab, nint obj)
    {
        var n = _nodes[slab.Node];
        bool discard = false;
        string? trace = null, problem = null, report = null;
        lock (n.ListLock)
        {
            SpinLockWord.Enter(ref slab.LockWord);
            string detail = "";
            // on_freelist: walk the slab's free list looking for the object (and for damage).
            int seen = 0;
            for (nint p = slab.Freelist; p != 0 && problem is null; p = *(nint*)(p + _fpOffset))
            {
                if (p == obj) problem = "Object already free";
                else if (slab.IndexOf(p) < 0) { problem = "Freepointer corrupt"; detail = $"Free list holds 0x{p:x}"; }
                else if (++seen > slab.Objects) problem = "Freelist cycle";
            }
            if (problem is null && (Flags & (SlabFlags.ConsistencyChecks | SlabFlags.RedZone | SlabFlags.Poison)) != 0)
                problem = CheckObject(slab, obj, active: true, out detail);
            if (problem is not null)
            {
                report = Report(slab, obj, problem, detail);
                SpinLockWord.Exit(ref slab.LockWord);
                goto reportOutsideTheLock;   // the log's handlers never run under the list lock (AllocFromPartialDebug)
            }
            // trace(): on free, before the object goes back, with its bytes as the caller left them.
            if ((Flags & SlabFlags.Trace) != 0)
            {
                var t = new StringBuilder($"TRACE {Name} free 0x{obj:x} inuse={slab.Inuse} fp=0x{slab.Freelist:x}\n");
                HexDump(t, "Object ", obj, ObjectSize);
                trace = t.ToString().TrimEnd('\n');
            }
            SetTrack(obj, free: true);
            InitObjectDebug(obj, active: false);
            nint prior = slab.Freelist;
            *(nint*)(obj + _fpOffset) = prior;
            slab.Freelist = obj;
            slab.Inuse--;
            n.Freed(slab, 1);
            if (!slab.Frozen)
            {
                if (slab.Inuse == 0 && n.Partial.Count >= MinPartial)
                {
                    RemoveFromNodeList(n, slab);
                    discard = true;
                }
                else if (prior == 0)
                {
                    RemoveFromNodeList(n, slab);
                    n.AddPartial(slab);
                }
                else if (slab.List == SlabList.Partial && n.Partial.NeedsRefile(slab))
                {
                    n.Partial.Refile(slab);
                }
            }
            SpinLockWord.Exit(ref slab.LockWord);
        }
        if (trace is not null) _allocator.Log.Write(trace);
        if (discard) DiscardSlab(slab);
        return;
    reportOutsideTheLock:
        _allocator.Log.Write(report!);
        throw new SlabCorruptionException(Name, obj, problem!, report!);
    }

    /// <summary>
    /// Checks every slab of the cache (the sysfs <c>validate</c> attribute): free lists well formed and
    /// counted, and on debug caches every object's red zones and poison. Flushes the CPUs first.
    /// Returns the kernel-style report of each problem found (empty when all is well). Thread-safe.
    /// </summary>
    public IReadOnlyList<string> Validate()
    {
        FlushAll();
        var problems = new List<string>();
        foreach (var n in _nodes)
        {
            lock (n.ListLock)
            {
                for (var s = n.Partial.Head; s is not null; s = s.Next) ValidateSlab(s, problems);
                for (var s = n.Full.Head; s is not null; s = s.Next) ValidateSlab(s, problems);
            }
        }
        if (!_trackFull) ValidateUntrackedFull(problems);
        foreach (var p in problems) _allocator.Log.Write(p);
        return problems;
    }

    /// <summary>
    /// Full slabs on no list (a cache without a full list): their counts and free maps must say full. Only the
    /// descriptor is read, under the slab lock and after re-checking the state, since the snapshot of page
    /// owners may name a slab discarded meanwhile.
    /// </summary>
    private void ValidateUntrackedFull(List<string> problems)
    {
        foreach (var arena in _pages.Arenas)
        {
            foreach (var block in arena.AllocatedBlocks())
            {
                if (block is not Slab s || s.Cache != this) continue;
                SpinLockWord.Enter(ref s.LockWord);
                if (s.List == SlabList.None && !s.Frozen && s.Freelist == 0 && s.Objects > 0)
                {
                    if (s.Inuse != s.Objects)
                        problems.Add($"validate {Name}: {s}: full slab on no list counts {s.Inuse} of {s.Objects} objects in use");
                    else if (s.FreeMap is { } map && map.AsSpan().IndexOfAnyExcept(0UL) >= 0)
                        problems.Add($"validate {Name}: {s}: full slab on no list has free slots in its free map");
                }
                SpinLockWord.Exit(ref s.LockWord);
            }
        }
    }

    /// <summary>The unused tail of a poisoned slab must still hold the in-use poison (<c>slab_pad_check</c>); returns the report or null.</summary>
    private string? SlabPadProblem(Slab s)
    {
        int used = s.Objects * _size;
        var tail = new ReadOnlySpan<byte>((void*)(s.Address + used), s.Bytes - used);
        int first = tail.IndexOfAnyExcept(PoisonInuse);
        if (first < 0) return null;
        int last = tail.LastIndexOfAnyExcept(PoisonInuse);
        var sb = new StringBuilder();
        sb.Append('=', 77).Append('\n');
        sb.Append($"BUG {Name} (Not tainted): Padding overwritten. 0x{s.Address + used + first:x}-0x{s.Address + used + last:x} @offset={used + first}\n");
        sb.Append('-', 77).Append("\n\n");
        sb.Append($"Slab 0x{s.Address:x} objects={s.Objects} used={s.Inuse} fp=0x{s.Freelist:x} flags={(s.Frozen ? "frozen" : "")}\n");
        return sb.ToString();
    }

    private void ValidateSlab(Slab s, List<string> problems)
    {
        SpinLockWord.Enter(ref s.LockWord);
        try
        {
            var free = new bool[s.Objects];
            int nfree = 0;
            for (nint p = s.Freelist; p != 0; p = *(nint*)(p + _fpOffset))
            {
                int i = s.IndexOf(p);
                if (i < 0) { problems.Add(Report(s, p, "Freepointer corrupt", $"Free list holds 0x{p:x}")); return; }
                if (free[i]) { problems.Add(Report(s, p, "Freelist cycle", "")); return; }
                free[i] = true;
                nfree++;
            }
            if (!s.Frozen && nfree != s.Objects - s.Inuse)
                problems.Add($"validate {Name}: {s}: {nfree} objects on the free list, {s.Objects - s.Inuse} expected");
            if (s.List == SlabList.Partial && nfree == 0)
                problems.Add($"validate {Name}: {s}: full slab on the partial list");
            if (s.List == SlabList.Full && nfree != 0)
                problems.Add($"validate {Name}: {s}: slab with free objects on the full list");
            if (s.FreeMap is not null)
                for (int i = 0; i < s.Objects; i++)
                    if (s.IsMarkedFree(i) != free[i])
                    {
                        problems.Add($"validate {Name}: {s}: free map says slot {i} is {(free[i] ? "in use" : "free")}, the free list says otherwise");
                        break;
                    }
            if ((Flags & SlabFlags.Poison) != 0 && SlabPadProblem(s) is { } pad) problems.Add(pad);
            if ((Flags & (SlabFlags.RedZone | SlabFlags.Poison | SlabFlags.ConsistencyChecks)) != 0)
            {
                for (int i = 0; i < s.Objects; i++)
                {
                    nint obj = s.ObjectAt(i);
                    string? problem = CheckObject(s, obj, active: !free[i], out string detail);
                    if (problem is not null) problems.Add(Report(s, obj, problem, detail));
                }
            }
        }
        finally
        {
            SpinLockWord.Exit(ref s.LockWord);
        }
    }
}
