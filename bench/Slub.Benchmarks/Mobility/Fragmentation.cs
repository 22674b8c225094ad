namespace Slub.Benchmarks.Mobility;

/// <summary>
/// The survival pattern shared by the slab and the managed-heap runs: which of N objects are freed.
/// The same seed gives the same indices in every process, so both sides free exactly the same fraction at
/// exactly the same positions, and the host can recount what a child process measured.
/// </summary>
public static class Fragmentation
{
    public const int Seed = 20261126;

    /// <summary>Objects kept: 30% ("a cache fragmented to 30% use", the defrag_used_ratio default).</summary>
    public const double SurvivingFraction = 0.30;

    /// <summary>The indices to free, in freeing order: a seeded shuffle of 0..n-1, cut to (1 - surviving) · n.</summary>
    public static int[] IndicesToFree(int n)
    {
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        new Random(Seed).Shuffle(order);
        int freed = n - Survivors(n);
        return order[..freed];
    }

    public static int Survivors(int n) => (int)Math.Round(n * SurvivingFraction);
}
