using System.Runtime.CompilerServices;

namespace Slub;

// The per-thread magazine layer in front of the per-CPU slabs (see ThreadMagazine for the protocol).
public sealed unsafe partial class KmemCache
{
    private static int s_nextMagazineIndex;
    [ThreadStatic] private static ThreadMagazine?[]? t_magazines;

    private readonly int _magazineIndex = Interlocked.Increment(ref s_nextMagazineIndex) - 1;
    private readonly List<ThreadMagazine> _magazines = new();
    private ThreadMagazine[] _flushSnapshot = [];
    private readonly Lock _magazineFlushLock = new();

    /// <summary>This thread's magazine for this cache, or null before its first use.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ThreadMagazine? CurrentMagazine()
    {
        var mags = t_magazines;
        int i = _magazineIndex;
        return mags is not null && (uint)i < (uint)mags.Length ? mags[i] : null;
    }

    private ThreadMagazine CreateMagazine()
    {
        var mags = t_magazines;
        if (mags is null || mags.Length <= _magazineIndex)
        {
            Array.Resize(ref mags, Math.Max(_magazineIndex + 1, (mags?.Length ?? 8) * 2));
            t_magazines = mags;
        }
        var m = new ThreadMagazine(ThreadMagazine.CapacityFor(_size));
        lock (_magazines) _magazines.Add(m);
        mags[_magazineIndex] = m;
        return m;
    }

    /// <summary>Allocation when the magazine is empty, missing or being flushed: refill half of it from the CPU layer.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private nint AllocMagazineSlow()
    {
        if (_destroyed) ThrowDisposed();
        _allocator.ThrowIfDisposed(Name);
        var m = CurrentMagazine() ?? CreateMagazine();
        Volatile.Write(ref m.Busy, 1);
        try
        {
            if (Volatile.Read(ref m.FlushRequest) != 0) return AllocFrom(_cpus[_allocator.CurrentCpu()], -1);
            int want = m.Capacity / 2 - m.Count;
            if (want > 0)
            {
                // The stack pops from the top: reverse the batch so objects leave in free-list order, as the
                // kernel hands them out (ascending addresses from a fresh slab; neighbours allocated together
                // stay neighbours in memory, which sequential readers and the prefetcher rely on).
                int got = AllocBulkFromCpus(m.Slots.AsSpan(m.Count, want));
                m.Slots.AsSpan(m.Count, got).Reverse();
                m.Count += got;
            }
            return m.Count == 0 ? 0 : m.Slots[--m.Count];
        }
        finally
        {
            Volatile.Write(ref m.Busy, 0);
        }
    }

    /// <summary>Free when the magazine is full, missing or being flushed: hand half back to the CPU layer first.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void FreeMagazineSlow(nint obj, Slab slab)
    {
        _allocator.ThrowIfDisposed(Name);
        var m = CurrentMagazine() ?? CreateMagazine();
        Volatile.Write(ref m.Busy, 1);
        try
        {
            if (Volatile.Read(ref m.FlushRequest) != 0)
            {
                FreeTo(_cpus[_allocator.CurrentCpu()], obj, slab);
                return;
            }
            if (m.Count == m.Capacity)
            {
                int half = m.Capacity / 2;
                FreeBulkToCpus(m.Slots.AsSpan(half, m.Count - half));
                m.Count = half;
            }
            m.Slots[m.Count++] = obj;
        }
        finally
        {
            Volatile.Write(ref m.Busy, 0);
        }
    }

    /// <summary>
    /// Takes every thread's magazine objects back into the slabs. Safe while the owners keep allocating:
    /// see <see cref="ThreadMagazine"/>. Costs one process-wide barrier; does nothing if no thread has a magazine.
    /// </summary>
    internal void FlushMagazines()
    {
        lock (_magazineFlushLock)
        {
            // The snapshot array is reused (guarded by the flush lock): the background defragmenter flushes
            // beside allocating threads and must not make garbage.
            int count;
            lock (_magazines)
            {
                count = _magazines.Count;
                if (_flushSnapshot.Length < count) _flushSnapshot = new ThreadMagazine[Math.Max(count, 2 * _flushSnapshot.Length)];
                _magazines.CopyTo(_flushSnapshot);
            }
            if (count == 0) return;
            var all = _flushSnapshot.AsSpan(0, count);
            foreach (var m in all) Volatile.Write(ref m.FlushRequest, 1);
            Interlocked.MemoryBarrierProcessWide();
            bool anyDead = false;
            foreach (var m in all)
            {
                var spinner = new SpinWait();
                while (Volatile.Read(ref m.Busy) != 0) spinner.SpinOnce();
                if (m.Count > 0)
                {
                    FreeBulkToCpus(m.Slots.AsSpan(0, m.Count));
                    m.Count = 0;
                }
                if (!m.Owner.TryGetTarget(out var t) || !t.IsAlive) { m.Dead = true; anyDead = true; }
                // A disposed allocator's magazines stay bypassed: every operation must reach a slow path's check.
                Volatile.Write(ref m.FlushRequest, _allocator.IsDisposed ? 1 : 0);
            }
            if (anyDead) lock (_magazines) _magazines.RemoveAll(static m => m.Dead);
            all.Clear();
        }
    }

    /// <summary>Objects currently parked in thread magazines (approximate while threads run).</summary>
    internal long MagazineObjects()
    {
        long sum = 0;
        lock (_magazines)
            foreach (var m in _magazines) sum += Volatile.Read(ref m.Count);
        return sum;
    }
}
