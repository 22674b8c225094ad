using System.Text;
using Slub.Trace;

namespace Slub.Tests.Replay;

public class FtraceParserTests
{
    private static TraceLineKind Parse(string line, out string? error, out Captured ev)
    {
        var bytes = Encoding.UTF8.GetBytes(line);
        var kind = FtraceParser.TryParse(bytes, out var e, out error);
        ev = new Captured(e.Kind, e.Cpu, e.Pid, e.TimestampNs, e.Ptr, e.BytesReq, e.BytesAlloc, e.Node, e.Accounted, e.Lost,
            Encoding.UTF8.GetString(e.Task), Encoding.UTF8.GetString(e.CacheName), Encoding.UTF8.GetString(e.CallSite), Encoding.UTF8.GetString(e.GfpFlags));
        return kind;
    }

    private sealed record Captured(TraceEventKind Kind, int Cpu, int Pid, long TimestampNs, ulong Ptr, int BytesReq, int BytesAlloc,
        int Node, bool Accounted, long Lost, string Task, string CacheName, string CallSite, string GfpFlags);

    [Fact]
    public void KmemCacheAlloc()
    {
        var kind = Parse("      capture.sh-3759    [000] .....  4190.506770: kmem_cache_alloc: call_site=copy_process+0x18a/0x1c80 ptr=0000000058dda13e name=task_struct bytes_req=5840 bytes_alloc=5888 gfp_flags=GFP_KERNEL node=-1 accounted=true", out var err, out var ev);
        Assert.Equal(TraceLineKind.Event, kind);
        Assert.Null(err);
        Assert.Equal(TraceEventKind.CacheAlloc, ev.Kind);
        Assert.Equal("capture.sh", ev.Task);
        Assert.Equal(3759, ev.Pid);
        Assert.Equal(0, ev.Cpu);
        Assert.Equal(4190_506_770_000L, ev.TimestampNs);
        Assert.Equal(0x58dda13eUL, ev.Ptr);
        Assert.Equal("task_struct", ev.CacheName);
        Assert.Equal(5840, ev.BytesReq);
        Assert.Equal(5888, ev.BytesAlloc);
        Assert.Equal(-1, ev.Node);
        Assert.True(ev.Accounted);
        Assert.Equal("copy_process+0x18a/0x1c80", ev.CallSite);
        Assert.Equal("GFP_KERNEL", ev.GfpFlags);
    }

    [Fact]
    public void KmemCacheFree()
    {
        var kind = Parse("             cat-3796    [001] .....  4192.093154: kmem_cache_free: call_site=__fput+0x141/0x2a0 ptr=00000000b1e35b2b name=lsm_file_cache", out _, out var ev);
        Assert.Equal(TraceLineKind.Event, kind);
        Assert.Equal(TraceEventKind.CacheFree, ev.Kind);
        Assert.Equal(1, ev.Cpu);
        Assert.Equal(0xb1e35b2bUL, ev.Ptr);
        Assert.Equal("lsm_file_cache", ev.CacheName);
        Assert.Equal(-1, ev.BytesAlloc);
    }

    [Fact]
    public void KmallocAndKfree()
    {
        Assert.Equal(TraceLineKind.Event, Parse("  kworker/u4:2-123     [001] d..1.   12.000001: kmalloc: call_site=alloc_thing+0x1a/0x100 [xfs] ptr=ffff888003a1c040 bytes_req=50 bytes_alloc=64 gfp_flags=GFP_KERNEL|__GFP_ZERO node=-1 accounted=false", out _, out var a));
        Assert.Equal(TraceEventKind.Kmalloc, a.Kind);
        Assert.Equal("kworker/u4:2", a.Task);
        Assert.Equal(0xffff888003a1c040UL, a.Ptr);
        Assert.Equal(64, a.BytesAlloc);
        Assert.Equal("", a.CacheName);
        Assert.Equal("alloc_thing+0x1a/0x100", a.CallSite);   // the " [xfs]" module tail is skipped
        Assert.Equal(TraceLineKind.Event, Parse("  kworker/u4:2-123     [001] d..1.   12.000002: kfree: call_site=free_thing+0x10/0x20 ptr=ffff888003a1c040", out _, out var f));
        Assert.Equal(TraceEventKind.Kfree, f.Kind);
        Assert.Equal(a.Ptr, f.Ptr);
    }

    [Fact]
    public void OptionalColumnsAndOddTaskNames()
    {
        // Task name with blanks and dashes, a (TGID) column, no irq-flags column, nanosecond timestamp.
        var kind = Parse(" Web Content-x-4242  (  4000) [003] 100.123456789: kmem_cache_free: call_site=x+0x1/0x2 ptr=(null) name=dentry", out var err, out var ev);
        Assert.Equal(TraceLineKind.Event, kind);
        Assert.Null(err);
        Assert.Equal("Web Content-x", ev.Task);
        Assert.Equal(4242, ev.Pid);
        Assert.Equal(3, ev.Cpu);
        Assert.Equal(100_123_456_789L, ev.TimestampNs);
        Assert.Equal(0UL, ev.Ptr);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("# tracer: nop")]
    [InlineData("#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION")]
    public void CommentsAndBlankLines(string line) => Assert.Equal(TraceLineKind.Comment, Parse(line, out _, out _));

    [Theory]
    [InlineData("cpus=2")]
    [InlineData("CPU 3 is empty")]
    public void TraceCmdReportPreambleLinesAreComments(string line) => Assert.Equal(TraceLineKind.Comment, Parse(line, out _, out _));

    [Fact]
    public void TraceCmdReportLinesParse()
    {
        // trace-cmd report: no flags column by default, real addresses with 0x, %pS without the size.
        var kind = Parse("            bash-1234  [001]  4160.226149: kmem_cache_alloc:     call_site=__d_alloc+0x2d ptr=0xffff888003a1c040 name=dentry bytes_req=192 bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 accounted=true", out var err, out var ev);
        Assert.Equal(TraceLineKind.Event, kind);
        Assert.Null(err);
        Assert.Equal(("bash", 1234, 1, 0xffff888003a1c040UL, "dentry", 192), (ev.Task, ev.Pid, ev.Cpu, ev.Ptr, ev.CacheName, ev.BytesAlloc));
    }

    [Theory]
    [InlineData("         python3  3890 [001]  4160.226149: kmem:kmem_cache_alloc: call_site=__d_alloc+0x2d ptr=0xffff888003a1c040 name=dentry bytes_req=192 bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 accounted=true", "python3", 3890, TraceEventKind.CacheAlloc)]
    [InlineData(" systemd-journal   301 [000]    12.000001: kmem:kmem_cache_free: call_site=x ptr=0xffff888003a1c040 name=dentry", "systemd-journal", 301, TraceEventKind.CacheFree)]
    [InlineData("     Web Content  4242 [003]   100.123456: kmem:kfree: call_site=x ptr=0xffff888003a1c040", "Web Content", 4242, TraceEventKind.Kfree)]
    public void PerfScriptLinesParse(string line, string task, int pid, TraceEventKind kind)
    {
        Assert.Equal(TraceLineKind.Event, Parse(line, out var err, out var ev));
        Assert.Null(err);
        Assert.Equal((task, pid, kind, 0xffff888003a1c040UL), (ev.Task, ev.Pid, ev.Kind, ev.Ptr));
    }

    [Fact]
    public void OtherEventsAndLostEvents()
    {
        Assert.Equal(TraceLineKind.OtherEvent, Parse("          <idle>-0       [000] d..2.  1.000000: sched_switch: prev_comm=swapper/0 prev_pid=0", out _, out _));
        Assert.Equal(TraceLineKind.LostEvents, Parse("CPU:1 [LOST 1234 EVENTS]", out _, out var lost));
        Assert.Equal(1, lost.Cpu);
        Assert.Equal(1234, lost.Lost);
    }

    [Theory]
    [InlineData("garbage without columns", "no [CPU] column")]
    [InlineData("  a-1 [000] ..... 1.0: kmem_cache_free: ptr=xyz name=dentry", "ptr is not a hex pointer or (null)")]
    [InlineData("  a-1 [000] ..... 1.0: kmem_cache_free: ptr=0000000000000001", "kmem_cache_free without name=")]
    [InlineData("  a-1 [000] ..... 1.0: kmem_cache_alloc: call_site=x ptr=0000000000000001 name=dentry bytes_req=1", "allocation without bytes_alloc=")]
    [InlineData("  a-1 [000] ..... 1.0: kmem_cache_alloc: name=dentry bytes_alloc=192", "no ptr= field")]
    [InlineData("  a-1 [000] ..... x.y: kmem_cache_free: ptr=1 name=dentry", "unreadable timestamp")]
    [InlineData("  nopid [000] ..... 1.0: kmem_cache_free: ptr=1 name=dentry", "no TASK-PID before the CPU column")]
    [InlineData("  a-1 [000] ..... 1.0: kmem_cache_alloc: ptr=1 name=dentry bytes_alloc=-5", "unreadable bytes_alloc")]
    public void MalformedLinesSayWhy(string line, string reason)
    {
        Assert.Equal(TraceLineKind.Malformed, Parse(line, out var err, out _));
        Assert.StartsWith(reason, err);
    }

    [Fact]
    public void EveryLineOfTheSampleParses()
    {
        using var reader = TraceLineReader.Open(Fixtures.SampleTrace);
        long events = 0, allocs = 0;
        while (reader.TryReadLine(out var line))
        {
            var kind = FtraceParser.TryParse(line, out var ev, out var error);
            Assert.True(kind == TraceLineKind.Event, $"line {reader.LineNumber}: {error}");
            events++;
            if (ev.IsAlloc) allocs++;
        }
        Assert.Equal(202_337, events);
        Assert.Equal(117_396, allocs);
    }
}
