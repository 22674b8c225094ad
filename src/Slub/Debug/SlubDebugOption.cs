namespace Slub;

/// <summary>
/// Parses the kernel's <c>slub_debug=</c> syntax: <c>[flags][,cache[,cache...]][;[flags],cache...]</c>.
/// Flags: F sanity checks, Z red zone, P poison, U store user, T trace, A failslab mark, O no debug metadata
/// where it would raise the slab order, - clears the letters before it; no letters = F,Z,P,U.
/// Immutable once parsed: every member is thread-safe.
/// </summary>
public sealed class SlubDebugOption
{
    private readonly List<(SlabFlags Flags, string[] Caches)> _rules = new();

    /// <summary>Flags for caches not named in any rule.</summary>
    public SlabFlags Global { get; private set; }

    /// <summary>Parses <paramref name="text"/>; throws <see cref="FormatException"/> naming the bad letter.</summary>
    /// <remarks>As the kernel reads it: empty blocks (leading, trailing or doubled <c>;</c>) are skipped, a block
    /// with a <c>,</c> is a cache list even when the list is empty, and <c>-</c> clears the letters before it.
    /// An empty text means full debugging.</remarks>
    public static SlubDebugOption Parse(string? text)
    {
        var opt = new SlubDebugOption();
        if (text is null) return opt;
        if (text.Length == 0) { opt.Global = SlabFlags.DebugFlags; return opt; }
        foreach (string block in text.Split(';'))
        {
            if (block.Length == 0) continue;   // not "no letters": that would debug every cache
            int comma = block.IndexOf(',');
            string letters = comma < 0 ? block : block[..comma];
            SlabFlags flags = comma == 0 ? SlabFlags.DebugFlags : ParseFlags(letters, opt);
            if (comma < 0) opt.Global = flags;
            else opt._rules.Add((flags, block[(comma + 1)..].Split(',').Where(p => p.Length > 0).ToArray()));
        }
        return opt;
    }

    /// <summary>The <c>O</c> letter was given: caches whose debug metadata would raise the minimum slab order get none (the kernel's <c>disable_higher_order_debug</c>).</summary>
    public bool DisableHigherOrderDebug { get; private set; }

    private static SlabFlags ParseFlags(string letters, SlubDebugOption opt)
    {
        SlabFlags f = SlabFlags.None;
        foreach (char ch in letters)
        {
            switch (char.ToUpperInvariant(ch))
            {
                case 'F': f |= SlabFlags.ConsistencyChecks; break;
                case 'Z': f |= SlabFlags.RedZone; break;
                case 'P': f |= SlabFlags.Poison; break;
                case 'U': f |= SlabFlags.StoreUser; break;
                case 'T': f |= SlabFlags.Trace; break;
                case 'A': f |= SlabFlags.FailSlab; break;   // marks the cache for failslab's cache-filter (FaultInjection)
                case 'O': opt.DisableHigherOrderDebug = true; break;
                case '-': f = SlabFlags.None; break;       // everything before it is off
                // The kernel logs "slub_debug option 'x' unknown. skipped" and goes on; a typo here is refused instead.
                default: throw new FormatException($"slub_debug option '{ch}' unknown (the kernel would skip it; not accepted here)");
            }
        }
        return f;
    }

    /// <summary>The debug flags that apply to a cache of this name.</summary>
    public SlabFlags FlagsFor(string cache)
    {
        foreach (var (flags, caches) in _rules)
            foreach (string pattern in caches)
                if (Matches(pattern, cache)) return flags;
        return Global;
    }

    // As the kernel: a '*' ends the compared prefix wherever it stands ("km*64" compares "km").
    private static bool Matches(string pattern, string name) =>
        pattern.IndexOf('*') is var star and >= 0 ? name.StartsWith(pattern[..star], StringComparison.Ordinal) : pattern == name;
}
