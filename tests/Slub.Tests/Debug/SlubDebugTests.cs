namespace Slub.Tests.Debug;

public unsafe class SlubDebugTests
{
    private static (SlabAllocator, KmemCache) Debug(string flags = "FZPU", int size = 64)
    {
        var a = TestAllocator.Create(cpus: 2, slubDebug: flags);
        return (a, a.CreateCache("dbg", size));
    }

    [Fact]
    public void DoubleFreeIsReportedLikeTheKernel()
    {
        var (a, c) = Debug();
        using var _ = a;
        nint p = c.Alloc();
        nint keep = c.Alloc();
        c.Free(p);
        var e = Assert.Throws<SlabCorruptionException>(() => c.Free(p));
        Assert.Equal("Object already free", e.Problem);
        Assert.Contains("BUG dbg (Not tainted): Object already free", e.Message);
        Assert.Contains("Allocated in ", e.Message);   // store_user track
        Assert.Contains("Freed in ", e.Message);
        Assert.Contains(e.Message, a.Log.Lines());
        Assert.Equal(1, c.GetStatistics().Objects);   // nothing changed
        c.Free(keep);
    }

    [Fact]
    public void RightRedZoneOverwriteIsCaughtAtFree()
    {
        var (a, c) = Debug();
        using var _ = a;
        nint p = c.Alloc();
        ((byte*)p)[64] = 0;   // one byte past the object
        var e = Assert.Throws<SlabCorruptionException>(() => c.Free(p));
        Assert.Equal("Right Redzone overwritten", e.Problem);
        Assert.Contains("First byte 0x0 instead of 0xcc", e.Message);
        // The kernel's check_bytes_and_report: @offset is the faulting byte's distance from the slab's start
        // (fault - slab_address), here the red zone's first byte; p is the fresh slab's first object.
        long offset = c.Geometry.RedLeftPad + 64;
        Assert.Contains($"0x{p + 64:x}-0x{p + 64:x} @offset={offset}. First byte", e.Message);
    }

    /// <summary>
    /// print_trailer's byte dumps follow the Object line and a blank line, as print_hex_dump(DUMP_PREFIX_ADDRESS,
    /// 16 bytes a row, ASCII column at 49): left red zone, object, right red zone, then padding when there is any.
    /// </summary>
    [Fact]
    public void ReportsDumpTheRedZonesTheObjectAndThePadding()
    {
        var (a, c) = Debug("FZPU", size: 40);
        using var _ = a;
        nint p = c.Alloc();
        ((byte*)p)[40] = 0x41;   // 'A' over the first right red zone byte
        var e = Assert.Throws<SlabCorruptionException>(() => c.Free(p));
        var g = c.Geometry;
        string Row(nint at, string hex, string ascii) => $"{at:x16}: {hex.PadRight(47)}  {ascii}";
        // An allocated object keeps the free poison (0x6b, 0xa5 last) until written, as init_object() leaves it.
        string cc8 = "cc cc cc cc cc cc cc cc", z8 = "5a 5a 5a 5a 5a 5a 5a 5a", k16 = string.Join(' ', Enumerable.Repeat("6b", 16));
        string expected =
            $"Object 0x{p:x} @offset={g.RedLeftPad} fp=0x{*(nint*)(p + g.FreePointerOffset):x}\n\n"
            + $"Redzone  {Row(p - 8, cc8, "........")}\n"
            + $"Object   {Row(p, k16, "kkkkkkkkkkkkkkkk")}\n"
            + $"Object   {Row(p + 16, k16, "kkkkkkkkkkkkkkkk")}\n"
            + $"Object   {Row(p + 32, "6b 6b 6b 6b 6b 6b 6b a5", "kkkkkkk.")}\n"
            + $"Redzone  {Row(p + 40, "41 cc cc cc cc cc cc cc", "A.......")}\n"
            + $"Padding  {Row(p + g.PaddingOffset, z8, "ZZZZZZZZ")}\n";
        Assert.Equal(40, g.Inuse - 8);   // 40-byte object, one word of right red zone
        Assert.Equal(8, g.Size - g.RedLeftPad - g.PaddingOffset);
        Assert.Equal(expected, e.Message[e.Message.IndexOf("Object 0x", StringComparison.Ordinal)..]);
    }

    [Fact]
    public void TraceLogsEachFreeWithTheSlabStateAndTheObject()
    {
        var (a, c) = Debug("T", size: 16);
        using var _ = a;
        nint p = c.Alloc(), q = c.Alloc();
        new Span<byte>((void*)q, 16).Fill(0x61);
        c.Free(q);
        string line = a.Log.Lines().Last(l => l.StartsWith("TRACE dbg free", StringComparison.Ordinal));
        Assert.Equal($"TRACE dbg free 0x{q:x} inuse=2 fp=0x{*(nint*)(q + c.Geometry.FreePointerOffset):x}\n"
            + $"Object {q:x16}: 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61  aaaaaaaaaaaaaaaa", line);
        c.Free(p);
    }

    [Fact]
    public void ByteReportsGiveTheOffsetFromTheSlabStart()
    {
        var (a, c) = Debug();
        using var _ = a;
        nint first = c.Alloc(), second = c.Alloc();   // a fresh slab's first two objects
        nint slab = first - c.Geometry.RedLeftPad;

        ((byte*)second)[-1] = 1;   // the second object's left red zone, last byte
        var e = Assert.Throws<SlabCorruptionException>(() => c.Free(second));
        Assert.Equal("Left Redzone overwritten", e.Problem);
        Assert.Contains($"0x{second - 1:x}-0x{second - 1:x} @offset={second - 1 - slab}. First byte 0x1 instead of 0xcc", e.Message);
        Assert.Contains($"Object 0x{second:x} @offset={second - slab}", e.Message);

        c.Free(first);
        ((byte*)first)[5] = 0;   // write after free: poison
        Assert.Contains(c.Validate(), r => r.Contains("Poison overwritten")
            && r.Contains($"0x{first + 5:x}-0x{first + 5:x} @offset={first + 5 - slab}. First byte 0x0 instead of 0x6b"));
    }

    [Fact]
    public void LeftRedZoneOverwriteIsCaughtAtFree()
    {
        var (a, c) = Debug("Z");
        using var _ = a;
        nint p = c.Alloc();
        ((byte*)p)[-1] = 1;
        var e = Assert.Throws<SlabCorruptionException>(() => c.Free(p));
        Assert.Equal("Left Redzone overwritten", e.Problem);
    }

    [Fact]
    public void WriteAfterFreeIsCaughtByPoisonAndTheObjectIsNotHandedOutAgain()
    {
        var (a, c) = Debug("FZP");
        using var _ = a;
        var objs = Enumerable.Range(0, 10).Select(_ => c.Alloc()).ToList();
        nint victim = objs[9];
        c.Free(victim);
        ((byte*)victim)[10] = 0x42;   // use after free
        var e = Assert.Throws<SlabCorruptionException>(() => { for (int i = 0; i < 1000; i++) objs.Add(c.Alloc()); });
        Assert.Equal("Poison overwritten", e.Problem);
        Assert.Contains("First byte 0x42 instead of 0x6b", e.Message);
        // The damaged slab is taken out of service: further allocations never return the victim.
        for (int i = 0; i < 200; i++) Assert.NotEqual(victim, c.Alloc());
    }

    [Fact]
    public void ValidateFindsDamageInFreeObjects()
    {
        var (a, c) = Debug("FZP");
        using var _ = a;
        nint p = c.Alloc();
        nint q = c.Alloc();
        c.Free(p);
        Assert.Empty(c.Validate());
        ((byte*)p)[3] = 0;
        var problems = c.Validate();
        Assert.Single(problems);
        Assert.Contains("Poison overwritten", problems[0]);
        c.Free(q);
    }

    [Fact]
    public void ValidateFindsACorruptFreeList()
    {
        using var a = TestAllocator.Create(cpus: 1);
        var c = a.CreateCache("fl", 64, flags: SlabFlags.NoMerge);
        var objs = Enumerable.Range(0, 10).Select(_ => c.Alloc()).ToList();
        c.Free(objs[4]);
        c.FlushAll();
        Assert.Empty(c.Validate());
        *(nint*)(objs[4] + c.Geometry.FreePointerOffset) = 0x1234;   // scribble over the free pointer
        Assert.Contains(c.Validate(), p => p.Contains("Freepointer corrupt"));
    }

    [Fact]
    public void DebugCachesNeverUseCpuSlabsSoCountsAreExact()
    {
        var (a, c) = Debug("F");
        using var _ = a;
        var objs = Enumerable.Range(0, 500).Select(_ => c.Alloc()).ToList();
        var st = c.GetStatistics();
        Assert.Equal(0, st.CpuSlabs);
        Assert.Equal(500, st.Objects);
        foreach (var p in objs) c.Free(p);
        Assert.Equal(0, c.GetStatistics().Objects);
    }

    [Fact]
    public void SlubDebugOptionParsesTheBootSyntax()
    {
        var o = SlubDebugOption.Parse("FZ,dentry,kmalloc-*;U,inode_cache");
        Assert.Equal(SlabFlags.None, o.Global);
        Assert.Equal(SlabFlags.ConsistencyChecks | SlabFlags.RedZone, o.FlagsFor("dentry"));
        Assert.Equal(SlabFlags.ConsistencyChecks | SlabFlags.RedZone, o.FlagsFor("kmalloc-64"));
        Assert.Equal(SlabFlags.StoreUser, o.FlagsFor("inode_cache"));
        Assert.Equal(SlabFlags.DebugFlags, SlubDebugOption.Parse("").Global);
        Assert.Equal(SlabFlags.None, SlubDebugOption.Parse("-").Global);
        var e = Assert.Throws<FormatException>(() => SlubDebugOption.Parse("FQ"));
        Assert.Contains("'Q'", e.Message);
    }

    [Theory]
    [InlineData("FZ,dentry;")]        // a trailing separator
    [InlineData("FZ,dentry;;U,inode_cache")]
    [InlineData(";FZ,dentry")]
    public void EmptyBlocksAreSkippedNotReadAsFullDebugging(string text)
    {
        // The kernel skips empty ';' blocks; reading one as "no letters" would turn on F,Z,P,U for every cache.
        var o = SlubDebugOption.Parse(text);
        Assert.Equal(SlabFlags.None, o.Global);
        Assert.Equal(SlabFlags.None, o.FlagsFor("kmalloc-64"));
        Assert.Equal(SlabFlags.ConsistencyChecks | SlabFlags.RedZone, o.FlagsFor("dentry"));
    }

    [Fact]
    public void AFlagBlockWithAnEmptyCacheListIsNotGlobal()
    {
        // "FZ," names a cache list (an empty one): no cache matches, and the global flags stay off.
        var o = SlubDebugOption.Parse("FZ,");
        Assert.Equal(SlabFlags.None, o.Global);
        Assert.Equal(SlabFlags.None, o.FlagsFor("dentry"));
    }

    [Theory]
    [InlineData("Z-", SlabFlags.None)]                                    // '-' switches off what came before it
    [InlineData("-Z", SlabFlags.RedZone)]                                  // and later letters count again
    [InlineData("FZ-U", SlabFlags.StoreUser)]
    public void DashClearsTheFlagsBeforeIt(string text, SlabFlags expected)
    {
        Assert.Equal(expected, SlubDebugOption.Parse(text).Global);
    }

    [Fact]
    public void AGlobStarEndsTheComparedPrefixWhereverItIs()
    {
        var o = SlubDebugOption.Parse("Z,km*64,*cache");
        Assert.Equal(SlabFlags.RedZone, o.FlagsFor("kmalloc-1k"));   // "km*64" compares "km" only, as the kernel does
        Assert.Equal(SlabFlags.RedZone, o.FlagsFor("inode_cache"));  // "*cache" matches every name
        Assert.Equal(SlabFlags.None, SlubDebugOption.Parse("Z,kmalloc-64").FlagsFor("kmalloc-64x"));
    }

    [Fact]
    public void OLetterDropsDebugMetadataWhereItWouldRaiseTheOrder()
    {
        using var a = TestAllocator.Create(slubDebug: "FZPUO");
        var big = a.FindCache("kmalloc-4k")!;     // 4096 + red zones and tracks no longer fit one page
        var small = a.FindCache("kmalloc-64")!;
        Assert.Equal(SlabFlags.ConsistencyChecks, big.Flags & SlabFlags.DebugFlags);
        Assert.Equal(4096, big.SlabSize);
        Assert.Equal(SlabFlags.DebugFlags, small.Flags & SlabFlags.DebugFlags);
        using var plain = TestAllocator.Create(slubDebug: "FZPU");
        Assert.True(plain.FindCache("kmalloc-4k")!.SlabSize > 4096);
    }

    [Fact]
    public void AWriteBeforeTheLeftRedZoneHitsPaddingNotTheTracksOfThePreviousObject()
    {
        var (a, c) = Debug("FZPU");
        using var _ = a;
        nint p = c.Alloc();
        nint q = c.Alloc();
        Assert.Equal(p + c.SlabSize, q);
        int pad = c.Geometry.RedLeftPad;
        ((byte*)q)[-pad - 1] = 0;   // underflow of q by one byte past its left red zone
        var e = Assert.Throws<SlabCorruptionException>(() => c.Free(p));
        Assert.Equal("Object padding overwritten", e.Problem);
        Assert.Contains("BUG dbg (Not tainted): Object padding overwritten", e.Message);
        Assert.Contains("Allocated in ", e.Message);   // p's alloc track is intact
        Assert.Contains($"Object 0x{p:x}", e.Message);
        Assert.Single(c.Validate(), r => r.Contains("Object padding overwritten"));
    }

    [Fact]
    public void ValidateChecksTheSlabsUnusedTail()
    {
        var (a, c) = Debug("FZP");
        using var _ = a;
        nint p = c.Alloc();
        int tail = c.Geometry.SlabBytes - c.ObjectsPerSlab * c.SlabSize;
        Assert.True(tail > 0);
        nint slabEnd = p - c.Geometry.RedLeftPad + c.Geometry.SlabBytes;   // p is the slab's first object
        ((byte*)slabEnd)[-1] = 0;
        var report = Assert.Single(c.Validate());
        Assert.Contains("BUG dbg (Not tainted): Padding overwritten", report);
        Assert.Contains($"@offset={c.Geometry.SlabBytes - 1}", report);
        c.Free(p);
    }

    [Fact]
    public void PoisonIsOffForConstructorCaches()
    {
        using var a = TestAllocator.Create(slubDebug: "P");
        var c = a.CreateCache("ctorpoison", 64, ctor: p => *(long*)p = 99);
        nint x = c.Alloc();
        c.Free(x);
        nint y = c.Alloc();
        Assert.Equal(99, *(long*)y);   // constructed state survives: no poison on ctor caches
    }
}
