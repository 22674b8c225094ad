using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Slub.Benchmarks.Infrastructure;

namespace Slub.Benchmarks.Allocators;

/// <summary>
/// Splits the KmemCache alloc+free pair into the pieces of its fast path, in thread CPU time
/// (<c>-- --fastpath-cpu-time</c>). Since the thread magazines (main c211b0c) the pair is: a [ThreadStatic]
/// magazine lookup in Alloc and in Free, Busy/FlushRequest volatile accesses, a slot pop/push, and the slab
/// lookup of Free (<see cref="KmemCache.Owns"/> does the same page-owner lookup and boundary check as SlabOf).
/// The per-CPU lock (CompareExchange) and Thread.GetCurrentProcessorId are now only paid on magazine
/// refill/flush; their rows show what the fast path saved. Also issue #3's plain vs movable pair.
/// </summary>
public static unsafe class FastPathCostProbe
{
    private const int N = 20_000_000;

    [ThreadStatic] private static nint t_slot;

    public static void Run(int rounds = 5)
    {
        using var allocator = KmemCacheAllocator.CreateAllocator();
        var cache = KmemCacheAllocator.Create(allocator).Cache;
        // Issue #3's pair: the same constructor cache with and without mobility.
        var plain = allocator.CreateCache("plain-64", Mobility.MovableObjectTable.ObjectBytes, flags: SlabFlags.NoMerge, ctor: Mobility.MovableObjectTable.Construct);
        var movable = new Mobility.MovableObjectTable(1).CreateMovableCache(allocator, "movable-64");
        var rows = new (string Name, Func<double> Measure)[]
        {
            ("KmemCache alloc+free pair", () => Time(() => { for (int i = 0; i < N; i++) cache.Free(cache.Alloc()); })),
            ("plain cache with constructor, pair", () => Time(() => { for (int i = 0; i < N; i++) plain.Free(plain.Alloc()); })),
            ("same cache with SetupMobility, pair", () => Time(() => { for (int i = 0; i < N; i++) movable.Free(movable.Alloc()); })),
            ("plain cache with constructor, 1000 then 1000 (per object; slow paths, no free map)", () => Batch(plain)),
            ("same cache with SetupMobility, 1000 then 1000 (slow paths keep the free map)", () => Batch(movable)),
            ("NativeMemory alloc+free pair", () => Time(() => { for (int i = 0; i < N; i++) NativeMemory.Free(NativeMemory.Alloc(64)); })),
            ("2 x (CompareExchange + Volatile.Write): the per-CPU lock (now only on magazine refill/flush)", TwoLocks),
            ("2 x Thread.GetCurrentProcessorId: picking the per-CPU state (now only on refill/flush)", TwoProcessorIds),
            ("1 x Owns(obj): page-owner lookup + boundary check, as SlabOf in Free (on the fast path)", () => OneOwns(cache)),
            ("2 x [ThreadStatic] read+write: the order of the magazine lookups in Alloc and Free", TwoThreadStatics),
        };
        var best = new double[rows.Length];
        Array.Fill(best, double.MaxValue);
        for (int r = 0; r < rounds; r++)
            for (int i = 0; i < rows.Length; i++) best[i] = Math.Min(best[i], rows[i].Measure());
        Console.WriteLine($"fastpath-cpu-time: thread CPU ns per iteration, best of {rounds} rounds of {N:N0}");
        Console.WriteLine("| Piece | CPU ns |");
        Console.WriteLine("|---|---:|");
        for (int i = 0; i < rows.Length; i++)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {rows[i].Name} | {best[i]:F2} |"));
    }

    /// <summary>1,000 allocations then 1,000 frees, repeated: past the magazine, through the slab-level paths.</summary>
    private static double Batch(KmemCache c)
    {
        var objs = new nint[1000];
        return Time(() =>
        {
            for (int r = 0; r < N / 1000; r++)
            {
                for (int i = 0; i < objs.Length; i++) objs[i] = c.Alloc();
                for (int i = 0; i < objs.Length; i++) c.Free(objs[i]);
            }
        });
    }

    private static double Time(Action loop)
    {
        long t = ThreadCpuClock.NowNanoseconds();
        loop();
        return (ThreadCpuClock.NowNanoseconds() - t) / (double)N;
    }

    private static double TwoLocks()
    {
        int word = 0;
        long t = ThreadCpuClock.NowNanoseconds();
        for (int i = 0; i < N; i++)
        {
            Interlocked.CompareExchange(ref word, 1, 0);
            Volatile.Write(ref word, 0);
            Interlocked.CompareExchange(ref word, 1, 0);
            Volatile.Write(ref word, 0);
        }
        return (ThreadCpuClock.NowNanoseconds() - t) / (double)N;
    }

    private static double TwoProcessorIds()
    {
        int sum = 0;
        long t = ThreadCpuClock.NowNanoseconds();
        for (int i = 0; i < N; i++) sum += Thread.GetCurrentProcessorId() + Thread.GetCurrentProcessorId();
        double ns = (ThreadCpuClock.NowNanoseconds() - t) / (double)N;
        GC.KeepAlive(sum);
        return ns;
    }

    private static double OneOwns(KmemCache cache)
    {
        nint obj = cache.Alloc();
        bool all = true;
        long t = ThreadCpuClock.NowNanoseconds();
        for (int i = 0; i < N; i++) all &= cache.Owns(obj);
        double ns = (ThreadCpuClock.NowNanoseconds() - t) / (double)N;
        cache.Free(obj);
        if (!all) throw new InvalidOperationException("Owns failed");
        return ns;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static double TwoThreadStatics()
    {
        long t = ThreadCpuClock.NowNanoseconds();
        for (int i = 0; i < N; i++)
        {
            t_slot = t_slot + 1;
            t_slot = t_slot - 1;
        }
        return (ThreadCpuClock.NowNanoseconds() - t) / (double)N;
    }
}
