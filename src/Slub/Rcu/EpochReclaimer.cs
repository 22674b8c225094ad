using System.Runtime.CompilerServices;

namespace Slub.Rcu;

/// <summary>
/// Epoch-based deferred reclamation (an RCU of our own): lock-free readers bracket their accesses with
/// <see cref="EnterRead"/> scopes; writers unlink an object and <see cref="Retire(nint, Action{nint})"/> it;
/// the object's free action runs only after every read section that might still hold it has ended.
/// </summary>
/// <remarks>
/// <para><b>Design.</b> A global epoch counter and one record per reader thread. Entering a read section
/// (outermost level only) stores the current epoch in the thread's record; leaving stores 0. Retiring tags the
/// object with the epoch current at that time (the object must already be unreachable for new readers). An
/// object retired at epoch <c>g</c> may be freed once every record is 0 or holds an epoch greater than
/// <c>g</c>: such readers started after the epoch moved past <c>g</c>, i.e. after the object was unlinked.</para>
/// <para><b>Fences.</b> Readers use plain (release) stores, which on their own could be reordered after the
/// reader's later loads. Every reclamation pass therefore first calls
/// <see cref="Interlocked.MemoryBarrierProcessWide"/> (Linux <c>membarrier</c>), the asymmetric-fence trick of
/// user-space RCU: it orders every thread's earlier stores before the pass's scan of the records, so a reader
/// whose record still reads 0 cannot yet have loaded a pointer that was unlinked before the pass. Readers thus
/// pay two stores and no atomic instruction.</para>
/// <para><b>API.</b> <see cref="Retire(nint, Action{nint})"/> never blocks: it queues the object and, every
/// <see cref="PollThreshold"/> retirements, runs a non-blocking pass (<see cref="Poll"/>) that frees what is
/// already safe. <see cref="Synchronize"/> waits for a full grace period (spinning, then yielding: readers
/// never block, so the wait is bounded by the longest read section) and returns only once everything retired
/// before it was called has been freed: the items still pending run on the calling thread, and items another
/// thread's pass had already taken are waited for (a pass takes its items off the pending list before running
/// them; see <see cref="Synchronize"/>). Read sections nest. Calling <see cref="Synchronize"/> inside a read section of the same
/// reclaimer would wait for itself and throws <see cref="InvalidOperationException"/> instead. A free action or
/// callback that throws does not keep the others of its pass from running; the failures are counted and
/// reported together by the next explicit <see cref="Poll"/> or <see cref="Synchronize"/>.</para>
/// <para><b>Users.</b> The XArray (nodes freed by erase, shrinking, destroy and migration) and the dentry
/// cache (dead dentries and replaced names, for its lock-free path walk).</para>
/// </remarks>
public sealed class EpochReclaimer
{
    /// <summary>Retirements between two automatic non-blocking passes.</summary>
    public const int PollThreshold = 256;

    /// <summary>A reader thread's record (for <see cref="EnterReadFast"/>).</summary>
    internal sealed class ReaderRecord
    {
        public long Active;          // 0: quiescent; otherwise the epoch seen at the outermost EnterRead
        public int Nesting;
        public Thread? Owner;
        /// <summary>The reclaimer this record belongs to (the thread-static cache is checked against it).</summary>
        public EpochReclaimer? Reclaimer;
        // Padding against false sharing between readers of different threads (records are separate objects,
        // but the allocator may place them next to each other).
#pragma warning disable CS0169
        private long _p1, _p2, _p3, _p4, _p5, _p6;
#pragma warning restore CS0169
    }

    private struct Retired
    {
        public long Epoch;
        public nint Item;
        public Action<nint>? Free;
        public Action? Callback;
    }

    private long _epoch = 1;
    private ReaderRecord[] _records = Array.Empty<ReaderRecord>();
    private readonly Lock _registryLock = new();
    private readonly ThreadLocal<ReaderRecord> _mine;
    private readonly Lock _pendingLock = new();
    private List<Retired> _pending = new();
    private int _sinceLastPoll;
    private long _gracePeriods, _freed, _retired;

    // The record this thread used last (one thread-static read, then a check of its reclaimer).
    [ThreadStatic] private static ReaderRecord? t_lastRecord;

    /// <summary>A process-wide instance for users that do not need their own.</summary>
    public static EpochReclaimer Shared { get; } = new();

    /// <summary>Creates an independent reclamation domain with its own epoch and reader records (see <see cref="Shared"/> for the process-wide one). Thread-safe, like every member but <see cref="ExitRead"/> and <see cref="ReadScope.Dispose"/>, which belong to the entering thread (a <see cref="ReadScope"/> cannot leave it).</summary>
    public EpochReclaimer() => _mine = new ThreadLocal<ReaderRecord>(Register);

    /// <summary>Completed <see cref="Synchronize"/> calls (full grace-period waits).</summary>
    public long GracePeriods => Volatile.Read(ref _gracePeriods);

    /// <summary>Objects retired so far.</summary>
    public long RetiredCount => Volatile.Read(ref _retired);

    /// <summary>Retired objects whose free action has run.</summary>
    public long FreedCount => Volatile.Read(ref _freed);

    /// <summary>Retired objects still waiting for their grace period.</summary>
    public int PendingCount { get { lock (_pendingLock) return _pending.Count; } }

    /// <summary>True if the calling thread is inside a read section of this reclaimer.</summary>
    public bool InReadSection => Record().Nesting > 0;

    /// <summary>
    /// A read-side critical section; dispose it (<c>using</c>) to leave. A <c>ref struct</c>, like
    /// <see cref="System.Threading.Lock.Scope"/>: it stays on the thread that entered the section (it cannot be stored
    /// in a field of a class, captured by a lambda or kept across an <c>await</c>), because the section is that
    /// thread's: a section left open on a thread holds back every later grace period for good.
    /// </summary>
    public readonly ref struct ReadScope : IDisposable
    {
        private readonly ReaderRecord? _record;
        private readonly int _depth;
        internal ReadScope(ReaderRecord record, int depth)
        {
            _record = record;
            _depth = depth;
        }

        /// <summary>
        /// Leaves the read section; a default scope does nothing. Dispose once, innermost scope first (as nested
        /// <c>using</c>s do).
        /// </summary>
        /// <exception cref="InvalidOperationException">The scope was disposed already, or an inner scope is still open;
        /// nothing is left then (an enclosing section stays open).</exception>
        public void Dispose()
        {
            if (_record is not null) _record.Reclaimer!.ExitScope(_record, _depth);
        }
    }

    /// <summary>Enters a read section (nestable). Objects reachable now stay allocated until it ends. Thread-safe: each thread has its own record; the scope belongs to the entering thread.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadScope EnterRead()
    {
        var r = Record();
        int depth = ++r.Nesting;
        if (depth == 1) Volatile.Write(ref r.Active, Volatile.Read(ref _epoch));
        return new ReadScope(r, depth);
    }

    /// <summary>
    /// <see cref="EnterRead"/> for an owner that is itself a <c>ref struct</c> bound to its thread and disposed once
    /// (<see cref="XArray.XaReader"/>): returns the record for <see cref="ExitReadSection"/> instead of a
    /// <see cref="ReadScope"/>, so the owner keeps one word (a wider reader stopped being kept in registers in the
    /// caller's load loop: sequential <c>XaReader.TryGetValue</c> 0.75 → 1.0 ns).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ReaderRecord EnterReadSection()
    {
        var r = Record();
        if (r.Nesting++ == 0) Volatile.Write(ref r.Active, Volatile.Read(ref _epoch));
        return r;
    }

    /// <summary>Leaves a section entered with <see cref="EnterReadSection"/>, on the same thread, once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void ExitReadSection(ReaderRecord r)
    {
        if (--r.Nesting == 0) Volatile.Write(ref r.Active, 0);
    }

    /// <summary><see cref="ReadScope.Dispose"/>: leaves the section entered at <paramref name="depth"/>, which must be the innermost one open.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ExitScope(ReaderRecord entered, int depth)
    {
        var r = Record();
        if (!ReferenceEquals(r, entered) || r.Nesting != depth) ThrowScopeMisuse(entered, r, depth);
        if (--r.Nesting == 0) Volatile.Write(ref r.Active, 0);
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowScopeMisuse(ReaderRecord entered, ReaderRecord current, int depth) =>
        throw new InvalidOperationException(!ReferenceEquals(entered, current)
            ? $"EpochReclaimer: a read section entered on thread {entered.Owner?.ManagedThreadId} was disposed on thread {Environment.CurrentManagedThreadId}; a ReadScope belongs to the thread that entered it"
            : current.Nesting < depth
                ? $"EpochReclaimer: read section scope disposed twice (it was at nesting level {depth}; {current.Nesting} section(s) open on this thread)"
                : $"EpochReclaimer: read section scope at nesting level {depth} disposed while {current.Nesting - depth} inner section(s) are open; dispose the innermost scope first");

    /// <summary>
    /// Enters a read section for a short, non-throwing, non-nesting hot path (one XArray load): returns the
    /// thread's record with its epoch published, or null if the thread is already inside a section (nothing to
    /// do then). Pair with <see cref="ExitReadFast"/>; nothing between the two may enter a section or throw.
    /// </summary>
    /// <remarks>
    /// It leaves <see cref="ReaderRecord.Nesting"/> alone: incrementing and decrementing it around every load
    /// chained each load to the previous one through a store-to-load forward of the same field (measured: 3 ns
    /// of a 3 ns enter/exit). Reading it only feeds a predicted branch, so consecutive loads overlap.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ReaderRecord? EnterReadFast()
    {
        var r = Record();
        if (r.Nesting != 0) return null;
        Volatile.Write(ref r.Active, Volatile.Read(ref _epoch));
        return r;
    }

    /// <summary>Leaves a section entered with <see cref="EnterReadFast"/> on the same thread.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void ExitReadFast(ReaderRecord? r)
    {
        if (r is not null) Volatile.Write(ref r.Active, 0);
    }

    /// <summary>Leaves the innermost read section; prefer disposing the scope <see cref="EnterRead"/> returned. Must run on the thread that entered the section.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void ExitRead()
    {
        var r = Record();
        if (r.Nesting <= 0) throw new InvalidOperationException("ExitRead without EnterRead");
        if (--r.Nesting == 0) Volatile.Write(ref r.Active, 0);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ReaderRecord Record()
    {
        var r = t_lastRecord;
        if (r is not null && ReferenceEquals(r.Reclaimer, this)) return r;
        return RecordSlow();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ReaderRecord RecordSlow()
    {
        var r = _mine.Value!;
        t_lastRecord = r;
        return r;
    }

    private ReaderRecord Register()
    {
        lock (_registryLock)
        {
            // Reuse the record of a thread that has died (its record is quiescent: scopes always exit).
            foreach (var old in _records)
            {
                if (old.Owner is { IsAlive: false } && Volatile.Read(ref old.Active) == 0)
                {
                    old.Owner = Thread.CurrentThread;
                    old.Nesting = 0;
                    return old;
                }
            }
            var r = new ReaderRecord { Owner = Thread.CurrentThread, Reclaimer = this };
            var grown = new ReaderRecord[_records.Length + 1];
            _records.CopyTo(grown, 0);
            grown[^1] = r;
            Volatile.Write(ref _records, grown);
            return r;
        }
    }

    /// <summary>
    /// Queues <paramref name="item"/> to be passed to <paramref name="free"/> after a grace period. The item must
    /// already be unreachable for readers that start from now on. Never blocks; may free other items whose
    /// grace period has passed (on the calling thread). Pass a cached delegate to avoid an allocation.
    /// Thread-safe; never throws what another item's free action throws (see <see cref="Poll"/>).
    /// </summary>
    public void Retire(nint item, Action<nint> free)
    {
        ArgumentNullException.ThrowIfNull(free);
        Enqueue(new Retired { Item = item, Free = free });
    }

    /// <summary>Runs <paramref name="callback"/> after a grace period (<c>call_rcu</c>). Never blocks. Thread-safe; never throws what another callback throws (see <see cref="Poll"/>).</summary>
    public void Retire(Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        Enqueue(new Retired { Callback = callback });
    }

    private void Enqueue(Retired r)
    {
        Interlocked.MemoryBarrier();   // the unlink is globally visible before the epoch is read
        bool poll;
        lock (_pendingLock)
        {
            r.Epoch = Volatile.Read(ref _epoch);
            _pending.Add(r);
            poll = ++_sinceLastPoll >= PollThreshold;
            if (poll) _sinceLastPoll = 0;
        }
        Interlocked.Increment(ref _retired);
        if (poll) PollCore(report: false);   // Retire never fails: a callback's exception waits for an explicit pass
    }

    /// <summary>Non-blocking pass: advances the epoch and frees every retired item no running reader can hold. Returns how many were freed.
    /// Thread-safe. Every ready item runs even if some throw.</summary>
    /// <exception cref="AggregateException">Callbacks or free actions threw, in this pass or in an automatic pass of
    /// <see cref="Retire(Action)"/> since the last report (each failure is reported once).</exception>
    public int Poll() => PollCore(report: true);

    private int PollCore(bool report)
    {
        long now = Interlocked.Increment(ref _epoch);
        Interlocked.MemoryBarrierProcessWide();
        long safe = now;   // items retired at an epoch below this are free to go
        foreach (var r in Volatile.Read(ref _records))
        {
            long a = Volatile.Read(ref r.Active);
            if (a != 0 && a < safe) safe = a;
        }
        return FreeBelow(safe, report, waitForEarlierPasses: false);
    }

    /// <summary>
    /// Waits for a grace period and for the callbacks it covers (<c>synchronize_rcu</c> then <c>rcu_barrier</c>):
    /// when it returns, every read section that was running when it was called has ended, and every item retired
    /// before the call has had its free action or callback run to completion — whether this call ran it or a
    /// pass on another thread (<see cref="Poll"/>, an automatic pass of Retire, another Synchronize) had taken it
    /// and was still running it; such passes are waited for (blocking, not spinning: a callback may block).
    /// Items retired after the call may or may not have run. Throws if the calling thread is inside a read
    /// section of this reclaimer. Thread-safe.
    /// </summary>
    /// <remarks>
    /// Called from inside a free action or callback of this reclaimer (a pass is running on the calling thread),
    /// it runs what is pending but does not wait for passes already running: not for its own, which is up the
    /// stack, nor for another thread's, whose callback might be waiting for this one. Items the caller's own pass
    /// has not reached yet, or that another running pass holds, may then still be outstanding when it returns.
    /// A Synchronize outside a callback that waits for a pass whose callback waits for that Synchronize's
    /// caller deadlocks, as <c>rcu_barrier</c> would.
    /// </remarks>
    /// <exception cref="AggregateException">Callbacks or free actions threw (see <see cref="Poll"/>); all the others ran.</exception>
    public void Synchronize() => SynchronizeCore(report: true);

    /// <summary><see cref="Synchronize()"/> that keeps callback failures for the next explicit pass: for callers such as a
    /// migrate callback, which must not fail because of someone else's callback.</summary>
    internal void SynchronizeQuietly() => SynchronizeCore(report: false);

    private void SynchronizeCore(bool report)
    {
        if (InReadSection)
            throw new InvalidOperationException("Synchronize inside a read section would wait for itself");
        long now = Interlocked.Increment(ref _epoch);
        Interlocked.MemoryBarrierProcessWide();
        foreach (var r in Volatile.Read(ref _records))
        {
            var spin = new SpinWait();
            while (true)
            {
                long a = Volatile.Read(ref r.Active);
                if (a == 0 || a >= now) break;
                spin.SpinOnce();
            }
        }
        Interlocked.Increment(ref _gracePeriods);
        FreeBelow(now, report, waitForEarlierPasses: true);
    }

    /// <summary>Failures of callbacks and free actions so far (each is also reported once by <see cref="Poll"/> or <see cref="Synchronize()"/>).</summary>
    public long CallbackFailures => Volatile.Read(ref _callbackFailures);
    private long _callbackFailures;
    private List<Exception>? _unreported;   // guarded by _pendingLock
    /// <summary>The list of a finished pass, reused by the next (guarded by <see cref="_pendingLock"/>): passes run every <see cref="PollThreshold"/> retirements.</summary>
    private List<Retired>? _spareReady;
    private const int MaxSpareReady = 16 * PollThreshold;

    /// <summary>
    /// A pass that has taken its ready items off <see cref="_pending"/> and is running them. Registered in
    /// <see cref="_running"/> (under <see cref="_pendingLock"/>) in the same critical section that takes the items,
    /// so an item retired before a <see cref="Synchronize()"/> is, at the moment that call takes its own items,
    /// either still pending (it takes it) or in a pass registered by then (it waits for that pass).
    /// </summary>
    private sealed class RunningPass
    {
        public readonly Thread Runner = Thread.CurrentThread;
        public bool Done;   // guarded by the object's monitor
    }

    private readonly List<RunningPass> _running = new();   // guarded by _pendingLock

    private int FreeBelow(long safe, bool report, bool waitForEarlierPasses)
    {
        List<Retired>? ready = null;
        RunningPass? mine = null;
        RunningPass[]? earlier = null;
        lock (_pendingLock)
        {
            int keep = 0;
            for (int i = 0; i < _pending.Count; i++)
            {
                var p = _pending[i];
                if (p.Epoch < safe)
                {
                    if (ready is null) { ready = _spareReady ?? new(); _spareReady = null; }
                    ready.Add(p);
                }
                else _pending[keep++] = p;
            }
            // Passes of other threads may still be running items retired before this Synchronize: wait for them.
            // Not from inside a free action or callback (a pass of this thread is up the stack): waiting for its own
            // pass would never end, and waiting for another thread's pass could close a cycle if that pass's callback
            // is itself waiting for this one.
            if (waitForEarlierPasses && _running.Count > 0 && !_running.Exists(static r => r.Runner == Thread.CurrentThread))
                earlier = _running.ToArray();
            if (ready is not null)
            {
                _pending.RemoveRange(keep, _pending.Count - keep);
                _running.Add(mine = new RunningPass());
            }
        }
        int count = 0;
        if (ready is not null)
        {
            count = ready.Count;
            RunReady(ready, mine!);
        }
        if (earlier is not null)
        {
            foreach (var pass in earlier)
            {
                lock (pass)
                {
                    while (!pass.Done) Monitor.Wait(pass);
                }
            }
        }
        if (ready is null && !report) return 0;
        List<Exception>? toThrow = null;
        lock (_pendingLock)
        {
            if (report && _unreported is not null) { toThrow = _unreported; _unreported = null; }
        }
        if (toThrow is not null) throw new AggregateException("EpochReclaimer: retired callbacks threw; every other one ran", toThrow);
        return count;
    }

    /// <summary>Runs a pass's items, records their failures, then marks the pass done (waking any waiting <see cref="Synchronize()"/>).</summary>
    private void RunReady(List<Retired> ready, RunningPass pass)
    {
        List<Exception>? failed = null;
        try
        {
            foreach (var p in ready)
            {
                // One bad callback must not strand the rest: they were taken off the pending list already.
                try
                {
                    if (p.Free is not null) p.Free(p.Item);
                    else p.Callback!();
                }
                catch (Exception e)
                {
                    (failed ??= new()).Add(e);
                }
            }
            Interlocked.Add(ref _freed, ready.Count);
            if (failed is not null) Interlocked.Add(ref _callbackFailures, failed.Count);
        }
        finally
        {
            // Whatever happened (even an exception no catch above could keep), the pass ends: a Synchronize waiting
            // for it must not wait forever.
            ready.Clear();   // drops the delegates; the list is kept for the next pass (no garbage per pass)
            lock (_pendingLock)
            {
                // Failures are recorded before the pass counts as done, so a Synchronize that waited for it reports them.
                if (failed is not null) (_unreported ??= new()).AddRange(failed);
                _running.Remove(pass);
                if (ready.Capacity <= MaxSpareReady) _spareReady ??= ready;
            }
            lock (pass)
            {
                pass.Done = true;
                Monitor.PulseAll(pass);
            }
        }
    }
}
