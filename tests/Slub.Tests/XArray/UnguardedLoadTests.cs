using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Slub.XArray;
using XA = Slub.XArray.XArray;

namespace Slub.Tests.XArray;

/// <summary>
/// The plain load's path without a read section (<c>XArray.TryLoadFast</c>): a writer that retires the
/// nodes or the directory block a load is about to read, lets them be freed and has their memory reused, at any
/// point between two of the load's reads, never makes the load return what the reused memory holds or follow a
/// pointer out of it. Taking out the check after a read makes a case fail (the walk's interior checks by faulting
/// on a <c>PROT_NONE</c> page, so the test run aborts).
/// </summary>
public unsafe class UnguardedLoadTests : XaTest
{
    private const ulong Bad = 0xBAD;

    /// <summary>Runs <see cref="Act"/> once, just before the load's <see cref="FireAt"/>-th read through a pointer.</summary>
    private readonly struct SteppingGuard(XA xa, int fireAt, Action act, StrongBox<int> reads) : XaUnrolledWalk.IWalkGuard
    {
        private readonly XA.RetireSeqGuard _inner = new(xa);
        public readonly int FireAt = fireAt;
        public readonly Action Act = act;

        public bool Holds() => _inner.Holds();

        public void BeforeRead()
        {
            if (++reads.Value == FireAt) Act();
        }
    }

    /// <summary>One load through the unguarded path with a writer before read <paramref name="fireAt"/>; the sectioned load when that path declines (<paramref name="answered"/> false).</summary>
    private static ulong LoadStepping(XA xa, ulong index, int fireAt, Action act, out int reads, out bool answered)
    {
        var calls = new StrongBox<int>();
        answered = xa.TryLoadFast(index, new SteppingGuard(xa, fireAt, act, calls), out ulong found);
        reads = calls.Value;
        return answered ? found : xa.Load(index).Raw;
    }

    private static XaNode* LeafOf(XA xa, ulong index)
    {
        using var section = xa.ReadLock();
        xa.Walk(index, out XaNode* node, out _);
        return node;
    }

    /// <summary>Takes <paramref name="count"/> objects from <c>xa_node</c> (the freed nodes first: the free lists are LIFO) and fills their slots with <paramref name="slot"/>.</summary>
    private static List<nint> ReuseNodes(XA xa, int count, ulong slot)
    {
        var taken = new List<nint>();
        for (int i = 0; i < count; i++)
        {
            nint p = xa.NodeCache.Alloc();
            for (int k = 0; k < 64; k++) ((XaNode*)p)->Slots[k] = slot;
            taken.Add(p);
        }
        return taken;
    }

    private static void GiveBack(XA xa, List<nint> taken)
    {
        foreach (var p in taken)
        {
            XaNode.Clear((XaNode*)p);   // the constructor's state, which free objects of xa_node keep
            xa.NodeCache.Free(p);
        }
        taken.Clear();
    }

    /// <summary>A page that faults on any access (Linux; 0 elsewhere, where the tests reuse memory with values only).</summary>
    private static nint ProtNonePage()
    {
        if (!OperatingSystem.IsLinux()) return 0;
        nint hole = mmap(0, 4096, 0 /* PROT_NONE */, 0x22 /* MAP_PRIVATE | MAP_ANONYMOUS */, -1, 0);
        Assert.NotEqual(-1, hole);
        return hole;
    }

    [Fact]
    public void ATreeWalkNeverFollowsOrReturnsWhatAFreedAndReusedNodeHolds()
    {
        // 64 leaves between 2^22 and 2^22 + 4096: too sparse for a directory, four levels, so the load reads the
        // directory's length, then walks the tree: five reads through a pointer.
        const ulong Base = 1UL << 22, Target = Base + 1234;
        nint hole = ProtNonePage();
        var taken = new List<nint>();
        int reused = 0;
        try
        {
            for (int fireAt = 1; ; fireAt++)
                foreach (bool pointers in hole != 0 ? new[] { true, false } : new[] { false })
                {
                    var xa = New();
                    for (ulong i = 0; i < 4096; i++) xa.StoreValue(Base + i, i);
                    Assert.Equal(0UL, xa.DirectoryCapacity);
                    XaNode* leaf = LeafOf(xa, Target);
                    const int nodes = 67;   // root, one node at shift 12, one at shift 6, 64 leaves
                    void RetireAndReuse()
                    {
                        xa.Destroy();                  // every node unlinked and retired
                        xa.Reclaimer.Synchronize();    // ... and freed: this load holds no section to wait for
                        // Their memory back, every slot a node entry into an unmapped page (or a value of 0xBAD).
                        taken = ReuseNodes(xa, nodes + 8, pointers ? XaCodec.MkNode(hole) : XaEntry.FromValue(Bad).Raw);
                        if (taken.Contains((nint)leaf)) reused++;
                    }
                    ulong e;
                    int reads;
                    bool answered;
                    try { e = LoadStepping(xa, Target, fireAt, RetireAndReuse, out reads, out answered); }
                    finally { GiveBack(xa, taken); }
                    if (fireAt > reads) goto Done;   // every point of this walk has been tried
                    // Before the destroy the entry was 1234; after it, nothing. Anything else came from reused memory.
                    Assert.True(e == XaEntry.FromValue(1234).Raw || e == 0, $"writer before read {fireAt} of {reads}: returned 0x{e:x}");
                    Assert.False(answered, $"writer before read {fireAt} of {reads}: the unguarded path answered");
                    Assert.True(fireAt <= 5, $"a four-level walk after the directory read makes at most 5 reads, made {reads}");
                }
            Done:;
        }
        finally
        {
            if (hole != 0) munmap(hole, 4096);
        }
        Assert.True(reused > 0, "the destroyed array's leaf was never reused: the test proves nothing");
    }

    [Fact]
    public void ADirectoryLoadThroughAReusedBlockOrLeafReturnsNothingOfTheirs()
    {
        // 512 dense keys: 8 leaves, a directory of 8 entries. Reads: the directory's length and entry, the leaf's slot.
        const ulong Target = 300;
        int reusedBlocks = 0, reusedLeaves = 0;
        var taken = new List<nint>();
        for (int fireAt = 1; fireAt <= 2; fireAt++)
        {
            var xa = New();
            var other = New();
            for (ulong i = 0; i < 512; i++) xa.StoreValue(i, i);
            Assert.Equal(8UL, xa.DirectoryCapacity);
            nint oldBlock = xa._dir;
            XaNode* leaf = LeafOf(xa, Target);
            void BeforeDirectoryRead()
            {
                // Grow the directory (its old block is retired and, after the grace period, pooled), then let another
                // array's first directory take the block back and fill it with leaves full of 0xBAD.
                xa.StoreValue(600, 600);
                Assert.Equal(16UL, xa.DirectoryCapacity);
                xa.Reclaimer.Synchronize();
                for (ulong i = 0; i < 512; i++) other.StoreValue(i, Bad);
                if (other._dir == oldBlock) reusedBlocks++;
            }
            void BeforeSlotRead()
            {
                // Erase the target's leaf (retired), free it, and take its memory back full of 0xBAD.
                for (ulong i = 256; i < 320; i++) xa.Erase(i);
                xa.Reclaimer.Synchronize();
                taken = ReuseNodes(xa, 8, XaEntry.FromValue(Bad).Raw);
                if (taken.Contains((nint)leaf)) reusedLeaves++;
            }
            ulong e;
            int reads;
            bool answered;
            try { e = LoadStepping(xa, Target, fireAt, fireAt == 1 ? BeforeDirectoryRead : BeforeSlotRead, out reads, out answered); }
            finally { GiveBack(xa, taken); }
            Assert.True(reads >= fireAt, $"the writer never ran ({reads} reads)");
            Assert.True(e == XaEntry.FromValue(Target).Raw || e == 0, $"writer before read {fireAt}: returned 0x{e:x}");
            Assert.False(answered, $"writer before read {fireAt}: the final check should have sent the load to a read section");
        }
        Assert.True(reusedBlocks > 0, "the retired directory block was not reused by the other array: the test proves nothing");
        Assert.True(reusedLeaves > 0, "the erased leaf was never reused: the test proves nothing");
    }

    [Fact]
    public void DirectoryBlocksAreReusedOnlyAsDirectoriesOfTheirLengthAndFreedWithTheAllocator()
    {
        var alloc = TestAllocator.Create();
        var xa = new XA(XaFlags.None, alloc);
        for (ulong i = 0; i < 512; i++) xa.StoreValue(i, i);
        nint first = xa._dir;
        xa.StoreValue(600, 600);   // grows to 16 entries: the 8-entry block is retired
        xa.Reclaimer.Synchronize();
        var pool = xa.Nodes.Directories;
        Assert.Equal(1, pool.Pooled);
        Assert.Equal(8UL, XA.DirectoryLength(first));   // still a directory of its length, every entry NoLeaf
        for (ulong k = 0; k < 8; k++) Assert.Equal(XA.NoLeaf, XA.DirectoryEntries(first)[k]);
        nint other = pool.Rent(16);   // another length: not the pooled block
        Assert.NotEqual(first, other);
        Assert.Equal(16UL, XA.DirectoryLength(other));
        for (ulong k = 0; k < 16; k++) XA.DirectoryEntries(other)[k] = XA.NoLeaf;
        pool.Return(other);
        Assert.Equal(2, pool.Pooled);
        var small = new XA(XaFlags.None, alloc);
        small.StoreValue(5, 5);   // one leaf: an 8-entry directory, which takes the pooled block
        Assert.Equal(first, small._dir);
        Is(5UL, small.Load(5).Value);
        Assert.Equal(1, pool.Pooled);
        xa.Dispose();
        xa.Reclaimer.Synchronize();
        Assert.Equal(2, pool.Pooled);
        alloc.Dispose();   // detaches the others and frees what the pool holds
        Assert.Equal(0, pool.Pooled);
    }

    [DllImport("libc")] private static extern nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);
    [DllImport("libc")] private static extern int munmap(nint addr, nuint length);

    [Fact]
    public void RetiringANodeOrDirectoryBlockBumpsTheCountAndInPlaceStoresDoNot()
    {
        var xa = New();
        for (ulong i = 0; i < 128; i++) xa.StoreValue(i, i);
        long seq = Volatile.Read(ref xa._retireSeq);
        for (ulong i = 0; i < 128; i++) xa.StoreValue(i, i + 1);   // in place: nothing retired, loads keep their path
        Assert.Equal(seq, Volatile.Read(ref xa._retireSeq));
        for (ulong i = 0; i < 64; i++) xa.Erase(i);   // the first leaf empties and is retired
        Assert.Equal(seq + 1, Volatile.Read(ref xa._retireSeq));
        ulong before = xa.DirectoryCapacity;
        xa.StoreValue(64 * before, 1);   // beyond the directory: it grows, and its old block is retired
        Assert.True(xa.DirectoryCapacity > before);
        Assert.Equal(seq + 2, Volatile.Read(ref xa._retireSeq));
        Is(65UL, xa.Load(64).Value);
        Assert.False(xa.TryGetValue(5, out _));
    }

    [Fact]
    public void PlainLoadsStayRightWhileLeavesAreRetiredFreedAndReusedUnderThem()
    {
        // Two threads load without read sections while a writer keeps retiring leaves (erasing them whole), lets
        // another array take their memory back, grows the directory, and shrinks xa_node (moving nodes).
        // Every answer must be the key's own value or nothing; anything else came from reused memory.
        const ulong Keys = 64 * 64;
        var xa = New();
        var other = New();
        for (ulong i = 0; i < Keys; i++) xa.StoreValue(i, i * 3 + 1);
        int stop = 0;
        long loads = 0;
        var readers = Enumerable.Range(0, 2).Select(r => new GuardedThread(() =>
        {
            var rnd = new Random(r + 7);
            long mine = 0;
            while (Volatile.Read(ref stop) == 0)
            {
                ulong k = (ulong)rnd.Next((int)Keys + 256);
                var e = xa.Load(k);
                if (!e.IsNull && (!e.IsValue || e.Value != k * 3 + 1)) throw new Exception($"Load({k}) returned {e}");
                if (xa.TryGetValue(k, out ulong v) && v != k * 3 + 1) throw new Exception($"TryGetValue({k}) returned {v}");
                mine++;
            }
            Interlocked.Add(ref loads, mine);
        })).ToList();
        readers.ForEach(t => t.Start());
        var rnd = new Random(3);
        for (int round = 0; round < 6000; round++)
        {
            ulong leaf = (ulong)rnd.Next((int)(Keys / 64)) * 64;
            for (ulong i = leaf; i < leaf + 64; i++) xa.Erase(i);          // the leaf is retired
            if (round % 2 == 0) xa.Reclaimer.Synchronize();                // ... and freed
            for (ulong i = 0; i < 64; i++) other.StoreValue((ulong)round * 64 + i, 0xBAD);   // its memory reused
            for (ulong i = leaf; i < leaf + 64; i++) xa.StoreValue(i, i * 3 + 1);
            if (round % 50 == 0) other.Destroy();
            if (round % 1000 == 0) xa.NodeCache.Shrink();
        }
        xa.StoreValue(Keys * 64, Keys * 64 * 3 + 1);   // the directory grows under the readers
        Volatile.Write(ref stop, 1);
        readers.ForEach(t => t.Join());
        Assert.True(Interlocked.Read(ref loads) > 0);
        for (ulong i = 0; i < Keys; i++) Is(i * 3 + 1, xa.Load(i).Value);
        xa.Validate();
    }
}
