using System.Diagnostics;

namespace Slub;

/// <summary>
/// Background ("active") defragmentation of an allocator's movable caches, a little at a time under a CPU
/// budget, in the manner of Redis/Valkey active defrag. Opt-in: start it with
/// <see cref="SlabAllocator.StartBackgroundDefrag"/>; dispose it to stop the thread.
/// </summary>
/// <remarks>
/// <para><b>Policy.</b> Each movable cache's waste (<c>(total_objects - objects) * 100 / objects</c>, objects
/// parked in thread magazines counting as free) and pages above optimal are read from the nodes' running
/// counters — O(1), no lock — every <see cref="ActiveDefragSettings.IntervalMs"/> while the cache is idle and
/// before every step while it runs. A cache starts
/// when waste exceeds <see cref="ActiveDefragSettings.ThresholdLower"/> and it holds at least
/// <see cref="ActiveDefragSettings.IgnorePages"/> pages more than it needs; it stops when waste falls to
/// <see cref="ActiveDefragSettings.ThresholdStop"/> (or its excess pages to half the ignore limit).
/// While any cache runs, the thread works on the most fragmented one in bounded steps: one call of the
/// defrag core on one node, emptying at most <see cref="ActiveDefragSettings.MaxSlabsPerStep"/> slabs.</para>
/// <para><b>Sources and targets.</b> A movable cache's partial lists are kept in fill-level buckets, fullest
/// at the head, where allocation takes slabs. A step looks at a bounded window at the sparse tail and takes
/// partial slabs whose use is at most the node's average partial-slab use times 1.125 (Redis' defrag hint;
/// never below the cache's <c>defrag_used_ratio</c>), and only as many as the other partial slabs can
/// absorb, so the replacements land in the fullest slabs. Objects therefore only move from sparser slabs into
/// fuller ones, and a moved object is not moved back unless frees later make its new slab the sparser one.
/// Slabs a CPU owns (its slab and its partial chain — the slabs allocation is filling) are frozen and never
/// sources.</para>
/// <para><b>CPU budget.</b> The share is interpolated between <see cref="ActiveDefragSettings.CycleMin"/>
/// and <see cref="ActiveDefragSettings.CycleMax"/> percent of one core as waste goes from the lower to the
/// upper threshold. After each step the thread reads its own CPU clock (<c>CLOCK_THREAD_CPUTIME_ID</c>)
/// and sleeps <c>cost * (100 - share) / share</c>, so over any window it uses at most about the share.</para>
/// <para><b>Locks.</b> A step holds the allocator's <c>SlabMutex</c> only by try-lock (it skips the step
/// when the cache list is busy), the node's list lock while it looks at at most <c>4 × max_slabs + 8</c>
/// slabs and again while it puts at most <c>max_slabs</c> back, one slab lock at a time while isolating, and
/// no allocator lock while migrating. Its thread sleeps rather than spins when it finds a lock word held
/// (<see cref="SpinLockWord.MarkBackgroundThread"/>), and runs in SCHED_BATCH on Linux, so its wake-ups do
/// not preempt allocating threads (<see cref="OsThreadScheduling.TryMakeCurrentThreadBatch"/>). Magazines are flushed at most once per interval, only
/// while a cache runs. See docs/background-defrag.md for the bound on each lock.</para>
/// <para><b>Thread-safety.</b> Every member is thread-safe: the counters are read atomically (each on its own, not
/// as one snapshot), and <see cref="Dispose"/> may be called from any thread but the defragmenter's own.</para>
/// </remarks>
public sealed class BackgroundDefragmenter : IDisposable
{
    private const long NsPerMs = 1_000_000;

    private readonly SlabAllocator _allocator;
    private readonly Dictionary<KmemCache, CacheState> _states = new(ReferenceEqualityComparer.Instance);
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread? _thread;
    private long _cpuNs, _steps, _sleeps, _errors, _longestStepNs;
    private volatile int _osThreadId;
    private volatile Exception? _lastError;
    private int _disposing;

    private sealed class CacheState
    {
        public bool Running;
        public long NextCheck;       // Stopwatch timestamp of the next measurement when idle
        public long NextFlush;       // next magazine flush while running
        public long BackoffUntil;    // no steps before this (no progress possible, or a callback failed)
        public int NodeCursor;
        public double LastWaste;
    }

    /// <summary>What one iteration of the loop did (for the loop and for tests that drive it by hand).</summary>
    internal readonly record struct Iteration(KmemCache? Cache, int Node, long CpuNs, double Share, long SleepNs, bool Progress);

    internal BackgroundDefragmenter(SlabAllocator allocator, bool startThread)
    {
        _allocator = allocator;
        if (!startThread) return;
        _thread = new Thread(Run) { IsBackground = true, Name = "slub-defrag" };
        _thread.Start();
    }

    /// <summary>CPU time this defragmenter's thread has used, read from the thread's own CPU clock.</summary>
    public TimeSpan CpuTime => TimeSpan.FromTicks(Interlocked.Read(ref _cpuNs) / 100);

    /// <summary>The most CPU time one step (measurement included) has taken.</summary>
    public TimeSpan LongestStepCpu => TimeSpan.FromTicks(Interlocked.Read(ref _longestStepNs) / 100);

    /// <summary>Bounded steps run so far.</summary>
    public long Steps => Interlocked.Read(ref _steps);

    /// <summary>Times the thread slept to stay within its CPU budget.</summary>
    public long BudgetSleeps => Interlocked.Read(ref _sleeps);

    /// <summary>Callback or internal failures caught (the cache concerned is left alone for one interval).</summary>
    public long Errors => Interlocked.Read(ref _errors);

    /// <summary>The last failure caught, or null.</summary>
    public Exception? LastError => _lastError;

    /// <summary>The kernel thread id of the defragmenter's thread (0 before it started): /proc/self/task/&lt;id&gt;.</summary>
    public int OsThreadId => _osThreadId;

    /// <summary>Caches the defragmenter keeps state for (for tests).</summary>
    internal int TrackedCaches
    {
        get { lock (_states) return _states.Count; }
    }

    /// <summary>True until disposed.</summary>
    public bool IsRunning => !_stop.IsCancellationRequested;

    private void Run()
    {
        SpinLockWord.MarkBackgroundThread();   // never spin-wait on an allocating thread that holds a lock
        OsThreadScheduling.TryMakeCurrentThreadBatch();   // never preempt an allocating thread by waking up
        _osThreadId = OsThreadClock.CurrentThreadId();
        var token = _stop.Token;
        long debtNs = 0;
        while (!token.IsCancellationRequested)
        {
            Iteration it;
            try
            {
                it = Iterate(Stopwatch.GetTimestamp());
            }
            catch (Exception e)
            {
                // Never take the process down from a background thread; note it and slow down.
                Interlocked.Increment(ref _errors);
                _lastError = e;
                token.WaitHandle.WaitOne(100);
                continue;
            }
            if (it.Cache is null)
            {
                debtNs = 0;
                token.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(IdleWaitMs()));
                continue;
            }
            debtNs += it.SleepNs;
            if (debtNs >= NsPerMs)
            {
                long t0 = Stopwatch.GetTimestamp();
                token.WaitHandle.WaitOne(TimeSpan.FromTicks(debtNs / 100));
                Interlocked.Increment(ref _sleeps);
                debtNs -= (long)Stopwatch.GetElapsedTime(t0).TotalNanoseconds;
                if (debtNs < 0) debtNs = 0;   // oversleeping only lowers the share; never bank it
            }
        }
    }

    private int IdleWaitMs()
    {
        long now = Stopwatch.GetTimestamp();
        long next = long.MaxValue;
        lock (_states)
            foreach (var s in _states.Values)
                next = Math.Min(next, s.Running ? s.BackoffUntil : s.NextCheck);
        if (next == long.MaxValue) return 100;
        double ms = Stopwatch.GetElapsedTime(now, Math.Max(now, next)).TotalMilliseconds;
        return (int)Math.Clamp(Math.Ceiling(ms), 1, 1000);
    }

    /// <summary>
    /// One pass of the loop: measure the caches that are due, update which run, and run one bounded step on
    /// the most fragmented running cache. Returns what it did and how long to sleep for the budget.
    /// </summary>
    internal Iteration Iterate(long now)
    {
        long cpu0 = OsThreadClock.NowNanoseconds();
        if (!_allocator.SlabMutex.TryEnter()) return new Iteration(null, -1, 0, 0, 0, false);
        KmemCache? best = null;
        double bestWaste = 0;
        CacheState? bestState = null;
        Iteration result;
        try
        {
            int seen = 0;
            foreach (var cache in _allocator.CachesLocked)
            {
                if (!cache.IsMovable) break;   // movable caches are at the front of the list
                seen++;
                var settings = cache.ActiveDefrag;
                CacheState state;
                lock (_states)
                    if (!_states.TryGetValue(cache, out state!)) _states[cache] = state = new CacheState { NextCheck = now };
                if (!settings.Enabled || cache.DefragUsedRatio == 0 || cache.IsDestroyed)
                {
                    SetRunning(cache, state, false);
                    continue;
                }
                if (!state.Running && now < state.NextCheck) continue;
                if (state.Running && now < state.BackoffUntil) continue;
                // Measured from the nodes' running counters (O(1), no list lock), so a running cache is
                // measured before every step and stops as soon as it reaches the stop threshold. Objects in
                // thread magazines count as free.
                var (slabs, total, free) = cache.ReadFragmentation();
                long objects = total - free;
                double waste = Waste(total, objects);
                long optimalSlabs = (objects + cache.ObjectsPerSlab - 1) / cache.ObjectsPerSlab;
                long excessPages = (slabs - optimalSlabs) << cache.Order;
                state.NextCheck = now + MsToTicks(settings.IntervalMs);
                state.LastWaste = waste;
                if (state.Running)
                {
                    if (waste <= settings.ThresholdStop || excessPages < settings.IgnorePages / 2) SetRunning(cache, state, false);
                }
                else if (waste > settings.ThresholdLower && excessPages >= settings.IgnorePages)
                {
                    SetRunning(cache, state, true);
                }
                if (state.Running && (best is null || waste > bestWaste))
                {
                    best = cache; bestWaste = waste; bestState = state;
                }
            }
            ForgetDestroyed(seen);
            if (best is null)
            {
                Interlocked.Add(ref _cpuNs, OsThreadClock.NowNanoseconds() - cpu0);
                return new Iteration(null, -1, 0, 0, 0, false);
            }
            if (now >= bestState!.NextFlush)
            {
                // Once per interval while running: objects parked in thread magazines go back to their
                // slabs, or a source holding one could not empty. Costs a process-wide barrier, which is
                // why it is not done per step; allocating threads never wait for it (they bypass their
                // magazine while the request stands).
                best.FlushMagazines();
                bestState.NextFlush = now + MsToTicks(best.ActiveDefrag.IntervalMs);
            }
            result = Step(best, bestState, bestWaste, now, cpu0);
        }
        finally
        {
            _allocator.SlabMutex.Exit();
        }
        return result;
    }

    private Iteration Step(KmemCache cache, CacheState state, double waste, long now, long cpu0)
    {
        var settings = cache.ActiveDefrag;
        // The node with the most free objects on its partial slabs, starting after the last one used.
        var nodes = cache.Nodes;
        int node = -1;
        long mostFree = 0;
        for (int i = 0; i < nodes.Length; i++)
        {
            int k = (state.NodeCursor + i) % nodes.Length;
            long partialFree = Volatile.Read(ref nodes[k].PartialFree);
            if (Volatile.Read(ref nodes[k].Partial.Count) > 1 && partialFree > mostFree) { mostFree = partialFree; node = k; }
        }
        bool progress = false;
        if (node >= 0)
        {
            state.NodeCursor = node + 1;
            var n = nodes[node];
            // Redis' defrag hint: a slab is worth emptying when its use is below 1.125 times the average.
            long capacity = Math.Max(1, Volatile.Read(ref n.PartialCapacity));
            long inusePartial = Math.Max(0, capacity - Volatile.Read(ref n.PartialFree));
            int limit = (int)Math.Min(100, (inusePartial * 1125 + capacity * 10 - 1) / (capacity * 10));
            int ratio = Math.Clamp(Math.Max(cache.DefragUsedRatio, limit), 1, 100);
            long freedBefore = cache.Defrag.SlabsFreed, movedBefore = cache.Defrag.ObjectsMoved + cache.Defrag.ObjectsFreed;
            try
            {
                cache.DefragNode(node, node, ratio, DefragPolicy.FillFullestFirst, shrinking: false, maxSlabs: settings.MaxSlabsPerStep);
            }
            catch (DefragmentationException e)
            {
                Interlocked.Increment(ref _errors);
                _lastError = e;
            }
            progress = cache.Defrag.SlabsFreed != freedBefore || cache.Defrag.ObjectsMoved + cache.Defrag.ObjectsFreed != movedBefore;
        }
        if (!progress) state.BackoffUntil = now + MsToTicks(settings.IntervalMs);
        long cost = Math.Max(0, OsThreadClock.NowNanoseconds() - cpu0);
        double share = settings.CpuShareFor(waste);
        long sleep = (long)(cost * (100 - share) / share);
        Interlocked.Add(ref _cpuNs, cost);
        Interlocked.Increment(ref _steps);
        if (cost > Interlocked.Read(ref _longestStepNs)) Interlocked.Exchange(ref _longestStepNs, cost);
        Interlocked.Add(ref cache.Defrag._bgCpuNs, cost);
        Interlocked.Increment(ref cache.Defrag._bgSteps);
        return new Iteration(cache, node, cost, share, sleep, progress);
    }

    // A cache destroyed since the last pass is off the list: drop its state, or a stale "running" one would
    // keep the idle loop waking every millisecond (IdleWaitMs) and the cache reporting itself running.
    private void ForgetDestroyed(int listed)
    {
        lock (_states)
        {
            if (_states.Count <= listed) return;
            List<KmemCache>? gone = null;
            foreach (var cache in _states.Keys)
                if (cache.IsDestroyed) (gone ??= new()).Add(cache);
            if (gone is null) return;
            foreach (var cache in gone)
            {
                SetRunning(cache, _states[cache], false);
                _states.Remove(cache);
            }
        }
    }

    private static void SetRunning(KmemCache cache, CacheState state, bool running)
    {
        state.Running = running;
        state.BackoffUntil = 0;
        state.NextFlush = 0;   // a cache that starts flushes the magazines before its first step
        cache.ActiveDefragRunning = running;
    }

    /// <summary>Wasted object capacity in percent of objects in use (10000 when slabs hold no object at all).</summary>
    internal static double Waste(CacheStatistics st) => Waste(st.TotalObjects, st.Objects);

    private static double Waste(long totalObjects, long objects)
    {
        if (objects <= 0) return totalObjects > 0 ? 10_000 : 0;
        return (totalObjects - objects) * 100.0 / objects;
    }

    /// <summary>Refuses <paramref name="what"/> on the defragmenter's own thread: stopping waits for that thread.</summary>
    internal void ThrowIfOwnThread(string what)
    {
        if (_thread is not null && ReferenceEquals(Thread.CurrentThread, _thread))
            throw new InvalidOperationException($"{what} on the background defragmenter's own thread (from a mobility callback) would wait for itself; call it from another thread");
    }

    private static long MsToTicks(int ms) => ms * Stopwatch.Frequency / 1000;

    /// <summary>Stops the thread (waits for the current step to finish) and clears the caches' running flags.
    /// Idempotent; thread-safe (a second caller returns at once, possibly before the thread has stopped).</summary>
    /// <exception cref="InvalidOperationException">Called on the defragmenter's own thread, i.e. from a mobility
    /// callback it is running: it would wait for itself forever.</exception>
    public void Dispose()
    {
        ThrowIfOwnThread("Dispose");
        if (Interlocked.Exchange(ref _disposing, 1) != 0) return;
        _stop.Cancel();
        _thread?.Join();
        lock (_states)
            foreach (var (cache, state) in _states) SetRunning(cache, state, false);
        _allocator.BackgroundDefragStopped(this);
        _stop.Dispose();
    }
}
