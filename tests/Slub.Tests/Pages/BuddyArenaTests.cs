using CsCheck;
using Slub.Pages;

namespace Slub.Tests.Pages;

public class BuddyArenaTests
{
    private sealed class Block : PageBlock;

    [Fact]
    public void RandomAllocFreeKeepsInvariantsAndCoalescesFully()
    {
        // Ops: (allocate?, order, index of a live block to free).
        var ops = Gen.Select(Gen.Bool, Gen.Int[0, 6], Gen.Int[0, 1000]).Array[1, 300];
        ops.Sample(seq =>
        {
            using var pages = new PageAllocator(NumaTopology.Emulated(1, 1), 8L << 20);
            var arena = pages.Arenas[0];
            var live = new List<Block>();
            foreach (var (alloc, order, pick) in seq)
            {
                if (alloc || live.Count == 0)
                {
                    var b = new Block();
                    if (pages.TryAllocate(order, 0, b))
                    {
                        Assert.Equal(0, b.Pfn & ((1 << order) - 1));            // naturally aligned
                        Assert.Same(b, pages.OwnerOf(b.Address + b.Bytes - 1)); // every frame maps to it
                        live.Add(b);
                    }
                }
                else
                {
                    var b = live[pick % live.Count];
                    live.Remove(b);
                    pages.Free(b);
                    Assert.Null(pages.OwnerOf(b.Address));
                }
                arena.CheckConsistency();
            }
            // No two live blocks overlap.
            var sorted = live.OrderBy(b => b.Address).ToList();
            for (int i = 1; i < sorted.Count; i++)
                Assert.True(sorted[i - 1].Address + sorted[i - 1].Bytes <= sorted[i].Address);
            long used = live.Sum(b => 1L << b.Order);
            Assert.Equal(arena.TotalFrames - used, arena.FreeFrames);
            foreach (var b in live) pages.Free(b);
            arena.CheckConsistency();
            var free = arena.FreeBlocksPerOrder();
            Assert.Equal(arena.TotalFrames >> BuddyArena.MaxOrder, free[BuddyArena.MaxOrder]);
            Assert.Equal(0, free.Take(BuddyArena.MaxOrder).Sum());
        }, iter: 60);
    }

    [Fact]
    public unsafe void FreeManyFreesLikeFreeOneByOneAndZeroesTheMemory()
    {
        // Random blocks of mixed orders, a random subset (runs and gaps) freed in one call; the rest one by one.
        var ops = Gen.Select(Gen.Int[0, 3].Array[1, 120], Gen.Bool.Array[120]);
        ops.Sample((orders, pick) =>
        {
            using var pages = new PageAllocator(NumaTopology.Emulated(1, 1), 8L << 20);
            var arena = pages.Arenas[0];
            var live = new List<Block>();
            foreach (int order in orders)
            {
                var b = new Block();
                if (!pages.TryAllocate(order, 0, b)) continue;
                new Span<byte>((void*)b.Address, b.Bytes).Fill(0xA5);
                live.Add(b);
            }
            var batch = live.Where((b, i) => pick[i % pick.Length]).ToArray();
            long freeBefore = arena.FreeFrames;
            pages.FreeMany(batch.Select(b => (PageBlock)b).ToArray());
            Assert.Equal(freeBefore + batch.Sum(b => 1L << b.Order), arena.FreeFrames);
            foreach (var b in batch) Assert.Null(pages.OwnerOf(b.Address));
            arena.CheckConsistency();
            foreach (var b in live.Except(batch)) Assert.Same(b, pages.OwnerOf(b.Address));
            // The freed memory was handed back to the OS (reads as zeros); the live blocks kept their data.
            if (OperatingSystem.IsLinux())
                foreach (var b in batch) Assert.Equal(-1, new Span<byte>((void*)b.Address, b.Bytes).IndexOfAnyExcept((byte)0));
            foreach (var b in live.Except(batch)) Assert.Equal(-1, new Span<byte>((void*)b.Address, b.Bytes).IndexOfAnyExcept((byte)0xA5));
            foreach (var b in live.Except(batch)) pages.Free(b);
            Assert.Equal(arena.TotalFrames, arena.FreeFrames);
            arena.CheckConsistency();
        }, iter: 40);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void FreeManyOfALargeShuffledBatchFreesInFrameOrderAndRejectsAStranger(bool deferred)
    {
        // Batches of 64 or more are freed in frame order, not in the order given (a sorted prefix as given, the
        // rest through a bitmap): the result must be the same as freeing them one by one, and a block that is not
        // allocated must still throw after the others are freed.
        var ops = Gen.Select(Gen.Int[64, 400], Gen.Int[0, 399], Gen.Int);
        ops.Sample((count, strangerAt, seed) =>
        {
            using var pages = new PageAllocator(NumaTopology.Emulated(1, 1), 4L << 20, deferred ? Timeout.InfiniteTimeSpan : TimeSpan.Zero);
            var arena = pages.Arenas[0];
            var live = new List<Block>();
            for (int i = 0; i < 512; i++) { var b = new Block(); Assert.True(pages.TryAllocate(i % 3 == 0 ? 1 : 0, 0, b)); live.Add(b); }
            var rng = new Random(seed);
            var batch = live.OrderBy(_ => rng.Next()).Take(count).ToList();
            // A prefix in frame order (freed as given), then the rest shuffled (the bitmap); sometimes all sorted.
            int sortedPrefix = rng.Next(3) == 0 ? count : rng.Next(count + 1);
            batch = batch.Take(sortedPrefix).OrderBy(b => b.Pfn).Concat(batch.Skip(sortedPrefix)).ToList();
            var stranger = batch[strangerAt % count];
            pages.Free(stranger);   // no longer allocated: the batch frees it a second time
            long freeBefore = arena.FreeFrames, unreportedBefore = arena.UnreportedFrames;
            Assert.Throws<InvalidOperationException>(() => pages.FreeMany(batch.Select(b => (PageBlock)b).ToArray()));
            var good = batch.Where(b => b != stranger).ToList();
            Assert.Equal(freeBefore + good.Sum(b => 1L << b.Order), arena.FreeFrames);
            Assert.Equal(deferred ? unreportedBefore + good.Sum(b => 1L << b.Order) : 0, arena.UnreportedFrames);
            foreach (var b in good) Assert.Null(pages.OwnerOf(b.Address));
            foreach (var b in live.Except(batch)) Assert.Same(b, pages.OwnerOf(b.Address));
            arena.CheckConsistency();
            foreach (var b in live.Except(batch)) pages.Free(b);
            Assert.Equal(arena.TotalFrames, arena.FreeFrames);
            Assert.Equal(1, arena.FreeBlocksPerOrder()[BuddyArena.MaxOrder]);   // every buddy merged back
            arena.CheckConsistency();
        }, iter: 30);
    }

    [Fact]
    public void FreeManyRejectsABlockThatIsNotAllocated()
    {
        using var pages = new PageAllocator(NumaTopology.Emulated(1, 1), 4L << 20);
        var a = new Block();
        var b = new Block();
        Assert.True(pages.TryAllocate(0, 0, a));
        Assert.True(pages.TryAllocate(0, 0, b));
        pages.Free(b);
        Assert.Throws<InvalidOperationException>(() => pages.FreeMany(new PageBlock[] { a, b }));
        Assert.Null(pages.OwnerOf(a.Address));   // the good block before it was freed
        pages.Arenas[0].CheckConsistency();
    }

    [Fact]
    public void ExhaustionIsACleanFailure()
    {
        using var pages = new PageAllocator(NumaTopology.Emulated(1, 1), 4L << 20);
        var blocks = new List<Block>();
        for (int i = 0; i < 1024; i++) { var b = new Block(); Assert.True(pages.TryAllocate(0, 0, b)); blocks.Add(b); }
        Assert.False(pages.TryAllocate(0, 0, new Block()));
        Assert.False(pages.CanAllocate(0));
        pages.Free(blocks[0]);
        Assert.True(pages.CanAllocate(0));
        Assert.False(pages.CanAllocate(1));
    }

    [Fact]
    public void FreeingGivesMemoryBackAndFreshBlocksReadZero()
    {
        using var pages = new PageAllocator(NumaTopology.Emulated(1, 1), 4L << 20);
        var b = new Block();
        Assert.True(pages.TryAllocate(3, 0, b));
        unsafe { new Span<byte>((void*)b.Address, b.Bytes).Fill(0xAB); }
        pages.Free(b);
        var again = new Block();
        Assert.True(pages.TryAllocate(3, 0, again));
        Assert.Equal(b.Address, again.Address);
        unsafe { Assert.True(new Span<byte>((void*)again.Address, again.Bytes).IndexOfAnyExcept((byte)0) < 0); }
    }

    [Fact]
    public void DoubleFreeOfABlockIsRefused()
    {
        using var pages = new PageAllocator(NumaTopology.Emulated(1, 1), 4L << 20);
        var b = new Block();
        Assert.True(pages.TryAllocate(0, 0, b));
        pages.Free(b);
        Assert.Throws<InvalidOperationException>(() => pages.Free(b));
        pages.Arenas[0].CheckConsistency();
    }

    [Fact]
    public void EmulatedNodesAreSeparateArenas()
    {
        using var pages = new PageAllocator(NumaTopology.Emulated(3, 6), 4L << 20);
        for (int n = 0; n < 3; n++)
        {
            var b = new Block();
            Assert.True(pages.TryAllocate(0, n, b, exactNode: true));
            Assert.Equal(n, b.Node);
            Assert.Equal(n, pages.NodeOf(b.Address));
        }
        Assert.Equal(2, pages.Topology.NodeOfCpu(5));
        Assert.Contains("Node 2, zone   Normal", pages.FormatBuddyInfo());
    }
}
