using System.Runtime.CompilerServices;
using Slub.Rcu;

namespace Slub.XArray;

/// <summary>
/// A read section over one <see cref="XArray"/> for many loads: <c>using var r = xa.BeginRead();</c> then
/// <see cref="Load"/> / <see cref="TryGetValue"/> as often as needed (the kernel's <c>rcu_read_lock()</c> around a
/// run of <c>xa_load</c>s). Same results as <see cref="XArray.Load"/>; per load as cheap or a little cheaper
/// (docs/benchmarks.md), because the section is entered once, so a load neither validates what it read (as the
/// plain load, outside a section, does) nor re-reads the directory pointer; loads go through the array's leaf
/// directory first. <see cref="LoadMany"/> loads a batch of indices
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
/// entries before any later write (or, deleted empty, null slots, true at its unlinking) and is not freed before
/// this section ends. So a slot holding a user entry or null
/// is the answer; anything internal (retry, sibling, reservation, or the directory's all-retry <c>NoLeaf</c>) takes
/// the walk.</para>
/// <para><b>The walk.</b> What the directory does not answer walks from the head, read afresh for every walk (one
/// word, which writers change only when the tree's root changes), never from a root remembered from an earlier
/// load: a root can be unlinked by a multi-index store or an erase while the reader keeps it (its subtree gets
/// retry entries only after the unlinking write), and a load that starts after such a write must not return what it
/// replaced.</para>
/// <para><b>Cost.</b> Measured with <c>--xarray-cpu-time</c> (docs/benchmarks.md §4). Opening and closing a
/// reader costs about two loads' worth of section bookkeeping (a thread-static lookup on entry and on exit), so
/// it pays from a handful of loads on.</para>
/// </remarks>
public unsafe ref partial struct XaReader
{
    private readonly XArray _xa;
    private EpochReclaimer.ReaderRecord? _section;   // this thread's record, in a section until Dispose
    private bool _open;
    private ulong* _dir;       // the array's leaf directory entries as last read (see "The leaf directory")
    private ulong _dirLength;  // their count; 0 in a default or disposed reader

    internal XaReader(XArray xa)
    {
        _xa = xa;
        _section = xa.Reclaimer.EnterReadSection();
        _open = true;
        nint d = Volatile.Read(ref xa._dir);   // read inside the section: the block cannot be freed before it ends
        _dir = XArray.DirectoryEntries(d);
        _dirLength = XArray.DirectoryLength(d);
    }

    /// <summary>The entry at <paramref name="index"/>, as <see cref="XArray.Load"/> returns it. Lock-free; on the reader's own thread.</summary>
    /// <exception cref="ObjectDisposedException">The reader was disposed.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public XaEntry Load(ulong index)
    {
        ulong e = LoadRaw(index);
        return new XaEntry(e == XaCodec.ZeroEntry ? 0 : e);
    }

    /// <summary>As <see cref="XArray.TryGetValue"/>: true and the value if <paramref name="index"/> holds a value entry. Lock-free; on the reader's own thread.</summary>
    /// <exception cref="ObjectDisposedException">The reader was disposed.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGetValue(ulong index, out ulong value)
    {
        ulong e = LoadRaw(index);
        value = e >> 1;
        return (e & 1) != 0;
    }

    /// <summary>Leaves the read section. Later loads throw. On the reader's own thread; idempotent.</summary>
    public void Dispose()
    {
        if (!_open) return;
        _open = false;
        _dirLength = 0;              // the next load reaches the walk, which throws
        EpochReclaimer.ExitReadSection(_section!);
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
        return WalkFromHead(index);
    }

    /// <summary>
    /// The walk from the head (<see cref="XaUnrolledWalk"/>, as <see cref="XArray"/>'s load), after re-reading the
    /// directory pointer (the directory may have been replaced, and the block read before set to <c>NoLeaf</c>).
    /// Anything unusual (a tree the unrolled walk does not take, an index beyond the root's reach, a retry, sibling
    /// or reserved entry) takes the slow path. Nothing here takes this struct's address, so the JIT can keep its
    /// fields in registers in the caller's loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong WalkFromHead(ulong index)
    {
        if (!_open) ThrowDisposed();   // also a default reader, whose array is null
        nint d = Volatile.Read(ref _xa._dir);
        _dir = XArray.DirectoryEntries(d);
        _dirLength = XArray.DirectoryLength(d);
        ulong w = Volatile.Read(ref _xa._headWalk);
        if (XaUnrolledWalk.TryWalk(w & XArray.HeadWalkAddressMask, (int)(w >> 56), index, out ulong e) && ((e - 2) & 3) != 0)
            return e;   // not internal: null, value or pointer
        return SlowLoad(_xa, index);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ulong SlowLoad(XArray xa, ulong index) => xa.LoadInSection(index);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowDisposed() => throw new ObjectDisposedException(nameof(XaReader));
}
