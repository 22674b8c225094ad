namespace Slub.Trace;

/// <summary>
/// One cache of a /sys/kernel/slab snapshot: its geometry, its counts when the snapshot has them, and its tuning
/// (<c>cpu_partial</c>, <c>min_partial</c>) when the snapshot has those files.
/// </summary>
public sealed record SlabSnapshotCache(string Name, int ObjectSize, int SlabSize, int ObjectsPerSlab, int Order,
    long? Objects, long? Slabs, long? Partial, uint? CpuPartial = null, long? MinPartial = null);

/// <summary>
/// The geometry (and counts) of caches as a real kernel reported them in /sys/kernel/slab, read from either
/// an exported tree (one directory per cache holding the files <c>object_size</c>, <c>slab_size</c>,
/// <c>objs_per_slab</c>, <c>order</c> and optionally <c>objects</c>, <c>slabs</c>, <c>partial</c>, <c>cpu_partial</c>,
/// <c>min_partial</c>; alias
/// symlinks are followed) or a flat file of <c>cache/attribute value</c> lines such as
/// <c>grep . /sys/kernel/slab/*/order</c> style dumps (<c>dentry/order 0</c>).
/// Immutable once loaded: every member is thread-safe.
/// </summary>
public sealed class SlabSnapshot
{
    private readonly Dictionary<string, SlabSnapshotCache> _caches;

    /// <summary>Where it was read from.</summary>
    public string Source { get; }

    /// <summary>The caches that have geometry (an <c>order</c>), by name (case-sensitive).</summary>
    public IReadOnlyDictionary<string, SlabSnapshotCache> Caches => _caches;

    private SlabSnapshot(string source, Dictionary<string, SlabSnapshotCache> caches)
    {
        Source = source;
        _caches = caches;
    }

    /// <summary>The cache named <paramref name="name"/> (exact, case-sensitive), if the snapshot has it.</summary>
    public bool TryGet(string name, out SlabSnapshotCache cache) => _caches.TryGetValue(name, out cache!);

    /// <summary>Reads a snapshot directory or flat file.</summary>
    /// <exception cref="FileNotFoundException">Nothing at <paramref name="path"/>.</exception>
    /// <exception cref="FormatException">A value is unreadable, geometry files are missing, or no cache has geometry.</exception>
    public static SlabSnapshot Load(string path)
    {
        var attrs = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        // For a flat file, "file:line" of each "cache/attribute" value, so an error points at the line to fix.
        var lines = new Dictionary<string, string>(StringComparer.Ordinal);
        if (Directory.Exists(path))
        {
            foreach (var dir in Directory.EnumerateDirectories(path))
            {
                if (!File.Exists(Path.Combine(dir, "order"))) continue;
                var map = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var a in s_attributes)
                {
                    string file = Path.Combine(dir, a);
                    if (File.Exists(file)) map[a] = File.ReadAllText(file).Trim();
                }
                attrs[Path.GetFileName(dir)] = map;
            }
        }
        else if (File.Exists(path))
        {
            int lineNo = 0;
            foreach (var raw in File.ReadLines(path))
            {
                lineNo++;
                var line = raw.Trim();
                if (line.Length == 0 || line[0] == '#') continue;
                if (!TrySplitLine(line, out string cache, out string attr, out string value))
                    throw new FormatException($"{path}:{lineNo}: expected 'cache/attribute value': {raw}");
                if (!attrs.TryGetValue(cache, out var map)) attrs[cache] = map = new(StringComparer.Ordinal);
                map[attr] = value;
                lines[$"{cache}/{attr}"] = $"{path}:{lineNo}";
            }
        }
        else throw new FileNotFoundException($"slab snapshot not found (a /sys/kernel/slab copy or a 'cache/attribute value' file): {path}", path);

        var caches = new Dictionary<string, SlabSnapshotCache>(StringComparer.Ordinal);
        foreach (var (name, map) in attrs)
        {
            if (!map.ContainsKey("order")) continue;
            string Where(string attr) => lines.GetValueOrDefault($"{name}/{attr}", path);
            int order = Int(Where("order"), name, map, "order")!.Value;
            int? slabSize = Int(Where("slab_size"), name, map, "slab_size");
            int? objectSize = Int(Where("object_size"), name, map, "object_size");
            int? perSlab = Int(Where("objs_per_slab"), name, map, "objs_per_slab");
            if (slabSize is null && objectSize is null)
                throw new FormatException($"{Where("order")}: cache {name} has an order but neither slab_size nor object_size");
            int size = slabSize ?? objectSize!.Value;
            if (size <= 0 || order < 0 || order > 10)
                throw new FormatException($"{Where(size <= 0 ? (slabSize is null ? "object_size" : "slab_size") : "order")}: cache {name}: implausible slab_size {size} or order {order}");
            long? cpuPartial = Long(Where("cpu_partial"), name, map, "cpu_partial");
            if (cpuPartial is < 0 or > uint.MaxValue)   // the kernel's s->cpu_partial is an unsigned int
                throw new FormatException($"{Where("cpu_partial")}: {name}/cpu_partial: out of range: {cpuPartial}");
            long? minPartial = Long(Where("min_partial"), name, map, "min_partial");
            if (minPartial < 0)
                throw new FormatException($"{Where("min_partial")}: {name}/min_partial: out of range: {minPartial}");
            caches[name] = new SlabSnapshotCache(name, objectSize ?? size, size,
                perSlab ?? CacheGeometry.OrderObjects(order, size), order,
                Long(Where("objects"), name, map, "objects"), Long(Where("slabs"), name, map, "slabs"), Long(Where("partial"), name, map, "partial"),
                (uint?)cpuPartial, minPartial);
        }
        if (caches.Count == 0) throw new FormatException($"{path}: no cache with an 'order' attribute");
        return new SlabSnapshot(path, caches);
    }

    /// <summary>
    /// Splits <c>cache/attribute value</c>, or what <c>grep . /sys/kernel/slab/*/attribute</c> prints
    /// (<c>/sys/kernel/slab/cache/attribute:value</c>, any leading path). The path ends at the first blank, or at a
    /// ':' that does not start a name (merged caches are directories such as <c>:0000064</c>).
    /// </summary>
    private static bool TrySplitLine(string line, out string cache, out string attr, out string value)
    {
        cache = attr = value = "";
        int end = 0;
        while (end < line.Length && line[end] is not (' ' or '\t') && !(line[end] == ':' && end > 0 && line[end - 1] != '/')) end++;
        string key = line[..end];
        int slash = key.LastIndexOf('/');
        if (slash <= 0 || slash == key.Length - 1) return false;
        int start = key.LastIndexOf('/', slash - 1) + 1;
        if (start == slash) return false;
        cache = key[start..slash];
        attr = key[(slash + 1)..];
        value = end < line.Length ? line[(end + 1)..].Trim() : "";
        return true;
    }

    private static readonly string[] s_attributes = ["object_size", "slab_size", "objs_per_slab", "order", "objects", "slabs", "partial", "cpu_partial", "min_partial"];

    private static int? Int(string path, string cache, Dictionary<string, string> map, string attr)
    {
        long? v = Long(path, cache, map, attr);
        if (v is < int.MinValue or > int.MaxValue) throw new FormatException($"{path}: {cache}/{attr}: out of range: {v}");
        return v is null ? null : (int)v.Value;
    }

    // sysfs values are "N" or "N N0=a N1=b": the total comes first.
    private static long? Long(string path, string cache, Dictionary<string, string> map, string attr)
    {
        if (!map.TryGetValue(attr, out var text)) return null;
        int blank = text.IndexOf(' ');
        var first = blank < 0 ? text : text[..blank];
        if (!long.TryParse(first, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out long v))
            throw new FormatException($"{path}: {cache}/{attr}: not a number: '{text}'");
        return v;
    }
}
