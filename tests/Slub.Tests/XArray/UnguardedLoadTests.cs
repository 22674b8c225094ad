using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Slub.XArray;
using XA = Slub.XArray.XArray;

namespace Slub.Tests.XArray;

/// <summary>
/// The plain load's path without a read section (<c>XArray.TryLoadUnguarded</c>): a writer that retires the
/// nodes or the directory block a load is reading, and lets their memory be reused, right after any one of the
/// load's checks has passed, never makes the load return what the reused memory holds. Each case fails if the
/// check that follows that point is taken out.
/// </summary>
public unsafe class UnguardedLoadTests : XaTest
{
    private const ulong Bad = 0xBAD;

    /// <summary>Runs <see cref="Act"/> once, right after the <see cref="FireAt"/>-th check has been evaluated (so that check passed).</summary>
    private struct SteppingGuard(XA xa, int fireAt, Action act, StrongBox<int> calls) : XaUnrolledWalk.IWalkGuard
    {
        private readonly XA.RetireSeqGuard _inner = new(xa);
        public readonly int FireAt = fireAt;
        public readonly Action Act = act;

        public bool Holds()
        {
            bool holds = _inner.Holds();
            if (++calls.Value == FireAt) Act();
            return holds;
        }
    }

    /// <summary>One load through the unguarded path with a writer after check <paramref name="fireAt"/>; the sectioned load when that path declines (<paramref name="answered"/> false).</summary>
    private static ulong LoadStepping(XA xa, ulong index, int fireAt, Action act, out int checks, out bool answered)
    {
        var calls = new StrongBox<int>();
        answered = xa.TryLoadUnguarded(index, new SteppingGuard(xa, fireAt, act, calls), out ulong found);
        checks = calls.Value;
        return answered ? found : xa.Load(index).Raw;
    }

    private static XaNode* LeafOf(XA xa, ulong index)
    {
        using var section = xa.ReadLock();
        xa.Walk(index, out XaNode* node, out _);
        return node;
    }

    [Fact]
    public void ATreeWalkNeverReturnsWhatAFreedAndReusedNodeHolds()
    {
        // 64 leaves between 2^22 and 2^22 + 4096: too sparse for a directory, four levels, so the load walks the tree
        // and checks after the directory pointer and after each of the four slot reads.
        const ulong Base = 1UL << 22, Target = Base + 1234;
        bool reusedOnce = false;
        for (int fireAt = 1; ; fireAt++)
        {
            var xa = New();
            var bad = New();
            for (ulong i = 0; i < 4096; i++) xa.StoreValue(Base + i, i);
            Assert.Equal(0UL, xa.DirectoryCapacity);
            XaNode* leaf = LeafOf(xa, Target);
            void RetireAndReuse()
            {
                xa.Destroy();                  // every node unlinked and retired
                xa.Reclaimer.Synchronize();    // ... and freed: this load holds no section to wait for
                for (ulong i = 0; i < 4096; i++) bad.StoreValue(Base + i, Bad);   // the same shape takes the freed nodes back
                reusedOnce |= Volatile.Read(ref leaf->Array) == bad.Id;
            }
            ulong e = LoadStepping(xa, Target, fireAt, RetireAndReuse, out int checks, out bool answered);
            if (fireAt > checks) break;   // every point of this walk has been tried
            // A check made after the writer ran must have failed and sent the load to a read section.
            Assert.False(fireAt < checks && answered, $"writer after check {fireAt} of {checks}: the unguarded path answered");
            // Before the destroy the entry was 1234; after it, nothing. Anything else came from bad's nodes.
            Assert.True(e == XaEntry.FromValue(1234).Raw || e == 0, $"the walk, writer after check {fireAt} of {checks}: returned 0x{e:x}");
            Assert.True(fireAt <= 5, $"a four-level walk makes at most 5 checks, made {checks}");
        }
        Assert.True(reusedOnce, "the destroyed array's leaf was never reused by the other array: the test proves nothing");
    }

    [Fact]
    public void ADirectoryLoadNeverReadsAFreedLeafOrDirectoryBlock()
    {
        // 512 dense keys: 8 leaves, a directory of 8 entries. Checks: after the directory pointer, after its entry,
        // after the leaf's slot.
        const ulong Target = 300;
        int reusedLeaves = 0, reusedBlocks = 0;
        // What a freed directory block may hold: pointers to memory that is not mapped. A load that used one would
        // fault and take the test run down with it, which is how this test fails if the check after the directory
        // entry is taken out.
        nint hole = mmap(0, 4096, 0 /* PROT_NONE */, 0x22 /* MAP_PRIVATE | MAP_ANONYMOUS */, -1, 0);
        Assert.NotEqual(-1, hole);
        try
        {
            for (int fireAt = 1; fireAt <= 2; fireAt++)
                for (int attempt = 0; attempt < 3; attempt++)
                {
                    var xa = New();
                    var bad = New();
                    for (ulong i = 0; i < 512; i++) xa.StoreValue(i, i);
                    Assert.Equal(8UL, xa.DirectoryCapacity);
                    nint oldBlock = xa._dir;
                    XaNode* leaf = LeafOf(xa, Target);
                    nint reused = 0;
                    void AfterDirectoryRead()
                    {
                        // Grow the directory (its old block is retired), free the old block, and take its memory back
                        // filled with entries naming a "leaf" in unmapped memory.
                        xa.StoreValue(600, 600);
                        Assert.Equal(16UL, xa.DirectoryCapacity);
                        xa.Reclaimer.Synchronize();
                        reused = (nint)NativeMemory.Alloc(9 * sizeof(ulong));
                        *(ulong*)reused = 8;
                        for (int k = 1; k <= 8; k++) ((ulong*)reused)[k] = XaCodec.MkNode(hole);
                        if (reused == oldBlock) reusedBlocks++;
                    }
                    void AfterLeafRead()
                    {
                        // Erase the target's leaf (retired), free it, and let bad's leaves take its memory back.
                        for (ulong i = 256; i < 320; i++) xa.Erase(i);
                        xa.Reclaimer.Synchronize();
                        for (ulong i = 0; i < 64 * 64; i += 64) bad.StoreValue(i + Target % 64, Bad);
                        if (Volatile.Read(ref leaf->Array) == bad.Id) reusedLeaves++;
                    }
                    try
                    {
                        ulong e = LoadStepping(xa, Target, fireAt, fireAt == 1 ? AfterDirectoryRead : AfterLeafRead, out int checks, out bool answered);
                        Assert.True(checks >= fireAt, $"the writer never ran ({checks} checks)");
                        Assert.False(answered, $"writer after check {fireAt}: the next check should have sent the load to a read section");
                        Assert.True(e == XaEntry.FromValue(Target).Raw || e == 0, $"writer after check {fireAt}: returned 0x{e:x}");
                    }
                    finally
                    {
                        if (reused != 0) NativeMemory.Free((void*)reused);
                    }
                }
        }
        finally
        {
            munmap(hole, 4096);
        }
        Assert.True(reusedLeaves > 0, "the erased leaf was never reused: the test proves nothing");
        Assert.True(reusedBlocks > 0, "the retired directory block was never reused: the test proves nothing");
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
