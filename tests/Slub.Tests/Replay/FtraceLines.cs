using System.Globalization;

namespace Slub.Tests.Replay;

/// <summary>
/// Lines of the kmem events as the kernel's <c>trace</c> file prints them (task, CPU, flags, timestamp, event), for
/// the replay tests: one format, written once. Pointers are the 16 hex digits of a hashed pointer.
/// </summary>
internal static class FtraceLines
{
    /// <summary>A pointer as ftrace prints a hashed one: 16 hex digits.</summary>
    public static string Ptr(long value) => value.ToString("x16", CultureInfo.InvariantCulture);

    /// <summary>A <c>kmem_cache_alloc</c> line.</summary>
    public static string Alloc(string ptr, string cache = "dentry", int bytes = 192, int cpu = 0, double ts = 1.0) =>
        string.Create(CultureInfo.InvariantCulture,
            $"  t-1 [{cpu:000}] ..... {ts:0.000000}: kmem_cache_alloc: call_site=f+0x1/0x2 ptr={ptr} name={cache} bytes_req={bytes} bytes_alloc={bytes} gfp_flags=GFP_KERNEL node=-1 accounted=false");

    /// <summary>A <c>kmem_cache_free</c> line.</summary>
    public static string Free(string ptr, string cache = "dentry", int cpu = 0, double ts = 1.0) =>
        string.Create(CultureInfo.InvariantCulture, $"  t-1 [{cpu:000}] ..... {ts:0.000000}: kmem_cache_free: call_site=g+0x1/0x2 ptr={ptr} name={cache}");
}
