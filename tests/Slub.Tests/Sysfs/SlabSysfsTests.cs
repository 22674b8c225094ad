using System.Net.Sockets;
using System.Text;
using Slub.Sysfs;

namespace Slub.Tests.Sysfs;

public class SlabSysfsTests
{
    [Fact]
    public void PerNodeFiguresUseTheKernelFormat()
    {
        using var a = TestAllocator.Create(nodes: 2, cpus: 2);
        var c = a.CreateCache("fmt", 100, flags: SlabFlags.NoMerge);
        for (int i = 0; i < 30; i++) c.AllocNode(1);
        c.FlushAll();
        Assert.Equal("30 N1=30\n", a.Sysfs.Read("fmt/objects"));
        Assert.Equal("1 N1=1\n", a.Sysfs.Read("fmt/slabs"));
        Assert.Equal("1 N1=1\n", a.Sysfs.Read("fmt/partial"));
        Assert.Equal("0\n", a.Sysfs.Read("fmt/cpu_slabs"));
        Assert.Equal($"{c.ObjectsPerSlab} N1={c.ObjectsPerSlab}\n", a.Sysfs.Read("fmt/total_objects"));
        Assert.Equal("104\n", a.Sysfs.Read("fmt/slab_size"));
        Assert.Equal("100\n", a.Sysfs.Read("fmt/object_size"));
        Assert.Equal("30\n", a.Sysfs.Read("fmt/defrag_used_ratio"));
        Assert.Equal("100\n", a.Sysfs.Read("fmt/remote_node_defrag_ratio"));
        Assert.Equal("0(0)\n", a.Sysfs.Read("fmt/slabs_cpu_partial"));
        Assert.Equal("", a.Sysfs.Read("fmt/ops"));
        Assert.Equal("", a.Sysfs.Read("fmt/shrink"));
    }

    [Fact]
    public void OpsListsCtorIsolateAndMigrate()
    {
        using var a = TestAllocator.Create();
        var c = a.CreateCache("opsc", 64, ctor: CtorForTest);
        Assert.Matches(@"^ctor : SlabSysfsTests\.CtorForTest\+0x0/0x[0-9a-f]+ \[Slub\.Tests\]\n$", a.Sysfs.Read("opsc/ops"));
        c.SetupMobility(null, (_, _, _, _, _) => { });
        string ops = a.Sysfs.Read("opsc/ops");
        Assert.Contains("\nmigrate : ", ops);
        Assert.DoesNotContain("isolate :", ops);
    }

    private static void CtorForTest(nint p) { }

    [Theory]
    [InlineData("badw/defrag_used_ratio", "101", Errno.EINVAL)]
    [InlineData("badw/defrag_used_ratio", "abc", Errno.EINVAL)]
    [InlineData("badw/defrag_used_ratio", "-1", Errno.EINVAL)]
    [InlineData("badw/remote_node_defrag_ratio", "101", Errno.ERANGE)]
    [InlineData("badw/shrink", "0", Errno.EINVAL)]
    [InlineData("badw/validate", "1", Errno.EINVAL)]   // not a debug cache
    [InlineData("badw/objects", "1", Errno.EIO)]        // read-only
    [InlineData("badw/no_such_file", "1", Errno.ENOENT)]
    [InlineData("nosuchcache/shrink", "1", Errno.ENOENT)]
    [InlineData("badw/cpu_partial", "x", Errno.EINVAL)]
    // kstrtoul/kstrtouint: no blanks around the number, at most one trailing newline, overflow is ERANGE.
    [InlineData("badw/min_partial", " 7", Errno.EINVAL)]
    [InlineData("badw/min_partial", "7 ", Errno.EINVAL)]
    [InlineData("badw/min_partial", "7\n\n", Errno.EINVAL)]
    [InlineData("badw/min_partial", "\t7", Errno.EINVAL)]
    [InlineData("badw/defrag_used_ratio", "99999999999999999999", Errno.ERANGE)]
    [InlineData("badw/cpu_partial", "4294967296", Errno.ERANGE)]
    [InlineData("badw/cpu_partial", "4294967296x", Errno.EINVAL)]
    public void BadWritesGiveTheKernelsErrorAndChangeNothing(string path, string value, Errno errno)
    {
        using var a = TestAllocator.Create();
        var c = a.CreateCache("badw", 64, flags: SlabFlags.NoMerge);
        string before = string.Join("|", SlabAttribute.All.Where(x => x.Readable && x.Name is not ("slab_occupancy" or "alloc_calls" or "free_calls")).Select(x => x.Show!(c)));
        var e = Assert.Throws<SysfsException>(() => a.Sysfs.Write(path, value));
        Assert.Equal(errno, e.Errno);
        Assert.Contains(path, e.Message);
        string after = string.Join("|", SlabAttribute.All.Where(x => x.Readable && x.Name is not ("slab_occupancy" or "alloc_calls" or "free_calls")).Select(x => x.Show!(c)));
        Assert.Equal(before, after);
    }

    [Fact]
    public void GoodWritesTakeEffect()
    {
        using var a = TestAllocator.Create(slubDebug: "F,dbgc");
        var c = a.CreateCache("goodw", 64, flags: SlabFlags.NoMerge);
        a.Sysfs.Write("goodw/defrag_used_ratio", "45\n");
        Assert.Equal(45, c.DefragUsedRatio);
        a.Sysfs.Write("goodw/defrag_used_ratio", "+46");   // kstrtoul takes a leading '+'
        Assert.Equal(46, c.DefragUsedRatio);
        a.Sysfs.Write("goodw/remote_node_defrag_ratio", "20");
        Assert.Equal("20\n", a.Sysfs.Read("goodw/remote_node_defrag_ratio"));
        a.Sysfs.Write("goodw/min_partial", "100");
        Assert.Equal("10\n", a.Sysfs.Read("goodw/min_partial"));   // clamped to MAX_PARTIAL
        var objs = Enumerable.Range(0, 500).Select(_ => c.Alloc()).ToList();
        foreach (var p in objs) c.Free(p);
        a.Sysfs.Write("goodw/shrink", "1");
        Assert.Equal("0\n", a.Sysfs.Read("goodw/slabs"));
        var d = a.CreateCache("dbgc", 64);
        a.Sysfs.Write("dbgc/validate", "1");
        Assert.Equal("1\n", a.Sysfs.Read("dbgc/sanity_checks"));
    }

    /// <summary>
    /// cpu_partial_store parses with kstrtouint: every unsigned int is accepted and stored as written (cpu_partial_show
    /// prints it with %u). Values above int.MaxValue used to be refused with EINVAL.
    /// </summary>
    [Theory]
    [InlineData("2147483648")]
    [InlineData("4294967295")]
    [InlineData("4294967295\n")]
    [InlineData("+3000000000")]
    public void CpuPartialTakesTheWholeUnsignedIntRange(string value)
    {
        using var a = TestAllocator.Create();
        var c = a.CreateCache("cpuparts", 64, flags: SlabFlags.NoMerge);
        a.Sysfs.Write("cpuparts/cpu_partial", value);
        uint expected = uint.Parse(value.TrimStart('+').TrimEnd('\n'));
        Assert.Equal(expected, c.CpuPartial);
        Assert.Equal(expected + "\n", a.Sysfs.Read("cpuparts/cpu_partial"));
        // The slab limit is the kernel's ceil(2 × cpu_partial / objs_per_slab), computed without the kernel's
        // 32-bit wrap (which would make it tiny for these values) and capped at int.MaxValue.
        long slabs = Math.Min((2L * expected + c.ObjectsPerSlab - 1) / c.ObjectsPerSlab, int.MaxValue);
        Assert.Equal(slabs, c.CpuPartialSlabs);
        // The cache still works with a practically unlimited per-CPU partial chain.
        var objs = Enumerable.Range(0, 20 * c.ObjectsPerSlab).Select(_ => c.Alloc()).ToList();
        for (int i = 0; i < objs.Count; i += 2) c.Free(objs[i]);
        Assert.Empty(c.Validate());
        for (int i = 1; i < objs.Count; i += 2) c.Free(objs[i]);
        c.Shrink();
        Assert.Equal(0, c.GetStatistics().Objects);
        Assert.Empty(c.Validate());
        a.Sysfs.Write("cpuparts/cpu_partial", "0");
        Assert.Equal(0u, c.CpuPartial);
    }

    [Fact]
    public void MergeableCachesLiveUnderAUniqueIdWithAliasLinks()
    {
        using var a = TestAllocator.Create();
        a.CreateCache("first_name", 200);
        a.CreateCache("second_name", 200);
        a.CreateCache("rec", 300, flags: SlabFlags.ReclaimAccount);
        var entries = a.Sysfs.Entries();
        Assert.Contains(entries, e => !e.IsLink && e.Name == ":0000200");
        Assert.Contains(entries, e => e.IsLink && e.Name == "first_name" && e.Target == ":0000200");
        Assert.Contains(entries, e => e.IsLink && e.Name == "second_name" && e.Target == ":0000200");
        Assert.Contains(entries, e => !e.IsLink && e.Name == ":a-0000304");
        Assert.Contains(entries, e => !e.IsLink && e.Name == "kmalloc-64");   // kmalloc caches never merge
        Assert.Equal("1\n", a.Sysfs.Read(":0000200/aliases"));
        Assert.Equal("1\n", a.Sysfs.Read("second_name/aliases"));
    }

    [Fact]
    public void ExportWritesTheSameLayoutAsSysfs()
    {
        using var a = TestAllocator.Create();
        var c = a.CreateCache("exported", 64, flags: SlabFlags.NoMerge);
        c.Alloc();
        a.CreateCache("alias_me", 200);
        string dir = Path.Combine(Path.GetTempPath(), "slub-export-" + Guid.NewGuid().ToString("N"));
        try
        {
            a.Sysfs.Export(dir);
            Assert.Equal(a.Sysfs.Read("exported/object_size"), File.ReadAllText(Path.Combine(dir, "exported", "object_size")));
            Assert.True(Directory.Exists(Path.Combine(dir, ":0000200")));
            var link = new FileInfo(Path.Combine(dir, "alias_me"));
            Assert.Equal(":0000200", link.LinkTarget);
            Assert.Equal("", File.ReadAllText(Path.Combine(dir, "exported", "shrink")));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]   // Unix socket file modes
    public void LiveEndpointServesReadsAndGuardsWrites()
    {
        using var a = TestAllocator.Create();
        var c = a.CreateCache("live", 64, flags: SlabFlags.NoMerge);
        string sock = Path.Combine(Path.GetTempPath(), $"slub-test-{Guid.NewGuid():N}.sock");
        var ep = a.OpenLiveEndpoint(allowWrites: false, socketPath: sock);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(sock));
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Connect(new UnixDomainSocketEndPoint(sock));
        using var ns = new NetworkStream(s);
        string Ask(string request, byte[]? payload = null)
        {
            ns.Write(Encoding.UTF8.GetBytes(request + "\n"));
            if (payload is not null) ns.Write(payload);
            string head = LiveEndpoint.ReadLine(ns)!;
            if (!head.StartsWith("OK ")) return head;
            var body = new byte[int.Parse(head[3..])];
            ns.ReadExactly(body);
            return Encoding.UTF8.GetString(body);
        }
        Assert.Equal("64\n", Ask("READ live/object_size"));
        Assert.Contains("d live\n", Ask("LIST"));
        Assert.StartsWith("ERR ENOENT", Ask("READ live/nope"));
        Assert.StartsWith("ERR EPERM", Ask("WRITE live/defrag_used_ratio 2", "50"u8.ToArray()));
        Assert.Equal(30, c.DefragUsedRatio);
        ep.AllowWrites = true;
        Assert.Equal("", Ask("WRITE live/defrag_used_ratio 2", "50"u8.ToArray()));
        Assert.Equal(50, c.DefragUsedRatio);
        Assert.StartsWith("ERR EINVAL", Ask("WRITE live/defrag_used_ratio 3", "500"u8.ToArray()));
        Assert.StartsWith("ERR EINVAL", Ask("FROB"));
        ep.AddFile("smo/callfn", null, v => throw new SysfsException(Errno.EINVAL, "smo/callfn", "bad command"));
        Assert.StartsWith("ERR EINVAL", Ask("WRITE smo/callfn 3", "x y"u8.ToArray()));
        Assert.StartsWith("ERR EACCES", Ask("READ smo/callfn"));
    }

    [Fact]
    public void OpsNamesLambdasAndLocalFunctionsAfterTheirSource()
    {
        using var a = TestAllocator.Create();
        var c = a.CreateCache("ops_names", 64, ctor: p => { }, flags: SlabFlags.NoMerge);
        c.SetupMobility(isolate: null, Move);
        string ops = a.Sysfs.Read("ops_names/ops");
        Assert.Matches(@"^ctor : SlabSysfsTests\.OpsNamesLambdasAndLocalFunctionsAfterTheirSource_lambda_[0-9_]+\+0x0/0x[0-9a-f]+ \[Slub\.Tests\]\n", ops);
        Assert.Contains("migrate : SlabSysfsTests.OpsNamesLambdasAndLocalFunctionsAfterTheirSource_Move+0x0/0x", ops);

        var table = new MovableHandleTable(a, "ops_table", 16);
        string tableOps = a.Sysfs.Read($"{table.Cache.Name}/ops");
        Assert.Contains("ctor : MovableHandleTable.ctor_lambda_", tableOps);
        Assert.Contains("migrate : MovableHandleTable.Migrate+0x0/0x", tableOps);

        static void Move(KmemCache cache, ReadOnlySpan<nint> objects, int node, object? state, Span<MigrateResult> results) => results.Fill(MigrateResult.Later);
    }

    [Fact]
    public void ASecondEndpointNeverStealsALivePath()
    {
        string sock = Path.Combine(Path.GetTempPath(), $"slub-test-{Guid.NewGuid():N}.sock");
        using var first = TestAllocator.Create();
        using var second = TestAllocator.Create();
        first.CreateCache("first_only", 64, flags: SlabFlags.NoMerge);
        var ep = first.OpenLiveEndpoint(socketPath: sock);

        var e = Assert.Throws<IOException>(() => second.OpenLiveEndpoint(socketPath: sock));
        Assert.Contains(sock, e.Message);
        Assert.Contains("first_only", ListOver(sock));   // still the first allocator's tree behind the path

        ep.Dispose();
        ep.Dispose();   // a second call is a no-op
        Assert.False(File.Exists(sock));
        using var taken = second.OpenLiveEndpoint(socketPath: sock);   // free now
        Assert.DoesNotContain("first_only", ListOver(sock));
        first.Dispose();   // disposing the first allocator again must not delete the second's file
        Assert.True(File.Exists(sock));
    }

    [Fact]
    public void AStaleSocketFileIsReplaced()
    {
        string sock = Path.Combine(Path.GetTempPath(), $"slub-test-{Guid.NewGuid():N}.sock");
        // What a process that died leaves: the socket file, and nobody accepting on it. (Disposing a bound .NET
        // socket unlinks its file, so this one stays open, bound and not listening, for the test's length.)
        using var dead = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        dead.Bind(new UnixDomainSocketEndPoint(sock));
        Assert.True(File.Exists(sock));
        using var a = TestAllocator.Create();
        a.CreateCache("after_stale", 64, flags: SlabFlags.NoMerge);
        using var ep = a.OpenLiveEndpoint(socketPath: sock);
        Assert.Contains("after_stale", ListOver(sock));
    }

    private static string ListOver(string sock)
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Connect(new UnixDomainSocketEndPoint(sock));
        using var ns = new NetworkStream(s);
        ns.Write("LIST\n"u8);
        string head = LiveEndpoint.ReadLine(ns)!;
        Assert.StartsWith("OK ", head);
        var body = new byte[int.Parse(head[3..])];
        ns.ReadExactly(body);
        return Encoding.UTF8.GetString(body);
    }

    [Fact]
    public void NullArgumentsAreArgumentNullExceptions()
    {
        // Each was a NullReferenceException from inside the path parser or the attribute's store.
        using var a = TestAllocator.Create();
        a.CreateCache("nulls", 64, flags: SlabFlags.NoMerge);
        Assert.Equal("path", Assert.Throws<ArgumentNullException>(() => a.Sysfs.Read(null!)).ParamName);
        Assert.Equal("path", Assert.Throws<ArgumentNullException>(() => a.Sysfs.Write(null!, "1")).ParamName);
        Assert.Equal("value", Assert.Throws<ArgumentNullException>(() => a.Sysfs.Write("nulls/min_partial", null!)).ParamName);
        Assert.Equal("allocator", Assert.Throws<ArgumentNullException>(() => new SlabSysfs(null!)).ParamName);
        Assert.Equal("5\n", a.Sysfs.Read("nulls/min_partial"));   // the refused write changed nothing
    }

    [Fact]
    public void ExportOfADisposedAllocatorWritesNothing()
    {
        // It used to create the directory and write the first cache's files up to slab_occupancy, whose read flushes the
        // CPUs, and throw there naming that cache: a partial snapshot that slabinfo --sysfs would read as a whole one.
        var a = TestAllocator.Create();
        a.CreateCache("gone", 64, flags: SlabFlags.NoMerge);
        a.Dispose();
        string dir = Path.Combine(Path.GetTempPath(), $"sysfs-export-disposed-{Guid.NewGuid():N}");
        var e = Assert.Throws<ObjectDisposedException>(() => a.Sysfs.Export(dir));
        Assert.Contains("Export: its SlabAllocator has been disposed", e.Message);
        Assert.False(Directory.Exists(dir));
    }
}
