namespace Slub.Tests.Core;

/// <summary>
/// The default <c>cpu_partial</c> of a cache goes with the per-CPU partial rule in force, as in the kernel: Linux 5.2
/// (the free-object rule, <c>pobjects &gt; cpu_partial</c>) sets 2, 6, 13 or 30 by slot size; Linux 5.16 switched to
/// counting slabs (<c>cpu_partial_slabs</c>) and quadrupled the defaults to 6, 24, 52 or 120 in the same patch series,
/// because a slab limit derived from them assumes half-full slabs. The two never met in a kernel.
/// </summary>
public class CpuPartialDefaultsTests
{
    [Theory]
    // slot size (object size on a non-debug cache without ctor), 5.2 default, 5.16+ default
    [InlineData(64, 30u, 120u)]
    [InlineData(192, 30u, 120u)]
    [InlineData(248, 30u, 120u)]
    [InlineData(256, 13u, 52u)]
    [InlineData(576, 13u, 52u)]
    [InlineData(1016, 13u, 52u)]
    [InlineData(1024, 6u, 24u)]
    [InlineData(2048, 6u, 24u)]
    [InlineData(4096, 2u, 6u)]
    [InlineData(8192, 2u, 6u)]
    public void TheDefaultFollowsTheKernelOfTheRuleInForce(int size, uint objectRule, uint slabRule)
    {
        using var old = TestAllocator.Create();
        var c = old.CreateCache("cpd_old", size, flags: SlabFlags.NoMerge);
        Assert.Equal(size, c.SlabSize);
        Assert.Equal(objectRule, c.CpuPartial);
        Assert.Equal($"{objectRule}\n", old.Sysfs.Read("cpd_old/cpu_partial"));

        using var now = new SlabAllocator(new SlabOptions
        {
            BytesPerNode = 64 << 20, EmulatedNodes = 1, Cpus = 2, SlubDebug = "-", CpuPartialCountsSlabs = true,
        });
        var d = now.CreateCache("cpd_new", size, flags: SlabFlags.NoMerge);
        Assert.Equal(slabRule, d.CpuPartial);
        Assert.Equal($"{slabRule}\n", now.Sysfs.Read("cpd_new/cpu_partial"));
    }

    [Fact]
    public void ADebugCacheHasNoPerCpuPartialSlabsUnderEitherRule()
    {
        using var a = TestAllocator.Create(slubDebug: "F");
        Assert.Equal(0u, a.CreateCache("cpd_dbg", 64, flags: SlabFlags.NoMerge).CpuPartial);
    }

    /// <summary>
    /// Under the 5.2 rule a CPU stops taking full slabs that got one free onto its partial chain once the chain holds
    /// more than <c>cpu_partial</c> free objects: for 64-byte objects (30), about 31 such slabs, not about 121.
    /// </summary>
    [Fact]
    public void UnderTheFreeObjectRuleACpuHoardsAboutCpuPartialSlabsOfOneFreeObject()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var c = a.CreateCache("cpd_hoard", 64, flags: SlabFlags.NoMerge);
        int per = c.ObjectsPerSlab;
        var objs = new List<nint>();
        for (int i = 0; i < 200 * per; i++) objs.Add(c.TryAllocOnCpu(0));   // the CPU-named calls bypass thread magazines
        c.FlushAll();   // every slab full and on no list
        // One free into each full slab: each joins the CPU's partial chain with one free object.
        for (int s = 0; s < 200; s++) c.FreeOnCpu(0, objs[s * per]);
        var st = c.GetStatistics();
        int chain = st.CpuPartial.Sum(p => p.Slabs);
        Assert.InRange(chain, 1, 31);   // Linux 5.2: drained once the chain holds more than 30 free objects
        Assert.Equal(200 - chain, st.Partial);
    }

    /// <summary>
    /// Linux 5.2 keeps, with the chain, the free objects each slab had when it joined (<c>pobjects</c>), and a slab
    /// leaving the chain takes exactly its own share along, however many objects were freed into it meanwhile. Here
    /// B joins with 1 free object and gets 20 more before CPU 1 takes it as its CPU slab: the chain still counts A's
    /// 1, so the 31st full slab to join finds more than 30 and drains the chain first.
    /// </summary>
    [Fact]
    public void ASlabLeavingTheChainTakesTheCountItJoinedWith()
    {
        using var a = TestAllocator.Create(cpus: 2);
        var c = a.CreateCache("cpd_pobjects", 64, flags: SlabFlags.NoMerge);
        Assert.Equal(30u, c.CpuPartial);
        int per = c.ObjectsPerSlab;
        var slabs = new List<List<nint>>();
        for (int s = 0; s < 34; s++)
            slabs.Add(Enumerable.Range(0, per).Select(_ => c.TryAllocOnCpu(0)).ToList());
        c.FlushAll();   // all full, on no list
        c.FreeOnCpu(1, slabs[0][0]);                                 // A joins CPU 1's chain: 1 free
        c.FreeOnCpu(1, slabs[1][0]);                                 // B joins: the chain counts 2
        for (int i = 1; i <= 20; i++) c.FreeOnCpu(0, slabs[1][i]);   // into frozen B: the count stays 2
        nint taken = c.TryAllocOnCpu(1);                             // CPU 1 has no CPU slab: B leaves the chain
        Assert.Contains(taken, slabs[1]);
        for (int s = 2; s < 33; s++) c.FreeOnCpu(1, slabs[s][0]);    // 31 more join with 1 free object each
        // The chain counted 1 + 30 when the 31st came: drained, then it joined alone, with its one free object.
        Assert.Equal("1(1) C1=1(1)\n", a.Sysfs.Read("cpd_pobjects/slabs_cpu_partial"));
    }
}
