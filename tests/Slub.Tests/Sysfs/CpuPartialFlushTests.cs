using Slub.Sysfs;

namespace Slub.Tests.Sysfs;

/// <summary>
/// A write of <c>cpu_partial</c> flushes every CPU, as the kernel's <c>cpu_partial_store</c> does with
/// <c>flush_all(s)</c> after setting the value: CPU slabs and per-CPU partial chains go back to the node lists, so
/// <c>slabs_cpu_partial</c> reads <c>0(0)</c> and <c>cpu_slabs</c> 0 right after it, with the object counts unchanged.
/// </summary>
public class CpuPartialFlushTests
{
    /// <summary>
    /// CPU 0 allocates <paramref name="slabs"/> full slabs (it keeps the last as its CPU slab); CPU 1 frees one object of
    /// each of the others, which puts each of them on CPU 1's partial chain (a full slab's first free, <c>put_cpu_partial</c>).
    /// Returns the objects still allocated.
    /// </summary>
    private static List<nint> FillCpuPartials(KmemCache c, int slabs)
    {
        var objs = new List<nint>();
        for (int i = 0; i < slabs * c.ObjectsPerSlab; i++) objs.Add(c.TryAllocOnCpu(0));
        Assert.DoesNotContain((nint)0, objs);
        var live = new List<nint>();
        for (int i = 0; i < objs.Count; i++)
        {
            // One free into each slab but the last (CPU 0's current slab): slot 0 of each run of objs_per_slab.
            if (i % c.ObjectsPerSlab == 0 && i < (slabs - 1) * c.ObjectsPerSlab) c.FreeOnCpu(1, objs[i]);
            else live.Add(objs[i]);
        }
        return live;
    }

    [Theory]
    [InlineData("120")]
    [InlineData("30\n")]    // the value it already has (Linux 5.2's default for 64-byte slots): the kernel flushes all the same
    [InlineData("0")]
    [InlineData("4294967295")]
    public void AWriteFlushesEveryCpusSlabAndPartialChain(string value)
    {
        using var a = TestAllocator.Create(cpus: 2);
        var c = a.CreateCache("cpflush", 64, flags: SlabFlags.NoMerge);
        Assert.Equal(30u, c.CpuPartial);
        var live = FillCpuPartials(c, slabs: 6);
        int perSlab = c.ObjectsPerSlab;
        // Before: CPU 1 holds 5 partial slabs that joined with one free object each (Linux 5.2's text, the rule in
        // force), CPU 0 its CPU slab.
        Assert.Equal("5(5) C1=5(5)\n", a.Sysfs.Read("cpflush/slabs_cpu_partial"));
        Assert.Equal("6 N0=6\n", a.Sysfs.Read("cpflush/cpu_slabs"));
        Assert.Equal("0\n", a.Sysfs.Read("cpflush/partial"));
        long flushesBefore = c.Events.CpuSlabFlush;

        a.Sysfs.Write("cpflush/cpu_partial", value);

        Assert.Equal(uint.Parse(value.TrimEnd('\n')), c.CpuPartial);
        Assert.Equal("0(0)\n", a.Sysfs.Read("cpflush/slabs_cpu_partial"));
        Assert.Equal("0\n", a.Sysfs.Read("cpflush/cpu_slabs"));
        Assert.Equal(flushesBefore + 1, c.Events.CpuSlabFlush);   // CPU 0's slab, flush_slab's count
        // The five slabs with a free slot are on the node's partial list; CPU 0's full slab is on no list.
        Assert.Equal("5 N0=5\n", a.Sysfs.Read("cpflush/partial"));
        Assert.Equal($"{live.Count} N0={live.Count}\n", a.Sysfs.Read("cpflush/objects"));
        Assert.Equal($"{5 * (perSlab - 1)} N0={5 * (perSlab - 1)}\n", a.Sysfs.Read("cpflush/objects_partial"));
        Assert.Equal("6 N0=6\n", a.Sysfs.Read("cpflush/slabs"));
        var (slabs, free, _, problem) = c.RecountPartial(0);
        Assert.Null(problem);
        Assert.Equal(5, slabs);
        Assert.Equal(5, free);
        Assert.Empty(c.Validate());
        foreach (var p in live) c.Free(p);
        c.Shrink();
        Assert.Equal(0, c.CountObjects());
    }

    [Fact]
    public void AWriteReturnsMagazineObjectsToTheirSlabs()
    {
        using var a = TestAllocator.Create(cpus: 2);
        var c = a.CreateCache("cpflush_mag", 64, flags: SlabFlags.NoMerge);
        var objs = Enumerable.Range(0, 10 * c.ObjectsPerSlab).Select(_ => c.Alloc()).ToList();
        for (int i = 0; i < objs.Count; i += 2) c.Free(objs[i]);   // some of these stay parked in this thread's magazine
        a.Sysfs.Write("cpflush_mag/cpu_partial", "30");
        // flush_all's sheaf counterpart: after the write nothing is parked, so objects is the live count exactly.
        Assert.Equal(0, c.MagazineObjects());
        Assert.Equal(objs.Count / 2, c.CountObjects());
        Assert.Equal("0(0)\n", a.Sysfs.Read("cpflush_mag/slabs_cpu_partial"));
        Assert.Equal("0\n", a.Sysfs.Read("cpflush_mag/cpu_slabs"));
        Assert.Empty(c.Validate());
    }

    [Theory]
    [InlineData("x", Errno.EINVAL)]
    [InlineData("4294967296", Errno.ERANGE)]
    public void ARefusedWriteFlushesNothing(string value, Errno errno)
    {
        using var a = TestAllocator.Create(cpus: 2);
        var c = a.CreateCache("cpflush_bad", 64, flags: SlabFlags.NoMerge);
        FillCpuPartials(c, slabs: 4);
        string before = a.Sysfs.Read("cpflush_bad/slabs_cpu_partial");
        Assert.Equal("3", before[(before.IndexOf('(') + 1)..before.IndexOf(')')]);
        var e = Assert.Throws<SysfsException>(() => a.Sysfs.Write("cpflush_bad/cpu_partial", value));
        Assert.Equal(errno, e.Errno);
        Assert.Equal(before, a.Sysfs.Read("cpflush_bad/slabs_cpu_partial"));   // the kernel returns before flush_all
        Assert.Equal("4 N0=4\n", a.Sysfs.Read("cpflush_bad/cpu_slabs"));
        Assert.Equal(30u, c.CpuPartial);
    }

    [Fact]
    public void AWriteAfterDisposeThrowsAndChangesNothing()
    {
        var a = TestAllocator.Create(cpus: 2);
        var c = a.CreateCache("cpflush_gone", 64, flags: SlabFlags.NoMerge);
        a.Dispose();
        var e = Assert.Throws<ObjectDisposedException>(() => a.Sysfs.Write("cpflush_gone/cpu_partial", "7"));
        Assert.Contains("cpflush_gone", e.Message);
        Assert.Equal(30u, c.CpuPartial);
    }

    /// <summary>
    /// Workers allocate and free tagged objects, on named CPUs and through their magazines, while another thread keeps
    /// writing cpu_partial (each write a flush of every CPU). No object may be handed out twice or lose its tag, and
    /// after the last write the counts are exact and validate is clean.
    /// </summary>
    [Fact]
    public void WritesDuringConcurrentAllocationKeepObjectsAndCountsExact()
    {
        const int workers = 2, cpus = 2;
        using var a = TestAllocator.Create(cpus: cpus);
        var c = a.CreateCache("cpflush_race", 64, flags: SlabFlags.NoMerge);
        string[] values = ["0", "30", "5", "120", "1000"];
        var lives = new List<nint>[workers];
        int bad = 0;
        using (var writer = new BackgroundLoop(round =>
               {
                   a.Sysfs.Write("cpflush_race/cpu_partial", values[round % values.Length]);
                   string read = a.Sysfs.Read("cpflush_race/slabs_cpu_partial");   // walks the chains under each CPU's lock
                   if (!read.EndsWith('\n')) Interlocked.Increment(ref bad);
               }))
        {
            writer.Started.Wait();
            Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
            {
                var rng = new Random(17 + w);
                var live = new List<nint>();
                lives[w] = live;
                for (int op = 0; op < 60_000 || writer.Rounds < 200; op++)
                {
                    bool named = (op & 1) == 0;
                    if (live.Count < 300 || (live.Count < 3000 && rng.Next(2) == 0))
                    {
                        nint p = named ? c.TryAllocOnCpu(rng.Next(cpus)) : c.Alloc();
                        if (p == 0) { Interlocked.Increment(ref bad); continue; }
                        unsafe { *(long*)p = p ^ (w + 1); }
                        live.Add(p);
                    }
                    else
                    {
                        int k = rng.Next(live.Count);
                        nint p = live[k];
                        unsafe { if (*(long*)p != (p ^ (w + 1))) Interlocked.Increment(ref bad); }
                        live[k] = live[^1];
                        live.RemoveAt(live.Count - 1);
                        if (named) c.FreeOnCpu(rng.Next(cpus), p); else c.Free(p);
                    }
                }
            });
        }
        Assert.Equal(0, bad);
        var all = lives.SelectMany(l => l).ToList();
        Assert.Equal(all.Count, all.Distinct().Count());   // nothing handed out twice
        for (int w = 0; w < workers; w++)
            foreach (var p in lives[w])
                unsafe { Assert.Equal(p ^ (w + 1), *(long*)p); }
        // One more write: it is the flush, so what it leaves must be exact without any other call.
        a.Sysfs.Write("cpflush_race/cpu_partial", "30");
        Assert.Equal("0(0)\n", a.Sysfs.Read("cpflush_race/slabs_cpu_partial"));
        Assert.Equal("0\n", a.Sysfs.Read("cpflush_race/cpu_slabs"));
        Assert.Equal(all.Count, c.CountObjects());
        var (_, free, capacity, problem) = c.RecountPartial(0);
        Assert.Null(problem);
        var st = c.GetStatistics();
        Assert.Equal(capacity - free, st.ObjectsPartial);
        Assert.Equal(st.TotalObjects - free, st.Objects);
        Assert.Empty(c.Validate());
        foreach (var p in all) c.Free(p);
        c.Shrink();
        Assert.Equal(0, c.CountObjects());
    }
}
