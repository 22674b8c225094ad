namespace Slub;

/// <summary>
/// Fault injection for this allocator, after the kernel's <c>failslab</c> and <c>fail_page_alloc</c>: two
/// independent rules of one kind, <see cref="Slab"/> (a new slab is refused before any page is asked for,
/// as <c>should_failslab</c> does) and <see cref="Page"/> (one page-allocator attempt for a slab fails, so the
/// order fallback and the node fallback run, as under <c>fail_page_alloc</c>). Off by default. Thread-safe.
/// </summary>
/// <remarks>
/// <para>Each rule fails every <see cref="FaultRule.EveryNth"/>-th call, or calls with
/// <see cref="FaultRule.Probability"/>, at most <see cref="FaultRule.Times"/> times. It applies to every
/// cache, to the one named <see cref="FaultRule.CacheName"/>, or — with <see cref="FaultRule.CacheFilter"/>,
/// the kernel's <c>cache-filter</c> — only to caches whose <see cref="KmemCache.FailSlab"/> switch is on
/// (the per-cache <c>failslab</c> attribute of the slab tree).</para>
/// <para>The properties <see cref="FailEveryNth"/>, <see cref="FailProbability"/> and <see cref="CacheName"/>
/// are the slab rule's, kept as shorthands.</para>
/// </remarks>
public sealed class FaultInjection
{
    /// <summary>failslab: new-slab allocations (checked once per slab, before the page allocator).</summary>
    public FaultRule Slab { get; } = new("failslab");

    /// <summary>fail_page_alloc: page-allocator attempts made for slabs (one per order and node tried).</summary>
    public FaultRule Page { get; } = new("fail_page_alloc");

    /// <summary>Shorthand for <see cref="Slab"/>.<see cref="FaultRule.EveryNth"/>.</summary>
    public int FailEveryNth { get => Slab.EveryNth; set => Slab.EveryNth = value; }

    /// <summary>Shorthand for <see cref="Slab"/>.<see cref="FaultRule.Probability"/>.</summary>
    public double FailProbability { get => Slab.Probability; set => Slab.Probability = value; }

    /// <summary>Shorthand for <see cref="Slab"/>.<see cref="FaultRule.CacheName"/>.</summary>
    public string? CacheName { get => Slab.CacheName; set => Slab.CacheName = value; }

    /// <summary>Injected failures so far, both rules.</summary>
    public long Failures => Slab.Failures + Page.Failures;

    /// <summary>Turns both rules off and clears their filters (counters are kept).</summary>
    public void Reset()
    {
        Slab.Reset();
        Page.Reset();
    }

    internal bool ShouldFailSlab(KmemCache cache) => Slab.ShouldFail(cache);
}

/// <summary>
/// One fault-injection rule (the kernel's <c>struct fault_attr</c>, reduced to what a user-space allocator
/// needs). A call fails when the rule applies to the cache and either the call is an
/// <see cref="EveryNth"/>-th one or a random draw falls below <see cref="Probability"/>, until
/// <see cref="Times"/> failures were injected. Thread-safe; settings may change while allocations run.
/// </summary>
public sealed class FaultRule
{
    private int _everyNth;
    private double _probability;
    private long _times = -1;
    private long _calls, _failures;
    private Random _random = new();
    private readonly Lock _randomLock = new();

    internal FaultRule(string name) => Name = name;

    /// <summary>The kernel's name for this kind of fault (<c>failslab</c>, <c>fail_page_alloc</c>).</summary>
    public string Name { get; }

    /// <summary>Fail every N-th call the rule applies to (0 = off; the kernel's <c>interval</c>).</summary>
    public int EveryNth
    {
        get => Volatile.Read(ref _everyNth);
        set => Volatile.Write(ref _everyNth, value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, $"{Name}: EveryNth must be >= 0"));
    }

    /// <summary>Fail a call with this probability, 0..1 (0 = off; the kernel's <c>probability</c> is in percent).</summary>
    public double Probability
    {
        get => Volatile.Read(ref _probability);
        set => Volatile.Write(ref _probability, value is >= 0 and <= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, $"{Name}: Probability must be 0..1"));
    }

    /// <summary>Most failures to inject; -1 = no limit (the kernel's <c>times</c>).</summary>
    public long Times
    {
        get => Volatile.Read(ref _times);
        set => Volatile.Write(ref _times, value >= -1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, $"{Name}: Times must be >= -1"));
    }

    /// <summary>Only the cache with this name (or alias) fails (null = any cache).</summary>
    public string? CacheName { get; set; }

    /// <summary>Only caches whose <see cref="KmemCache.FailSlab"/> is on fail (the kernel's <c>cache-filter</c>).</summary>
    public bool CacheFilter { get; set; }

    /// <summary>True when the rule can fail anything (a trigger is set and <see cref="Times"/> is not used up).</summary>
    public bool Enabled => (EveryNth > 0 || Probability > 0) && (Times < 0 || Failures < Times);

    /// <summary>Calls the rule applied to so far.</summary>
    public long Calls => Interlocked.Read(ref _calls);

    /// <summary>Failures injected so far.</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>Makes the random draws repeatable.</summary>
    public void Seed(int seed)
    {
        lock (_randomLock) _random = new Random(seed);
    }

    /// <summary>Turns the rule off and clears its filters; the counters are kept.</summary>
    public void Reset()
    {
        EveryNth = 0;
        Probability = 0;
        Times = -1;
        CacheName = null;
        CacheFilter = false;
    }

    /// <summary>Decides one call for <paramref name="cache"/> (null: an allocation no cache asked for).</summary>
    internal bool ShouldFail(KmemCache? cache)
    {
        int nth = EveryNth;
        double p = Probability;
        if (nth == 0 && p <= 0) return false;
        if (!AppliesTo(cache)) return false;
        long call = Interlocked.Increment(ref _calls);
        bool fail = nth > 0 && call % nth == 0;
        if (!fail && p > 0)
        {
            lock (_randomLock) fail = _random.NextDouble() < p;
        }
        if (!fail) return false;
        long times = Times;
        if (times >= 0)
        {
            // Claim one of the remaining failures; losing the race means the budget is spent.
            long f;
            do
            {
                f = Interlocked.Read(ref _failures);
                if (f >= times) return false;
            } while (Interlocked.CompareExchange(ref _failures, f + 1, f) != f);
            return true;
        }
        Interlocked.Increment(ref _failures);
        return true;
    }

    private bool AppliesTo(KmemCache? cache)
    {
        string? name = CacheName;
        if (name is null && !CacheFilter) return true;
        if (cache is null) return false;
        if (CacheFilter && !cache.FailSlab) return false;
        return name is null || cache.Name == name || cache.AliasNames.Contains(name);
    }

    /// <summary>One line: the rule's name and settings, then the failures injected out of the calls seen.</summary>
    public override string ToString() =>
        $"{Name}: every {EveryNth}, probability {Probability}, times {Times}, cache {CacheName ?? "*"}{(CacheFilter ? " (cache-filter)" : "")}: {Failures} of {Calls} failed";
}
