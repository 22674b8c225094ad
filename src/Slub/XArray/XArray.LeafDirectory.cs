using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Slub.XArray;

// The leaf directory: a flat native array mapping index >> 6 to the leaf (shift-0 node) that covers those 64
// indices, so a per-key load reads two words one after the other (directory entry, leaf slot) instead of one per
// tree level. Writers keep it under the lock; readers trust an entry as they trust a leaf reached in their read section.
// docs/xarray.md, "The leaf directory", states the invariants.
public sealed unsafe partial class XArray
{
    /// <summary>Directory entries at most: indices below 2^26 (8 MB of directory). Beyond it loads walk the tree.</summary>
    internal const uint DirectoryMaxKeys = 1u << 20;

    /// <summary>The directory grows only to at most this many entries per linked leaf (64 B per 560-byte leaf), so sparse arrays barely pay for it.</summary>
    private const ulong DirectoryEntriesPerLeaf = 8;

    /// <summary>Smallest directory (a one-leaf array pays 72 bytes).</summary>
    private const ulong DirectoryMinEntries = 8;

    /// <summary>The directory of every array that has none: length 0, never freed, so readers need no null test.</summary>
    private static readonly nint s_noDirectory = (nint)NativeMemory.AllocZeroed(8);

    /// <summary>
    /// The entry for "no leaf here": the node entry of a static leaf whose every slot is a retry entry, so a load
    /// through it falls back to the walk like a load through a retired leaf, and the fast paths test nothing
    /// but "internal entry". Never linked, never freed; its <c>array</c> field says retired.
    /// </summary>
    internal static readonly ulong NoLeaf = MakeNoLeaf();

    private static ulong MakeNoLeaf()
    {
        var n = (XaNode*)NativeMemory.AlignedAlloc((nuint)XaNode.Size, 64);
        XaNode.Clear(n);
        n->Array = XaNode.RetiredArray;
        n->DirKey = XaNode.NoDirKey;
        for (int i = 0; i < XaCodec.ChunkSize; i++) n->Slots[i] = XaCodec.RetryEntry;
        return XaCodec.MkNode((nint)n);
    }

    /// <summary>
    /// The directory: one native block, its entry count in the first word and then the entries (the node entry,
    /// address | 2, of the leaf covering indices 64k..64k+63 at entry k, or <see cref="NoLeaf"/>). Count and entries are read through
    /// one pointer, so a reader always sees a consistent pair. Replaced whole when it grows (the old block is
    /// zeroed and retired through <see cref="Reclaimer"/>); entries are written with release stores, lock held.
    /// </summary>
    internal nint _dir = s_noDirectory;

    /// <summary>Leaves linked in the tree within the directory's reach (lock held): the density rule counts only these, so leaves far above 2^26 do not buy a large directory for a few below.</summary>
    private long _leaves;

    /// <summary>Largest key of a leaf the density rule kept out of the directory, −1 if none (lock held). Every linked leaf with a key below the directory's length is in it; if this is below the length too, growing can copy the old entries instead of walking the tree.</summary>
    private long _maxKeyLeftOut = -1;

    /// <summary>Entry count of directory block <paramref name="block"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong DirectoryLength(nint block) => *(ulong*)block;

    /// <summary>The entries of directory block <paramref name="block"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong* DirectoryEntries(nint block) => (ulong*)block + 1;

    /// <summary><see cref="XaNode.DirKey"/> for a leaf covering <paramref name="index"/>.</summary>
    private static uint DirKeyOf(ulong index) => (index >> XaCodec.ChunkShift) < DirectoryMaxKeys ? (uint)(index >> XaCodec.ChunkShift) : XaNode.NoDirKey;

    /// <summary>
    /// A leaf was just linked into the tree (its parent's slot or the head points at it; lock held): enter it in
    /// the directory, growing the directory if the leaf lies beyond it and the array is dense enough.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]   // rare (once per leaf): keep the writers' paths small
    private void LeafLinked(XaNode* leaf)
    {
        uint key = leaf->DirKey;
        if (key == XaNode.NoDirKey) return;
        _leaves++;
        nint d = _dir;
        if (key < DirectoryLength(d)) Volatile.Write(ref DirectoryEntries(d)[key], XaCodec.MkNode((nint)leaf));
        else GrowDirectory(leaf, key);
    }

    /// <summary>
    /// Every leaf in the subtree of <paramref name="top"/> is about to be unlinked (lock held): clear their entries
    /// BEFORE the unlinking write, so that no load starting after it finds them through the directory.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]   // rare (once per leaf): keep the writers' paths small
    private void ForgetLeaves(XaNode* top)
    {
        if (top->Shift == 0) { ForgetLeaf(top); return; }
        if (DirectoryLength(_dir) == 0) return;
        var stack = new Stack<nint>();
        stack.Push((nint)top);
        while (stack.Count > 0)
        {
            XaNode* n = (XaNode*)stack.Pop();
            for (int i = 0; i < XaCodec.ChunkSize; i++)
            {
                ulong e = n->Slots[i];
                if (!XaCodec.IsNode(e)) continue;
                XaNode* c = (XaNode*)XaCodec.ToNode(e);
                if (c->Shift == 0) ForgetLeaf(c);
                else stack.Push((nint)c);
            }
        }
    }

    /// <summary>Clears <paramref name="leaf"/>'s directory entry if it names that leaf (lock held).</summary>
    private void ForgetLeaf(XaNode* leaf)
    {
        uint key = leaf->DirKey;
        nint d = _dir;
        if (key < DirectoryLength(d) && DirectoryEntries(d)[key] == XaCodec.MkNode((nint)leaf))
            Volatile.Write(ref DirectoryEntries(d)[key], NoLeaf);
    }

    /// <summary>A leaf is being retired (<see cref="RetireNode"/>; lock held): its entry must not outlive it.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]   // rare (once per leaf): keep the writers' paths small
    private void LeafRetired(XaNode* leaf)
    {
        if (leaf->DirKey != XaNode.NoDirKey) _leaves--;
        ForgetLeaf(leaf);   // normally done already, before the unlink (ForgetLeaves); a migrated leaf's entry names its copy
    }

    /// <summary>
    /// Replaces the directory by one covering <paramref name="key"/>, filled from the tree, if the array is dense
    /// enough (at most <see cref="DirectoryEntriesPerLeaf"/> entries per linked leaf). The old block is zeroed
    /// (set to <see cref="NoLeaf"/>) after the new one is published, so a reader still holding it finds no leaf there and re-reads
    /// <see cref="_dir"/>; after a grace period it goes back to the allocator's <see cref="XaDirectoryPool"/>.
    /// </summary>
    private void GrowDirectory(XaNode* leaf, uint key)
    {
        ulong want = Math.Max(DirectoryMinEntries, BitOperations.RoundUpToPowerOf2((ulong)key + 1));
        if (want > Math.Max(DirectoryMinEntries, DirectoryEntriesPerLeaf * (ulong)_leaves))
        {
            _maxKeyLeftOut = Math.Max(_maxKeyLeftOut, key);   // too sparse for now
            return;
        }
        nint old = _dir;
        ulong oldLength = DirectoryLength(old);
        nint block = _nodes.Directories.Rent(want);   // may be a reused block: every entry is written below
        ulong* entries = DirectoryEntries(block);
        new Span<ulong>(entries + oldLength, (int)(want - oldLength)).Fill(NoLeaf);
        if (_maxKeyLeftOut < (long)oldLength)
        {
            // Every linked leaf below the old length is in the old block, and none at or above it but this one.
            Buffer.MemoryCopy(DirectoryEntries(old), entries, oldLength * sizeof(ulong), oldLength * sizeof(ulong));
            entries[key] = XaCodec.MkNode((nint)leaf);
        }
        else
        {
            new Span<ulong>(entries, (int)oldLength).Fill(NoLeaf);
            FillDirectory(entries, want);
            if (_maxKeyLeftOut < (long)want) _maxKeyLeftOut = -1;
        }
        Volatile.Write(ref _dir, block);
        if (old == s_noDirectory) return;
        ulong* oldEntries = DirectoryEntries(old);
        for (ulong k = 0; k < DirectoryLength(old); k++) Volatile.Write(ref oldEntries[k], NoLeaf);
        CountRetirement();
        _rcu.Retire(old, _nodes.Directories.ReturnAfterGracePeriod);
    }

    /// <summary>Enters every linked leaf whose key is below <paramref name="length"/> (lock held).</summary>
    private void FillDirectory(ulong* entries, ulong length)
    {
        ulong head = _head;
        if (!XaCodec.IsNode(head)) return;
        var stack = new Stack<nint>();
        stack.Push(XaCodec.ToNode(head));
        while (stack.Count > 0)
        {
            XaNode* n = (XaNode*)stack.Pop();
            if (n->Shift == 0)
            {
                if (n->DirKey < length) entries[n->DirKey] = XaCodec.MkNode((nint)n);
                continue;
            }
            for (int i = 0; i < XaCodec.ChunkSize; i++)
                if (XaCodec.IsNode(n->Slots[i])) stack.Push(XaCodec.ToNode(n->Slots[i]));
        }
    }

    /// <summary>Sets every entry to <see cref="NoLeaf"/> (lock held): the whole tree is about to be unlinked.</summary>
    private void ForgetAllLeaves()
    {
        nint d = _dir;
        ulong* entries = DirectoryEntries(d);
        for (ulong k = 0; k < DirectoryLength(d); k++) Volatile.Write(ref entries[k], NoLeaf);
        _maxKeyLeftOut = -1;
    }

    /// <summary>Drops the directory (lock held, tree already empty): the array is being disposed.</summary>
    private void ReleaseDirectory()
    {
        nint old = _dir;
        if (old == s_noDirectory) return;
        Volatile.Write(ref _dir, s_noDirectory);
        CountRetirement();
        _rcu.Retire(old, _nodes.Directories.ReturnAfterGracePeriod);
    }

    /// <summary>Entries in the directory (tests, memory figures).</summary>
    internal ulong DirectoryCapacity => DirectoryLength(Volatile.Read(ref _dir));

    /// <summary>
    /// Validate's part: the leaf count, every leaf's key, and the directory equal to the tree — entry k names the
    /// linked leaf covering 64k..64k+63 if there is one, else <see cref="NoLeaf"/> (lock held).
    /// </summary>
    private void ValidateDirectory()
    {
        nint d = _dir;
        ulong length = DirectoryLength(d);
        var expected = new ulong[length];
        Array.Fill(expected, NoLeaf);
        long leaves = 0;
        ulong head = _head;
        if (XaCodec.IsNode(head))
        {
            var stack = new Stack<(nint Node, ulong Base)>();
            stack.Push((XaCodec.ToNode(head), 0));
            while (stack.Count > 0)
            {
                var (p, nodeBase) = stack.Pop();
                XaNode* n = (XaNode*)p;
                if (n->Shift == 0)
                {
                    uint key = DirKeyOf(nodeBase);
                    if (key != XaNode.NoDirKey) leaves++;
                    if (n->DirKey != key) Fail($"leaf 0x{p:x} at index {nodeBase} has directory key {n->DirKey}, expected {key}");
                    if (key < length) expected[key] = XaCodec.MkNode(p);
                    continue;
                }
                for (int i = 0; i < XaCodec.ChunkSize; i++)
                    if (XaCodec.IsNode(n->Slots[i])) stack.Push((XaCodec.ToNode(n->Slots[i]), nodeBase + ((ulong)i << n->Shift)));
            }
        }
        if (leaves != _leaves) Fail($"leaf count {_leaves}, counted {leaves} below the directory's reach");
        ulong* entries = DirectoryEntries(d);
        for (ulong k = 0; k < length; k++)
            if (entries[k] != expected[k]) Fail($"directory entry {k} is 0x{entries[k]:x}, the tree's leaf there 0x{expected[k]:x}");
    }
}
