namespace Slub;

/// <summary>
/// Parses the kernel's <c>slub_debug=</c> syntax: <c>[flags][,cache[,cache...]][;[flags],cache...]</c>.
/// Flags: F sanity checks, Z red zone, P poison, U store user, T trace, A failslab mark, - none; no letters = F,Z,P,U.
/// </summary>
public sealed class SlubDebugOption
{
    private readonly List<(SlabFlags Flags, string[] Caches)> _rules = new();

    /// <summary>Flags for caches not named in any rule.</summary>
    public SlabFlags Global { get; private set; }

    /// <summary>Parses <paramref name="text"/>; throws <see cref="FormatException"/> naming the bad letter.</summary>
    public static SlubDebugOption Parse(string? text)
    {
        var opt = new SlubDebugOption();
        if (text is null) return opt;
        foreach (string block in text.Split(';'))
        {
            string[] parts = block.Split(',');
            SlabFlags flags = ParseFlags(parts[0]);
            string[] caches = parts.Skip(1).Where(p => p.Length > 0).ToArray();
            if (caches.Length == 0) opt.Global = flags;
            else opt._rules.Add((flags, caches));
        }
        return opt;
    }

    private static SlabFlags ParseFlags(string letters)
    {
        if (letters.Length == 0) return SlabFlags.DebugFlags;
        SlabFlags f = SlabFlags.None;
        foreach (char ch in letters)
        {
            f |= char.ToUpperInvariant(ch) switch
            {
                'F' => SlabFlags.ConsistencyChecks,
                'Z' => SlabFlags.RedZone,
                'P' => SlabFlags.Poison,
                'U' => SlabFlags.StoreUser,
                'T' => SlabFlags.Trace,
                'A' => SlabFlags.FailSlab,       // marks the cache for failslab's cache-filter (FaultInjection)
                'O' => SlabFlags.None,           // "off for caches of high order": accepted, no effect here
                '-' => SlabFlags.None,
                _ => throw new FormatException($"slub_debug option '{ch}' unknown. skipped"),
            };
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

    // The kernel accepts a trailing '*' as a prefix glob.
    private static bool Matches(string pattern, string name) =>
        pattern.EndsWith('*') ? name.StartsWith(pattern[..^1], StringComparison.Ordinal) : pattern == name;
}
