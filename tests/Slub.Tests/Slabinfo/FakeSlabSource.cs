using Slub.Cli.Slabinfo;

namespace Slub.Tests.Slabinfo;

/// <summary>An in-memory slab tree whose entry order is exactly the order caches and aliases are added.</summary>
internal sealed class FakeSlabSource : ISlabSource
{
    private readonly List<SlabEntry> _entries = [];
    private readonly Dictionary<string, string> _files = new(StringComparer.Ordinal);

    public List<string> Writes { get; } = [];

    public string Description => "fake";

    /// <summary>Adds a cache with sensible defaults; <paramref name="attrs"/> overrides or adds attribute files.</summary>
    public FakeSlabSource Cache(string name, ulong slabs, ulong objects, int objectSize = 64, int objsPerSlab = 64,
        params (string Attr, string Text)[] attrs)
    {
        _entries.Add(new SlabEntry(name, SlabEntryKind.Cache));
        Set(name, "slabs", $"{slabs} N0={slabs}\n");
        Set(name, "objects", $"{objects}\n");
        Set(name, "object_size", $"{objectSize}\n");
        Set(name, "slab_size", $"{objectSize}\n");
        Set(name, "objs_per_slab", $"{objsPerSlab}\n");
        Set(name, "order", "0\n");
        Set(name, "partial", "0 N0=0\n");
        Set(name, "cpu_slabs", "0\n");
        Set(name, "shrink", "");
        Set(name, "validate", "");
        foreach (var (attr, text) in attrs)
            Set(name, attr, text);
        return this;
    }

    public FakeSlabSource Alias(string name, string target)
    {
        _entries.Add(new SlabEntry(name, SlabEntryKind.Alias, "../" + target));
        return this;
    }

    public FakeSlabSource Other(string name)
    {
        _entries.Add(new SlabEntry(name, SlabEntryKind.Other, FileType: 8));
        return this;
    }

    public void Set(string cache, string attr, string text) => _files[$"{cache}/{attr}"] = text;

    public string? Get(string cache, string attr) => _files.GetValueOrDefault($"{Resolve(cache)}/{attr}");

    private string Resolve(string name) =>
        _entries.FirstOrDefault(e => e.Name == name && e.Kind == SlabEntryKind.Alias)?.Target?.Split('/')[^1] ?? name;

    public IReadOnlyList<SlabEntry> ListEntries() => _entries;

    public string? ReadAttribute(string cache, string attribute) => Get(cache, attribute);

    public void WriteAttribute(string cache, string attribute, string text)
    {
        var key = $"{Resolve(cache)}/{attribute}";
        if (!_files.ContainsKey(key))
            throw new SlabSourceException("ENOENT", $"no attribute {key}");
        _files[key] = text;
        Writes.Add($"{cache}/{attribute}={text.TrimEnd('\n')}");
    }

    public SlabinfoFixtures.Result Run(params string[] args) => SlabinfoFixtures.Run(args, _ => this);
}
