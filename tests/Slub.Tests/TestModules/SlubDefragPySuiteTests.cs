using System.Text;

namespace Slub.Tests.TestModules;

/// <summary>Test-module cases start processes; run them one at a time (the machine has two cores).</summary>
[CollectionDefinition("test-module processes", DisableParallelization = true)]
public sealed class TestModuleProcessCollection;

/// <summary>
/// The series' Python suite, tools/testing/slab/slub_defrag.py (patch 08/15), case by case, against
/// <c>slub test-module smo</c> in its own process: the module is loaded (process started), driven only by
/// writing <c>smo/callfn</c> and reading/writing <c>smo_test/*</c> on the live endpoint, and unloaded (process
/// stopped). Each method name starts with the Python function it mirrors. The module runs under its default
/// slub_debug=FZPU, the mode the suite's expected numbers need.
/// </summary>
[Collection("test-module processes")]
public sealed class SlubDefragPySuiteTests
{
    // ---------------------------------------------------------------- the suite's helpers, as in the script

    /// <summary>verify_state: compares the five figures; each mismatch sets -1..-5 in field order, the last one wins. 0 = all match.</summary>
    private static int VerifyState(ModuleProcess m, long nrObjectsActive, long nrObjectsTotal, long nrSlabsPartial,
        long nrSlabsFull, long nrSlabsTotal, string msg, out string report)
    {
        long gotActive = m.SysfsValue("objects");
        long gotTotal = m.SysfsValue("total_objects");
        long gotPartial = m.SysfsValue("partial");
        long gotFull = m.SysfsValue("slabs") - m.SysfsValue("partial");   // get_nr_slabs_full
        long gotSlabs = m.SysfsValue("slabs");
        int err = 0;
        if (gotActive != nrObjectsActive) err = -1;
        if (gotTotal != nrObjectsTotal) err = -2;
        if (gotPartial != nrSlabsPartial) err = -3;
        if (gotFull != nrSlabsFull) err = -4;
        if (gotSlabs != nrSlabsTotal) err = -5;
        var sb = new StringBuilder();
        sb.AppendLine($"Verify state: {msg}");
        sb.AppendLine("  what\t\t\twant\tgot");
        sb.AppendLine($"  nr_objects_active\t{nrObjectsActive}\t{gotActive}");
        sb.AppendLine($"  nr_objects_total\t{nrObjectsTotal}\t{gotTotal}");
        sb.AppendLine($"  nr_slabs_partial\t{nrSlabsPartial}\t{gotPartial}");
        sb.AppendLine($"  nr_slabs_full\t\t{nrSlabsFull}\t{gotFull}");
        sb.AppendLine($"  nr_slabs_total\t{nrSlabsTotal}\t{gotSlabs}");
        report = sb.ToString();
        return err;
    }

    private static void AssertState(ModuleProcess m, long active, long total, long partial, long full, long slabs, string msg, string failure)
    {
        int err = VerifyState(m, active, total, partial, full, slabs, msg, out string report);
        Assert.True(err == 0, $"{failure} (verify_state {err})\n{report}\nmodule stderr:\n{m.Stderr}");
    }

    /// <summary>exec_via_sysfs: the echo must succeed. (The script ignores the result for alloc and free; ours fails, which can only be stricter.)</summary>
    private static void Exec(ModuleProcess m, string command)
    {
        var reply = m.Callfn(command);
        Assert.True(reply.Ok, $"Failed to echo command to sysfs: {command}: {reply}\nmodule stderr:\n{m.Stderr}");
    }

    private static void Alloc(ModuleProcess m, long n) => Exec(m, $"alloc {n}");

    private static void Free(ModuleProcess m, long n, long pos = 0) => Exec(m, $"free {n} {pos}");

    /// <summary>shrink: what <c>slabinfo smo_test -s</c> does, a write of 1 to smo_test/shrink.</summary>
    private static void Shrink(ModuleProcess m)
    {
        var reply = m.Client.Write("smo_test/shrink", "1\n");
        Assert.True(reply.Ok, $"Failed to execute slabinfo -s: {reply}");
    }

    /// <summary>get_slab_config: objs_per_slab, which must not be negative ("get slab config details").</summary>
    private static long GetSlabConfig(ModuleProcess m)
    {
        long ops = m.SysfsValue("objs_per_slab");
        Assert.False(ops < 0, "FAIL: test failed: 'get slab config details'");
        return ops;
    }

    private static void SanityChecks(ModuleProcess m) =>
        AssertState(m, 0, 0, 0, 0, 0, "sanity check", "FAIL: test failed: 'sanity checks'");

    private static void TestNonMovable(ModuleProcess m, long objectsPerSlab)
    {
        long oneOver = objectsPerSlab + 1;
        Alloc(m, oneOver);
        AssertState(m, oneOver, objectsPerSlab * 2, 1, 1, 2, "non-movable: initial allocation",
            "test_non_movable: failed to verify initial state");

        // Free the object in the first slot of the first slab.
        Free(m, 1);
        AssertState(m, oneOver - 1, objectsPerSlab * 2, 2, 0, 2, "non-movable: after free",
            "test_non_movable: failed to verify after free");

        // Non-movable cache: shrink has no effect.
        Shrink(m);
        AssertState(m, oneOver - 1, objectsPerSlab * 2, 2, 0, 2, "non-movable: after shrink",
            "test_non_movable: failed to verify after shrink");

        // Cleanup (not checked by the script).
        Free(m, objectsPerSlab);
        Shrink(m);
    }

    private static void EnableMovableObjects(ModuleProcess m)
    {
        var reply = m.Callfn("enable");
        Assert.True(reply.Ok, $"FAIL: test failed: 'enable movable objects': {reply}");
    }

    private static void TestMovable(ModuleProcess m, long objectsPerSlab)
    {
        long oneOver = objectsPerSlab + 1;
        Alloc(m, oneOver);
        AssertState(m, oneOver, objectsPerSlab * 2, 1, 1, 2, "movable: initial allocation",
            "test_movable: failed to verify initial state");

        Free(m, 1);
        AssertState(m, oneOver - 1, objectsPerSlab * 2, 2, 0, 2, "movable: after free",
            "test_movable: failed to verify after free");

        // Movable cache: shrink moves the objects and frees a slab.
        Shrink(m);
        AssertState(m, oneOver - 1, objectsPerSlab, 0, 1, 1, "movable: after shrink",
            "test_movable: failed to verify after shrink");

        // Cleanup (not checked by the script).
        Free(m, objectsPerSlab);
        Shrink(m);
    }

    // ---------------------------------------------------------------- the cases

    /// <summary>
    /// run_module_stress_test: load, write <c>test</c>, unload. The script asserts nothing (results only in
    /// dmesg); our module fails the write when one of its checks fails, so here the write must succeed and the
    /// log must end the run with the module's success line.
    /// </summary>
    [Fact]
    public void RunModuleStressTest_WriteTestThenUnload()
    {
        using var m = ModuleProcess.Start();
        var reply = m.Callfn("test");
        Assert.True(reply.Ok, $"{reply}\n{m.Stderr}");
        var log = m.LogLines();
        Assert.Contains("smo: test using nr_objs: 1000 keep: 10", log);
        Assert.Equal("smo: Module tests completed successfully", log[^1]);
        Assert.Equal(0, m.Unload());
    }

    /// <summary>load_module + get_slab_config: the module loads and objs_per_slab is not negative.</summary>
    [Fact]
    public void LoadModule_GetSlabConfig()
    {
        using var m = ModuleProcess.Start();
        Assert.True(GetSlabConfig(m) > 0);
        Assert.Equal(0, m.Unload());
    }

    /// <summary>sanity_checks: a freshly loaded module's cache is empty: (0, 0, 0, 0, 0).</summary>
    [Fact]
    public void SanityChecks_FreshCacheIsEmpty()
    {
        using var m = ModuleProcess.Start();
        GetSlabConfig(m);
        SanityChecks(m);
        Assert.Equal(0, m.Unload());
    }

    /// <summary>test_non_movable: before <c>enable</c>, ops+1 objects make 1 full + 1 partial slab; freeing the first gives 2 partial; shrink changes nothing.</summary>
    [Fact]
    public void TestNonMovable_PartialSlabsAreNotShrinkable()
    {
        using var m = ModuleProcess.Start();
        long ops = GetSlabConfig(m);
        SanityChecks(m);
        TestNonMovable(m, ops);
        Assert.Equal(0, m.Unload());
    }

    /// <summary>enable_movable_objects: the echo of <c>enable</c> succeeds.</summary>
    [Fact]
    public void EnableMovableObjects_EchoSucceeds()
    {
        using var m = ModuleProcess.Start();
        EnableMovableObjects(m);
        Assert.Contains("smo: kmem_cache smo_test defrag enabled", m.LogLines());
        Assert.Contains("migrate : ", m.Client.Read("smo_test/ops"));
        Assert.Equal(0, m.Unload());
    }

    /// <summary>test_movable: after <c>enable</c>, the same two partial slabs shrink to one full slab: (ops, ops, 0, 1, 1).</summary>
    [Fact]
    public void TestMovable_PartialSlabsAreShrinkable()
    {
        using var m = ModuleProcess.Start();
        long ops = GetSlabConfig(m);
        SanityChecks(m);      // the state test_non_movable's clean-up leaves in the script
        EnableMovableObjects(m);
        TestMovable(m, ops);
        Assert.Equal(0, m.Unload());
    }

    /// <summary>
    /// main: the whole script in its order: the stress test in a module of its own, then load, config,
    /// sanity, non-movable, enable, movable and cleanup_and_exit, all against one module instance.
    /// </summary>
    [Fact]
    public void Main_WholeSuiteInScriptOrder()
    {
        using (var stress = ModuleProcess.Start())
        {
            Assert.True(stress.Callfn("test").Ok, stress.Stderr);
            Assert.Equal(0, stress.Unload());
        }
        using var m = ModuleProcess.Start();
        long ops = GetSlabConfig(m);
        SanityChecks(m);
        TestNonMovable(m, ops);
        EnableMovableObjects(m);
        TestMovable(m, ops);
        // cleanup_and_exit(0): unload; the module frees what is left and destroys the cache.
        Assert.Equal(0, m.Unload());
        Assert.Contains("smo: Test module removed", m.Stderr);
        Assert.False(File.Exists(m.SocketPath));
    }
}
