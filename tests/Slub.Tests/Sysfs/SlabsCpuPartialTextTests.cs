namespace Slub.Tests.Sysfs;

/// <summary>
/// <c>slabs_cpu_partial</c> prints the text of the kernel whose per-CPU partial rule is in force. Linux 5.2 (the
/// free-object rule, <see cref="SlabOptions.CpuPartialCountsSlabs"/> off) prints the free objects the slabs had when
/// they joined the chain (<c>pobjects</c>) and the slab count (<c>pages</c>); 5.16+/6.x (the slab-count rule) prints
/// the slab count with objects approximated as slabs · objs_per_slab / 2. Both list only CPUs that hold a chain.
/// </summary>
public class SlabsCpuPartialTextTests
{
    private static SlabAllocator Create(bool countsSlabs) => new(new SlabOptions
    {
        BytesPerNode = 64 << 20,
        EmulatedNodes = 1,
        Cpus = 3,
        SlubDebug = "-",
        CpuPartialCountsSlabs = countsSlabs,
    });

    /// <summary>
    /// Six full slabs allocated on CPU 0 and flushed; CPU 1 frees one object of slabs 0–2 and CPU 2 one of slabs 3–4,
    /// so each joins that CPU's chain with one free object; then CPU 0 frees ten more objects into slab 0, which is
    /// frozen on CPU 1's chain and so keeps the count it joined with. CPU 0 holds no chain.
    /// </summary>
    private static (KmemCache Cache, List<List<nint>> Slabs) Setup(SlabAllocator a, string name)
    {
        var c = a.CreateCache(name, 64, flags: SlabFlags.NoMerge);
        int per = c.ObjectsPerSlab;
        var slabs = new List<List<nint>>();
        for (int s = 0; s < 6; s++) slabs.Add(Enumerable.Range(0, per).Select(_ => c.TryAllocOnCpu(0)).ToList());
        Assert.DoesNotContain(slabs.SelectMany(s => s), p => p == 0);
        c.FlushAll();
        for (int s = 0; s < 3; s++) c.FreeOnCpu(1, slabs[s][0]);
        for (int s = 3; s < 5; s++) c.FreeOnCpu(2, slabs[s][0]);
        for (int i = 1; i <= 10; i++) c.FreeOnCpu(0, slabs[0][i]);
        return (c, slabs);
    }

    [Fact]
    public void UnderTheFreeObjectRuleItPrintsLinux52sObjectsFreeAtJoinTime()
    {
        using var a = Create(countsSlabs: false);
        var (c, _) = Setup(a, "scp_52");
        Assert.Equal(30u, c.CpuPartial);
        // 5.2: pobjects = 1 per slab as it joined (not 1 + 10 for slab 0, not slabs * objs_per_slab / 2).
        Assert.Equal("5(5) C1=3(3) C2=2(2)\n", a.Sysfs.Read("scp_52/slabs_cpu_partial"));
    }

    [Fact]
    public void UnderTheSlabCountRuleItPrintsThe6xApproximation()
    {
        using var a = Create(countsSlabs: true);
        var (c, _) = Setup(a, "scp_6x");
        int per = c.ObjectsPerSlab;
        Assert.True(c.CpuPartialSlabs > 3);   // no chain was drained on the way
        Assert.Equal($"{5 * per / 2}(5) C1={3 * per / 2}(3) C2={2 * per / 2}(2)\n", a.Sysfs.Read("scp_6x/slabs_cpu_partial"));
    }

    /// <summary>A slab taken off the chain takes its join-time count with it, under 5.2's text as in its limit.</summary>
    [Fact]
    public void UnderTheFreeObjectRuleASlabLeavingTheChainTakesItsCountAlong()
    {
        using var a = Create(countsSlabs: false);
        var (c, slabs) = Setup(a, "scp_52_take");
        nint taken = c.TryAllocOnCpu(2);   // CPU 2 has no CPU slab: the head of its chain (slab 4) becomes it
        Assert.Contains(taken, slabs[4]);
        Assert.Equal("4(4) C1=3(3) C2=1(1)\n", a.Sysfs.Read("scp_52_take/slabs_cpu_partial"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void WithNoChainBothPrintZero(bool countsSlabs)
    {
        using var a = Create(countsSlabs);
        var c = a.CreateCache("scp_none", 64, flags: SlabFlags.NoMerge);
        nint p = c.TryAllocOnCpu(0);
        Assert.NotEqual(0, p);
        Assert.Equal("0(0)\n", a.Sysfs.Read("scp_none/slabs_cpu_partial"));
    }
}
