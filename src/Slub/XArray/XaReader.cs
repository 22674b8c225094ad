using System.Runtime.CompilerServices;
using Slub.Rcu;

namespace Slub.XArray;

/// <summary>
/// A read section over one <see cref="XArray"/> for many loads: <c>using var r = xa.BeginRead();</c> then
/// <see cref="Load"/> / <see cref="TryGetValue"/> as often as needed (the kernel's <c>rcu_read_lock()</c> around a
/// run of <c>xa_load</c>s). Same results as <see cref="XArray.Load"/>; cheaper per load, because the section is
/// entered once (no thread-static lookup and no epoch stores per load), loads go through the array's leaf
/// directory first and the root is remembered. <see cref="LoadMany"/> loads a batch of indices
/// four at a time, cheaper still per index.
/// </summary>
/// <remarks>
/// <para><b>Thread-safety.</b> Lock-free, like <see cref="XArray.Load"/>: concurrent writers, erasures and node
/// migration are safe. The reader belongs to the thread that created it (it is a <c>ref struct</c>: it cannot be
/// stored on the heap or cross an <c>await</c>) and must be disposed on that thread, once. While it is open, nodes
/// unlinked by writers or by migration are not freed, so keep it short (a batch of loads, not a whole run):
/// <see cref="EpochReclaimer.Synchronize"/>, hence defragmenting <c>xa_node</c>, waits for it, and calling those
/// from inside it throws.</para>
/// <para><b>The leaf directory.</b> A load first reads the array's leaf directory (index >> 6 → leaf; see
/// docs/xarray.md): a leaf named there is live or was unlinked after the entry was read — then it shows retry
/// entries before any later write and is not freed before this section ends. So a slot holding a user entry or null
/// is the answer; anything internal (retry, sibling, reservation, or the directory's all-retry <c>NoLeaf</c>) takes
/// the walk.</para>
/// <para><b>The root cache.</b> The walk starts at the root seen last in this section, which is live (possibly no
/// longer the root, if the tree grew: then it is a child of the new root and still authoritative for its own
/// indices) or shows retry entries: a root is given retry entries before the write that unlinks it (the whole tree
/// dropped) or, when the tree shrinks, keeps reaching the same live child. An index beyond its reach, a retry entry or a tree of more than
/// four levels takes the slow path, which re-reads the head. So the fast path reads no shared word of the array
/// at all, only nodes.</para>
/// <para><b>Cost.</b> Measured with <c>--xarray-cpu-time</c> (docs/benchmarks.md §4). Opening and closing a
/// reader costs about two loads' worth of section bookkeeping (a thread-static lookup on entry and on exit), so
/// it pays from a handful of loads on.</para>
/// </remarks>
public unsafe ref partial struct XaReader
{
    private readonly XArray _xa;
    private EpochReclaimer.ReadScope _scope;
    private bool _open;
    private ulong _root;       // node entry of the root seen last (see "The root cache"), masked from _headWalk
    private int _rootLevels;   // its height, 1..4 (the unrolled walk's entry point); 0 when none is cached
    private ulong* _dir;       // the array's leaf directory entries as last read (see "The leaf directory")
    private ulong _dirLength;  // their count; 0 in a default or disposed reader

    internal XaReader(XArray xa)
    {
        _xa = xa;
        _scope = xa.Reclaimer.EnterRead();
        _open = true;
        nint d = Volatile.Read(ref xa._dir);   // read inside the section: the block cannot be freed before it ends
        _dir = XArray.DirectoryEntries(d);
        _dirLength = XArray.DirectoryLength(d);
    }

    /// <summary>The entry at <paramref name="index"/>, as <see cref="XArray.Load"/> returns it.</summary>
    /// <exception cref="ObjectDisposedException">The reader was disposed.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public XaEntry Load(ulong index)
    {
        ulong e = LoadRaw(index);
        return new XaEntry(e == XaCodec.ZeroEntry ? 0 : e);
    }

    /// <summary>As <see cref="XArray.TryGetValue"/>: true and the value if <paramref name="index"/> holds a value entry.</summary>
    /// <exception cref="ObjectDisposedException">The reader was disposed.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGetValue(ulong index, out ulong value)
    {
        ulong e = LoadRaw(index);
        value = e >> 1;
        return (e & 1) != 0;
    }

    /// <summary>Leaves the read section. Later loads throw.</summary>
    public void Dispose()
    {
        if (!_open) return;
        _open = false;
        _rootLevels = 0;             // both caches off: the next load reaches the fallback, which throws
        _dirLength = 0;
        _scope.Dispose();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong LoadRaw(ulong index)
    {
        if ((index >> XaCodec.ChunkShift) < _dirLength)
        {
            ulong leaf = Volatile.Read(ref _dir[index >> XaCodec.ChunkShift]);   // a leaf, or NoLeaf (all retry entries)
            ulong e = XaNode.SlotAt(leaf, index & XaCodec.ChunkMask);
            if (((e - 2) & 3) != 0) return e;   // not internal (null, value or pointer): see "The leaf directory"
        }
        return WalkFromRoot(index);
    }

    /// <summary>
    /// The walk from the cached root (<see cref="XaUnrolledWalk"/>, as <see cref="XArray"/>'s load); remembers the
    /// leaf it reaches. Anything unusual (no cached root, an index the cached root does not cover, a retry,
    /// sibling or reserved entry) re-reads the head and takes the slow path.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong WalkFromRoot(ulong index)
    {
        if (_open)
        {
            // The directory missed: it may have been replaced (and the one read before zeroed) since.
            nint d = Volatile.Read(ref _xa._dir);
            _dir = XArray.DirectoryEntries(d);
            _dirLength = XArray.DirectoryLength(d);
        }
        if (XaUnrolledWalk.TryWalk(_root, _rootLevels, index, out ulong e))
        {
            if (((e - 2) & 3) != 0) return e;   // not internal: null, value or pointer
        }
        // Sibling, retry or reservation, or no usable root: re-read the head (caching its root if the unrolled
        // walk can take it) and load the slow way. Nothing here takes this struct's address, so the JIT can keep
        // its fields in registers in the caller's loop. A disposed (or default) reader must not cache anything.
        if (!_open) ThrowDisposed();
        RefreshRoot();
        return SlowLoad(_xa, index);
    }

    /// <summary>Caches the head's root if the unrolled walk can take it (else none). The reader must be open.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void RefreshRoot()
    {
        ulong w = Volatile.Read(ref _xa._headWalk);
        _root = w & XArray.HeadWalkAddressMask;
        _rootLevels = (int)(w >> 56);   // 1..4 for a root the unrolled walk takes, 0 otherwise
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ulong SlowLoad(XArray xa, ulong index) => xa.LoadInSection(index);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowDisposed() => throw new ObjectDisposedException(nameof(XaReader));
}
