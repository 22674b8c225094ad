namespace Slub.Tests;

/// <summary>
/// The user side of the SMO stress tests: worker threads churn checksummed objects of a
/// <see cref="MovableHandleTable"/> — about half allocations (stamped), 40% frees (verified first) and 10%
/// reads (verified) — and keep their live handles, so a test can check afterwards that every surviving object
/// is intact wherever defragmentation moved it. Whatever runs beside the workers is the test's business.
/// </summary>
internal sealed class HandleTableChurn(MovableHandleTable table, int workers)
{
    public static void Stamp(Span<byte> b, long h, int gen) { for (int i = 0; i < b.Length; i++) b[i] = (byte)(h * 31 + i * 7 + gen); }
    public static bool Check(Span<byte> b, long h, int gen) { for (int i = 0; i < b.Length; i++) if (b[i] != (byte)(h * 31 + i * 7 + gen)) return false; return true; }

    /// <summary>Nodes of the allocator: above 1, allocations ask for a random node (or none).</summary>
    public int Nodes { get; init; } = 1;
    /// <summary>Added to each worker's number for its random sequence.</summary>
    public int Seed { get; init; }
    /// <summary>Below this many live objects a worker only allocates.</summary>
    public int MinLive { get; init; } = 50;
    /// <summary>Above this many live objects a worker allocates less often than it frees, so its set levels off.</summary>
    public int SoftCap { get; init; } = int.MaxValue;
    /// <summary>Count <see cref="SlabOutOfMemoryException"/> from allocations (fault injection) instead of failing.</summary>
    public bool TolerateAllocFailures { get; init; }
    /// <summary>Runs after each successful allocation (e.g. touching a bystander cache).</summary>
    public Action? AfterAllocate { get; init; }

    /// <summary>Objects that failed their check.</summary>
    public long Bad;
    public long AllocFailures, Operations;

    /// <summary>Each worker's live handles, once <see cref="Run"/> returned.</summary>
    public List<long>[] Live { get; } = new List<long>[workers];

    /// <summary>
    /// Runs the workers on dedicated threads (not the pool: on two cores it can hold a defragger thread back until
    /// the workers are done) and returns when all are done: each does <paramref name="ops"/> operations and goes on
    /// while <paramref name="moreWanted"/> says so, up to 4× <paramref name="ops"/>. They start once
    /// <paramref name="startGate"/> is set.
    /// </summary>
    public void Run(int ops, Func<bool>? moreWanted = null, ManualResetEventSlim? startGate = null)
    {
        var tasks = Enumerable.Range(0, workers).Select(w => Task.Factory.StartNew(() =>
        {
            startGate?.Wait();
            Churn(w, ops, moreWanted);
        }, TaskCreationOptions.LongRunning)).ToArray();
        Task.WaitAll(tasks);
    }

    private void Churn(int w, int ops, Func<bool>? moreWanted)
    {
        var rng = new Random(w + Seed);
        var live = Live[w] = new List<long>();
        for (int i = 0; i < ops || (moreWanted is not null && moreWanted() && i < 4 * ops); i++)
        {
            Interlocked.Increment(ref Operations);
            int op = rng.Next(10);
            if (op < (live.Count > SoftCap ? 4 : 5) || live.Count < MinLive)
            {
                long h;
                try { h = table.Allocate(Nodes > 1 ? rng.Next(-1, Nodes) : -1); }
                catch (SlabOutOfMemoryException) when (TolerateAllocFailures) { Interlocked.Increment(ref AllocFailures); continue; }
                using (var s = table.Access(h)) Stamp(s.Bytes, h, w);
                live.Add(h);
                AfterAllocate?.Invoke();
            }
            else if (op < 9)
            {
                int k = rng.Next(live.Count);
                long h = live[k];
                using (var s = table.Access(h)) if (!Check(s.Bytes, h, w)) Interlocked.Increment(ref Bad);
                live[k] = live[^1];
                live.RemoveAt(live.Count - 1);
                table.Free(h);
            }
            else
            {
                long h = live[rng.Next(live.Count)];
                using var s = table.Access(h);
                if (!Check(s.Bytes, h, w)) Interlocked.Increment(ref Bad);
            }
        }
    }

    /// <summary>Asserts that every live object of every worker is intact; returns how many there are.</summary>
    public long VerifyAll()
    {
        long total = 0;
        for (int w = 0; w < Live.Length; w++)
            foreach (long h in Live[w])
            {
                using var s = table.Access(h);
                Assert.True(Check(s.Bytes, h, w), $"object {h} of worker {w} damaged");
                total++;
            }
        return total;
    }
}
