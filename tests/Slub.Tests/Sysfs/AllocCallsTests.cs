using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Slub.Sysfs;
using Slub.Tests.Slabinfo;

namespace Slub.Tests.Sysfs;

/// <summary>
/// <c>alloc_calls</c> and <c>free_calls</c> (Linux 5.2, CONFIG_SLUB_DEBUG): the objects in use grouped by the call
/// site of their allocation or last free, one <c>list_locations</c> line each; ENOSYS on a cache without store_user.
/// slabinfo's <c>-t</c> and the tracking section of <c>-r</c> print them.
/// </summary>
public sealed class AllocCallsTests : IDisposable
{
    private readonly string _export = Path.Combine(Path.GetTempPath(), $"alloc-calls-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_export)) Directory.Delete(_export, recursive: true);
    }

    // 5.2's line: "%7ld " count, the call site, " age=" one or min/avg/max, " pid=" one or min-max, then cpus= on SMP.
    private static readonly Regex s_line = new(@"^ {0,6}\d+ \S+ age=\d+(/\d+/\d+)? pid=\d+(-\d+)?( cpus=\d+(-\d+)?(,\d+(-\d+)?)*)?$");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static nint AllocHere(KmemCache c) => c.Alloc();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static nint AllocThere(KmemCache c) => c.Alloc();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void FreeHere(KmemCache c, nint p) => c.Free(p);

    [Fact]
    public void EachCallSiteOfTheObjectsInUseGetsOneLine()
    {
        using var a = TestAllocator.Create(slubDebug: "U,calls");
        var c = a.CreateCache("calls", 64, flags: SlabFlags.NoMerge);
        Assert.Equal("No data\n", a.Sysfs.Read("calls/alloc_calls"));
        Assert.Equal("No data\n", a.Sysfs.Read("calls/free_calls"));

        var here = Enumerable.Range(0, 7).Select(_ => AllocHere(c)).ToList();
        var there = Enumerable.Range(0, 3).Select(_ => AllocThere(c)).ToList();
        // Freed objects are not listed; an object freed and allocated again shows where it was freed.
        for (int i = 0; i < 4; i++) FreeHere(c, here[i]);
        here.RemoveRange(0, 4);
        var again = AllocThere(c);

        string alloc = a.Sysfs.Read("calls/alloc_calls");
        var lines = alloc.TrimEnd('\n').Split('\n');
        Assert.All(lines, l => Assert.Matches(s_line, l));
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("      3 AllocCallsTests.AllocHere+0x", lines[0]);
        Assert.StartsWith("      4 AllocCallsTests.AllocThere+0x", lines[1]);

        string free = a.Sysfs.Read("calls/free_calls");
        lines = free.TrimEnd('\n').Split('\n');
        Assert.All(lines, l => Assert.Matches(s_line, l));
        // Objects never freed have an empty free track: address 0 in the kernel, "<not-available>", listed first.
        Assert.StartsWith("      6 <not-available> age=", lines[0]);
        Assert.Contains(" pid=0", lines[0]);
        Assert.StartsWith("      1 AllocCallsTests.FreeHere+0x", lines[1]);
        Assert.Equal(2, lines.Length);
        foreach (var p in here.Concat(there).Append(again)) c.Free(p);
    }

    [Fact]
    public void WithoutStoreUserTheReadIsEnosysAndSlabinfoSaysNoData()
    {
        using var a = TestAllocator.Create();
        var c = a.CreateCache("nocalls", 64, flags: SlabFlags.NoMerge);
        var p = c.Alloc();
        var e = Assert.Throws<SysfsException>(() => a.Sysfs.Read("nocalls/alloc_calls"));
        Assert.Equal(Errno.ENOSYS, e.Errno);
        Assert.Equal(Errno.ENOSYS, Assert.Throws<SysfsException>(() => a.Sysfs.Read("nocalls/free_calls")).Errno);

        // Over the live endpoint the tool reads nothing from the file, as fread() does on the kernel's, and goes on.
        using var endpoint = a.OpenLiveEndpoint(allowWrites: false, socketPath: LiveEndpoint.PathFor(Environment.ProcessId));
        var r = SlabinfoFixtures.Run("--pid", Environment.ProcessId.ToString(), "-t", "^nocalls$");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("\nnocalls: Kernel object allocation\n" + new string('-', 71) + "\nNo Data\n"
            + "\nnocalls: Kernel object freeing\n" + new string('-', 72) + "\nNo Data\n", r.Out);

        // An export holds the file empty.
        a.Sysfs.Export(_export);
        Assert.Equal("", File.ReadAllText(Path.Combine(_export, "nocalls", "alloc_calls")));
        c.Free(p);
    }

    [Fact]
    public void SlabinfoTrackingShowsTheCallSitesOfAnExport()
    {
        using var a = TestAllocator.Create(slubDebug: "FZPU,tracked");
        var c = a.CreateCache("tracked", 64, flags: SlabFlags.NoMerge);
        var objs = Enumerable.Range(0, 5).Select(_ => AllocHere(c)).ToList();
        a.Sysfs.Export(_export);
        var r = SlabinfoFixtures.Run("--sysfs", _export, "-t", "^tracked$");
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith("\ntracked: Kernel object allocation\n" + new string('-', 71) + "\n      5 AllocCallsTests.AllocHere+0x", r.Out);
        Assert.Contains("\ntracked: Kernel object freeing\n" + new string('-', 72) + "\n      5 <not-available> age=", r.Out);
        foreach (var p in objs) c.Free(p);
    }
}
