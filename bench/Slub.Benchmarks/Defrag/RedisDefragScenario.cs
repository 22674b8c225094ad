using System.Diagnostics;
using System.Globalization;
using Slub.Benchmarks.Infrastructure;
using Slub.Diagnostics;

namespace Slub.Benchmarks.Defrag;

/// <summary>
/// The Redis active-defrag acceptance workload (tests/unit/memefficiency.tcl): 700,000 values of 150 bytes
/// and then 170,000 of 300 bytes under a memory cap with approximate-LRU eviction (sample 5 keys, evict the
/// least recently used), which leaves the 150-byte cache's slabs sparse. Then one client thread runs a
/// GET/SET mix at full speed for a fixed time, once without and once with the background defragmenter,
/// from identical starting states (same seed), and the defragmenter keeps going after the traffic stops.
/// Values live in <see cref="MovableHandleTable"/> caches and carry a checksum verified on every GET and,
/// for every live key, at the end.
/// </summary>
/// <remarks>
/// Ratio = bytes of the two caches' slabs / bytes of live objects (object_size, i.e. the 150/300-byte value
/// plus the table's 8-byte header), the analogue of Redis' allocator_frag_ratio.
/// </remarks>
internal sealed unsafe class RedisDefragScenario
{
    private sealed record Settings(double Scale, double TrafficSeconds, double SettleSeconds, int Seed, bool DefaultKnobs);

    private sealed class Keyspace
    {
        public readonly MovableHandleTable Small, Large;
        public readonly long CapBytes;
        public long[] Handle = new long[1 << 20];
        public byte[] Kind = new byte[1 << 20];      // 0 small, 1 large
        public long[] LastUse = new long[1 << 20];
        public int[] Dense = new int[1 << 20];        // live key ids
        public int[] Position = new int[1 << 20];     // key id -> index in Dense
        public int Live;
        public int NextKey;
        public long Clock;
        public long LiveBytes;
        public long Evictions;
        public long Corrupt;
        public readonly Random Rng;

        public Keyspace(SlabAllocator a, long capBytes, int seed)
        {
            Small = new MovableHandleTable(a, "kv-150", 150);
            Large = new MovableHandleTable(a, "kv-300", 300);
            CapBytes = capBytes;
            Rng = new Random(seed);
        }

        private void Grow()
        {
            int n = Handle.Length * 2;
            Array.Resize(ref Handle, n); Array.Resize(ref Kind, n); Array.Resize(ref LastUse, n);
            Array.Resize(ref Dense, n); Array.Resize(ref Position, n);
        }

        public MovableHandleTable Table(int key) => Kind[key] == 0 ? Small : Large;

        /// <summary>Inserts a new key; returns the ticks the allocation took.</summary>
        public long Set(bool large)
        {
            int key = NextKey++;
            if (key >= Handle.Length) Grow();
            var t = large ? Large : Small;
            long t0 = Stopwatch.GetTimestamp();
            long h = t.Allocate();
            long took = Stopwatch.GetTimestamp() - t0;
            using (var s = t.Access(h)) Fill(s.Bytes, key);
            Handle[key] = h; Kind[key] = (byte)(large ? 1 : 0); LastUse[key] = ++Clock;
            Position[key] = Live; Dense[Live++] = key;
            LiveBytes += t.Cache.ObjectSize;
            while (LiveBytes > CapBytes) EvictOne();
            return took;
        }

        public void Get()
        {
            int key = Dense[Rng.Next(Live)];
            using (var s = Table(key).Access(Handle[key]))
                if (!Check(s.Bytes, key)) Corrupt++;
            LastUse[key] = ++Clock;
        }

        // Redis' approximated LRU: sample five keys, evict the one used least recently.
        private void EvictOne()
        {
            int victim = -1;
            for (int i = 0; i < 5; i++)
            {
                int k = Dense[Rng.Next(Live)];
                if (victim < 0 || LastUse[k] < LastUse[victim]) victim = k;
            }
            var t = Table(victim);
            using (var s = t.Access(Handle[victim]))
                if (!Check(s.Bytes, victim)) Corrupt++;
            t.Free(Handle[victim]);
            LiveBytes -= t.Cache.ObjectSize;
            int pos = Position[victim], last = Dense[--Live];
            Dense[pos] = last; Position[last] = pos;
            Evictions++;
        }

        public long VerifyAll()
        {
            long bad = 0;
            for (int i = 0; i < Live; i++)
            {
                int key = Dense[i];
                using var s = Table(key).Access(Handle[key]);
                if (!Check(s.Bytes, key)) bad++;
            }
            return bad;
        }

        private static void Fill(Span<byte> b, int key)
        {
            uint x = (uint)key * 2654435761u;
            for (int i = 0; i < b.Length - 4; i++) { x = x * 1664525u + 1013904223u; b[i] = (byte)(x >> 24); }
            uint sum = Sum(b[..^4]);
            b[^4] = (byte)sum; b[^3] = (byte)(sum >> 8); b[^2] = (byte)(sum >> 16); b[^1] = (byte)(sum >> 24);
        }

        private static bool Check(Span<byte> b, int key)
        {
            uint sum = Sum(b[..^4]);
            if (b[^4] != (byte)sum || b[^3] != (byte)(sum >> 8) || b[^2] != (byte)(sum >> 16) || b[^1] != (byte)(sum >> 24)) return false;
            uint x = (uint)key * 2654435761u;
            x = x * 1664525u + 1013904223u;
            return b[0] == (byte)(x >> 24);
        }

        private static uint Sum(ReadOnlySpan<byte> b)
        {
            uint h = 2166136261;
            foreach (byte v in b) h = (h ^ v) * 16777619;
            return h;
        }

        public (long SlabBytes, long LiveBytes, double Waste) Measure()
        {
            var (sb, lb, _, total, objects) = MeasureAll();
            return (sb, lb, objects == 0 ? 0 : (total - objects) * 100.0 / objects);
        }

        /// <summary>Slab bytes, live object bytes, slab bytes if every slab were full, object capacity, objects in use.</summary>
        public (long SlabBytes, long LiveBytes, long OptimalBytes, long Capacity, long Objects) MeasureAll()
        {
            long slabBytes = 0, live = 0, optimal = 0, total = 0, objects = 0;
            foreach (var t in new[] { Small, Large })
            {
                var st = t.Cache.GetStatistics();
                slabBytes += st.Pages * 4096;
                optimal += (st.OptimalSlabs << st.Order) * 4096;
                live += t.Count * t.Cache.ObjectSize;
                total += st.TotalObjects; objects += st.Objects;
            }
            return (slabBytes, live, optimal, total, objects);
        }
    }

    private sealed record RunResult(
        string Label, double BuildRatio, List<(double T, double Ratio)> Series, long Allocations, long Gets, double TrafficSeconds,
        double MaxAllocMicros, double P999AllocMicros, long AllocsOver1Ms, double FinalRatio, double SettleSeconds,
        TimeSpan DefragCpu, long Steps, long Moved, long SlabsFreed, long Corrupt, long VerifyBad, int Gen0, int Gen1, int Gen2,
        double MaxStepCpuMicros, double FinalFloor, double FinalCapacityRatio, double ClientCpuSeconds, double GcPauseMs);

    private static readonly long[] s_latencies = new long[1 << 22];

    public static int Run(string[] args)
    {
        var s = Parse(args);
        Console.WriteLine($"redis-defrag: scale {s.Scale}, traffic {s.TrafficSeconds} s, settle up to {s.SettleSeconds} s, seed {s.Seed}, " +
                          (s.DefaultKnobs ? "default knobs" : "knobs as Redis' test (threshold_lower 5, threshold_stop 1), CPU budget at its defaults 1..25%"));
        Console.WriteLine($"machine: {Environment.ProcessorCount} CPUs, .NET {Environment.Version}, {(GCSettings() )}");
        var off = RunOnce(s, defrag: false);
        Print(off);
        var on = RunOnce(s, defrag: true);
        Print(on);
        double offRate = off.Allocations / off.TrafficSeconds, onRate = on.Allocations / on.TrafficSeconds;
        double offCpuRate = off.Allocations / off.ClientCpuSeconds, onCpuRate = on.Allocations / on.ClientCpuSeconds;
        Console.WriteLine();
        Console.WriteLine("| goal | target | measured | met |");
        Console.WriteLine("|---|---|---|---|");
        Console.WriteLine($"| fragmentation before defrag | > 1.4 | {on.BuildRatio:F3} | {(on.BuildRatio > 1.4 ? "yes" : "no")} |");
        Console.WriteLine($"| ratio after defrag (slab bytes / live object bytes) | <= 1.05 | {on.FinalRatio:F3} (floor with every slab full: {on.FinalFloor:F3}) | {(on.FinalRatio <= 1.05 ? "yes" : "no")} |");
        Console.WriteLine($"| ratio after defrag (object capacity / objects in use) | <= 1.05 | {on.FinalCapacityRatio:F3} | {(on.FinalCapacityRatio <= 1.05 ? "yes" : "no")} |");
        Console.WriteLine($"| longest allocation pause (defrag on) | <= 1 ms | {on.MaxAllocMicros:F0} us (off: {off.MaxAllocMicros:F0} us) | {(on.MaxAllocMicros <= 1000 ? "yes" : "no")} |");
        Console.WriteLine($"| allocation throughput, on vs off | within 10% | {onRate:N0}/s vs {offRate:N0}/s ({(onRate / offRate - 1) * 100:+0.0;-0.0}%) | {(onRate >= 0.9 * offRate ? "yes" : "no")} |");
        Console.WriteLine($"| allocation throughput per client CPU second, on vs off | within 10% | {onCpuRate:N0} vs {offCpuRate:N0} ({(onCpuRate / offCpuRate - 1) * 100:+0.0;-0.0}%) | {(onCpuRate >= 0.9 * offCpuRate ? "yes" : "no")} |");
        Console.WriteLine($"| data intact | 0 bad | {on.Corrupt + on.VerifyBad + off.Corrupt + off.VerifyBad} | {(on.Corrupt + on.VerifyBad + off.Corrupt + off.VerifyBad == 0 ? "yes" : "no")} |");
        return on.Corrupt + on.VerifyBad + off.Corrupt + off.VerifyBad == 0 ? 0 : 1;
    }

    private static string GCSettings() =>
        $"GC {(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")}, latency mode {System.Runtime.GCSettings.LatencyMode}";

    private static RunResult RunOnce(Settings s, bool defrag)
    {
        using var a = new SlabAllocator(new SlabOptions { SlubDebug = "-", BytesPerNode = 1L << 30, EmulatedNodes = 1 });
        long cap = (long)(100L * 1024 * 1024 * s.Scale);
        WarmUp(a);
        var ks = new Keyspace(a, cap, s.Seed);
        int small = (int)(700_000 * s.Scale), large = (int)(170_000 * s.Scale);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < small; i++) ks.Set(large: false);
        for (int i = 0; i < large; i++) ks.Set(large: true);
        ks.Small.Cache.FlushAll(); ks.Large.Cache.FlushAll();
        var (sb, lb, _) = ks.Measure();
        double buildRatio = (double)sb / lb;
        Console.WriteLine($"[{(defrag ? "on " : "off")}] built in {sw.Elapsed.TotalSeconds:F1} s: {ks.Live:N0} live keys ({ks.Small.Count:N0} x 158 B, {ks.Large.Count:N0} x 308 B), " +
                          $"{ks.Evictions:N0} evictions, slab bytes {sb / 1048576.0:F1} MiB / live {lb / 1048576.0:F1} MiB = {buildRatio:F3}");

        if (!defrag)
        {
            foreach (var t in new[] { ks.Small, ks.Large }) t.Cache.ActiveDefrag = t.Cache.ActiveDefrag with { Enabled = false };
        }
        else if (!s.DefaultKnobs)
        {
            foreach (var t in new[] { ks.Small, ks.Large })
            {
                string dir = a.Sysfs.DirectoryName(t.Cache);
                a.Sysfs.Write($"{dir}/active_defrag_threshold_stop", "1");
                a.Sysfs.Write($"{dir}/active_defrag_threshold_lower", "5");
            }
        }
        using var metrics = new SlubMetrics(a);
        var series = new List<(double, double)>();
        var clock = Stopwatch.StartNew();
        using var stopSampler = new CancellationTokenSource();
        var sampler = new Thread(() =>
        {
            while (!stopSampler.IsCancellationRequested)
            {
                var (x, y, _) = ks.Measure();
                lock (series) series.Add((clock.Elapsed.TotalSeconds, y == 0 ? 0 : (double)x / y));
                stopSampler.Token.WaitHandle.WaitOne(250);
            }
        }) { IsBackground = true, Name = "ratio-sampler" };
        long newSlabs0 = ks.Small.Cache.Events.AllocSlab + ks.Large.Cache.Events.AllocSlab;
        int gc0 = GC.CollectionCount(0), gc1 = GC.CollectionCount(1), gc2 = GC.CollectionCount(2);
        var gcPause0 = GC.GetTotalPauseDuration();
        using var gcLog = new GcEventLog();
        long managed0 = GC.GetTotalAllocatedBytes(precise: true);
        BackgroundDefragmenter? bg = defrag ? a.StartBackgroundDefrag() : null;
        sampler.Start();

        // Traffic: one client thread, half GETs, half SETs of new keys (150 B : 300 B as 700 : 170), LRU eviction at the cap.
        // Each batch of 256 operations is bracketed by the thread's schedstat, so the batches that hold a
        // pause over 1 ms can be split into time on a CPU, time runnable but not running (preempted: the
        // machine's load) and time asleep (blocked, e.g. on a contended lock).
        var latencies = s_latencies;
        long allocs = 0, gets = 0;
        using var sched = new ThreadSchedStat();
        var pauses = new PauseAttribution();
        long clientCpu0 = ThreadCpuClock.IsAvailable ? ThreadCpuClock.NowNanoseconds() : 0;
        var traffic = Stopwatch.StartNew();
        long end = (long)(s.TrafficSeconds * Stopwatch.Frequency);
        var rng = new Random(s.Seed + 1);
        while (traffic.ElapsedTicks < end)
        {
            var (cpu0, delay0) = sched.Read();
            long wall0 = Stopwatch.GetTimestamp(), batchMax = 0;
            for (int i = 0; i < 256; i++)
            {
                if (rng.Next(2) == 0) { ks.Get(); gets++; continue; }
                long took = ks.Set(large: rng.Next(870) >= 700);
                if (allocs < latencies.Length) latencies[allocs] = took;
                if (took > batchMax) batchMax = took;
                allocs++;
            }
            if (batchMax * 1000 > Stopwatch.Frequency)
            {
                var (cpu1, delay1) = sched.Read();
                pauses.Add(batchMax, Stopwatch.GetTimestamp() - wall0, cpu1 - cpu0, delay1 - delay0, traffic.Elapsed.TotalSeconds);
            }
        }
        double trafficSeconds = traffic.Elapsed.TotalSeconds;
        double clientCpuSeconds = ThreadCpuClock.IsAvailable ? (ThreadCpuClock.NowNanoseconds() - clientCpu0) / 1e9 : trafficSeconds;
        long newSlabs = ks.Small.Cache.Events.AllocSlab + ks.Large.Cache.Events.AllocSlab - newSlabs0;
        Console.WriteLine($"[{(defrag ? "on " : "off")}] new slabs allocated during the traffic: {newSlabs:N0}");
        double trafficEnd = clock.Elapsed.TotalSeconds;

        // Settle: traffic stopped; the defragmenter goes on until both caches stop running (or the time limit).
        var settle = Stopwatch.StartNew();
        if (bg is not null)
        {
            while (settle.Elapsed.TotalSeconds < s.SettleSeconds && (ks.Small.Cache.ActiveDefragRunning || ks.Large.Cache.ActiveDefragRunning || settle.Elapsed.TotalSeconds < 0.5))
                Thread.Sleep(50);
        }
        double settleSeconds = settle.Elapsed.TotalSeconds;
        var defragCpu = bg?.CpuTime ?? TimeSpan.Zero;
        double longest = bg?.LongestStepCpu.TotalMicroseconds ?? 0;
        long steps = bg?.Steps ?? 0;
        bg?.Dispose();
        stopSampler.Cancel();
        sampler.Join();
        int g0 = GC.CollectionCount(0) - gc0, g1 = GC.CollectionCount(1) - gc1, g2 = GC.CollectionCount(2) - gc2;
        double gcPauseMs = (GC.GetTotalPauseDuration() - gcPause0).TotalMilliseconds;
        Console.WriteLine($"[{(defrag ? "on " : "off")}] {gcLog.Describe()}");
        Console.WriteLine($"[{(defrag ? "on " : "off")}] managed bytes allocated during the run: {GC.GetTotalAllocatedBytes(precise: true) - managed0:N0}");
        ks.Small.Cache.FlushAll(); ks.Large.Cache.FlushAll();
        var (fsb, flb, fopt, fcap, fobj) = ks.MeasureAll();
        Console.WriteLine($"[{(defrag ? "on " : "off")}] final: slab bytes / live bytes {(double)fsb / flb:F3}; floor with every slab full {(double)fopt / flb:F3} " +
                          $"(slot and page-tail overhead); slab bytes / floor {(double)fsb / fopt:F3}; object capacity / objects in use {(double)fcap / fobj:F3}");
        foreach (var t in new[] { ks.Small, ks.Large })
        {
            var st = t.Cache.GetStatistics();
            Console.WriteLine($"[{(defrag ? "on " : "off")}] {t.Cache.Name}: objects {st.Objects:N0} in {st.Slabs:N0} slabs of {st.ObjectsPerSlab} (order {st.Order}), " +
                              $"partial {st.Partial:N0}, waste {BackgroundDefragmenter.Waste(st):F2}%, pages above optimal {st.Pages - (st.OptimalSlabs << st.Order):N0}, " +
                              $"longest list-lock hold in defrag {t.Cache.Defrag.LongestListLockHold.TotalMicroseconds:F0} us wall, {t.Cache.Defrag.LongestListLockHoldCpu.TotalMicroseconds:F0} us CPU");
        }

        int n = (int)Math.Min(allocs, latencies.Length);
        Array.Sort(latencies, 0, n);
        double us(long ticks) => ticks * 1e6 / Stopwatch.Frequency;
        long over1ms = 0;
        for (int i = n - 1; i >= 0 && us(latencies[i]) > 1000; i--) over1ms++;
        long Over(double limitUs) { long c = 0; for (int i = n - 1; i >= 0 && us(latencies[i]) > limitUs; i--) c++; return c; }
        Console.WriteLine($"[{(defrag ? "on " : "off")}] allocation latency histogram: > 10 us {Over(10):N0}, > 100 us {Over(100):N0}, > 1 ms {Over(1000):N0}, > 5 ms {Over(5000):N0} (of {n:N0})");
        Console.WriteLine($"[{(defrag ? "on " : "off")}] {pauses.Describe(sched.IsAvailable)}");
        long moved = ks.Small.Cache.Defrag.ObjectsMoved + ks.Large.Cache.Defrag.ObjectsMoved;
        long freed = ks.Small.Cache.Defrag.SlabsFreed + ks.Large.Cache.Defrag.SlabsFreed;
        var seriesCopy = new List<(double, double)>(series) { (clock.Elapsed.TotalSeconds, (double)fsb / flb) };
        Console.WriteLine($"[{(defrag ? "on " : "off")}] traffic ended at t={trafficEnd:F1} s");
        return new RunResult(defrag ? "defrag on" : "defrag off", buildRatio, seriesCopy, allocs, gets, trafficSeconds,
            n > 0 ? us(latencies[n - 1]) : 0, n > 0 ? us(latencies[(int)(n * 0.999)]) : 0, over1ms,
            (double)fsb / flb, settleSeconds, defragCpu, steps, moved, freed, ks.Corrupt, ks.VerifyAll(), g0, g1, g2, bg is null ? 0 : longest, (double)fopt / flb, (double)fcap / fobj, clientCpuSeconds, gcPauseMs);
    }

    // Runs the defrag and background paths once on a small throwaway cache, so JIT compilation of code
    // that runs under a list lock is not counted as a lock hold (or an allocation pause) in the measurement.
    private static void WarmUp(SlabAllocator a)
    {
        var t = new MovableHandleTable(a, "warmup", 64);
        var hs = new List<long>();
        for (int i = 0; i < 20_000; i++) hs.Add(t.Allocate());
        for (int i = 0; i < hs.Count; i++) if (i % 3 != 0) t.Free(hs[i]);
        t.Cache.FlushAll();
        t.Cache.ActiveDefrag = t.Cache.ActiveDefrag with { IgnorePages = 0 };
        using (var bg = a.StartBackgroundDefrag())
            for (int i = 0; i < 100 && bg.Steps < 20; i++) Thread.Sleep(20);
        t.Cache.Shrink();
        using var m = new SlubMetrics(a);
    }

    /// <summary>Sums, over the batches that held an allocation over 1 ms, where the batch's wall time went.</summary>
    private sealed class PauseAttribution
    {
        private long _batches, _pauseTicks, _wallTicks, _cpuNs, _delayNs, _worstPause, _worstWall, _worstCpu, _worstDelay;
        private readonly int[] _perSecond = new int[64];

        public void Add(long pauseTicks, long wallTicks, long cpuNs, long delayNs, double atSeconds)
        {
            _perSecond[Math.Clamp((int)atSeconds, 0, _perSecond.Length - 1)]++;
            _batches++; _pauseTicks += pauseTicks; _wallTicks += wallTicks; _cpuNs += cpuNs; _delayNs += delayNs;
            if (pauseTicks > _worstPause) { _worstPause = pauseTicks; _worstWall = wallTicks; _worstCpu = cpuNs; _worstDelay = delayNs; }
        }

        private static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

        public string Describe(bool available)
        {
            if (_batches == 0) return "no allocation over 1 ms";
            if (!available) return $"{_batches} batches with an allocation over 1 ms (no schedstat to attribute them)";
            double wall = Ms(_wallTicks), cpu = _cpuNs / 1e6, delay = _delayNs / 1e6;
            return $"{_batches} batches of 256 ops held an allocation over 1 ms (pauses {Ms(_pauseTicks):F1} ms, batches {wall:F1} ms wall): " +
                   $"on CPU {cpu:F1} ms, runnable but preempted {delay:F1} ms, asleep/blocked {Math.Max(0, wall - cpu - delay):F1} ms; " +
                   $"worst pause {Ms(_worstPause):F2} ms in a batch of {Ms(_worstWall):F2} ms wall = {_worstCpu / 1e6:F2} CPU + {_worstDelay / 1e6:F2} preempted + {Math.Max(0, Ms(_worstWall) - _worstCpu / 1e6 - _worstDelay / 1e6):F2} asleep; " +
                   $"by second of traffic: {string.Join(" ", _perSecond.Take(Math.Max(1, Array.FindLastIndex(_perSecond, c => c > 0) + 1)))}";
        }
    }

    private static void Print(RunResult r)
    {
        Console.WriteLine($"== {r.Label}");
        Console.WriteLine($"ratio before {r.BuildRatio:F3}, after {r.FinalRatio:F3}; traffic {r.TrafficSeconds:F1} s: {r.Allocations:N0} allocations " +
                          $"({r.Allocations / r.TrafficSeconds:N0}/s; client thread {r.ClientCpuSeconds:F2} s CPU, {r.Allocations / r.ClientCpuSeconds:N0}/CPU-s), {r.Gets:N0} GETs; allocation latency max {r.MaxAllocMicros:F1} us, " +
                          $"p99.9 {r.P999AllocMicros:F2} us, {r.AllocsOver1Ms} over 1 ms");
        Console.WriteLine($"settle {r.SettleSeconds:F1} s; defragmenter CPU {r.DefragCpu.TotalMilliseconds:F0} ms in {r.Steps:N0} steps; " +
                          $"objects moved {r.Moved:N0}, slabs freed {r.SlabsFreed:N0}; longest step {r.MaxStepCpuMicros:F0} us CPU; GCs gen0/1/2 {r.Gen0}/{r.Gen1}/{r.Gen2}, GC pauses {r.GcPauseMs:F1} ms in all; corrupt {r.Corrupt + r.VerifyBad}");
        Console.WriteLine("ratio over time (s: ratio): " + string.Join(", ",
            Thin(r.Series, 40).Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.T:F1}: {p.Ratio:F3}"))));
    }

    private static IEnumerable<(double T, double Ratio)> Thin(List<(double T, double Ratio)> s, int max)
    {
        if (s.Count <= max) return s;
        var list = new List<(double, double)>();
        for (int i = 0; i < max - 1; i++) list.Add(s[(int)((long)i * (s.Count - 1) / (max - 1))]);
        list.Add(s[^1]);
        return list;
    }

    private static Settings Parse(string[] args)
    {
        double scale = 1, traffic = 10, settle = 60;
        int seed = 42;
        bool defaults = false;
        for (int i = 1; i < args.Length; i++)
        {
            string v = i + 1 < args.Length ? args[i + 1] : "";
            switch (args[i])
            {
                case "--scale": scale = double.Parse(v, CultureInfo.InvariantCulture); i++; break;
                case "--traffic-seconds": traffic = double.Parse(v, CultureInfo.InvariantCulture); i++; break;
                case "--settle-seconds": settle = double.Parse(v, CultureInfo.InvariantCulture); i++; break;
                case "--seed": seed = int.Parse(v, CultureInfo.InvariantCulture); i++; break;
                case "--default-knobs": defaults = true; break;
                default: throw new ArgumentException($"redis-defrag: unknown option {args[i]} (--scale X, --traffic-seconds S, --settle-seconds S, --seed N, --default-knobs)");
            }
        }
        return new Settings(scale, traffic, settle, seed, defaults);
    }
}
