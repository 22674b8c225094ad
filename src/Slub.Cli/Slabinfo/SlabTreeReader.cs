using System.Text.RegularExpressions;

namespace Slub.Cli.Slabinfo;

/// <summary>
/// Reads a slab source the way the kernel tool's read_slab_dir() reads sysfs: entries in source order, names starting
/// with '.' skipped, other names filtered by the pattern unless they start with ':', every attribute read as its first
/// line with a missing file counting as 0.
/// </summary>
public sealed class SlabTreeReader(ISlabSource source, SlabinfoDialect dialect, Regex pattern)
{
    private const int MaxNodes = 1024;

    public SlabTree Read()
    {
        var tree = new SlabTree();
        var maxSlabs = dialect == SlabinfoDialect.Smo ? 500 : 2000;
        const int maxAliases = 500;
        foreach (var entry in source.ListEntries())
        {
            if (entry.Name.StartsWith('.') || (!entry.Name.StartsWith(':') && !pattern.IsMatch(entry.Name)))
                continue;
            switch (entry.Kind)
            {
                case SlabEntryKind.Alias:
                    if (dialect == SlabinfoDialect.Current && tree.Aliases.Count == maxAliases)
                        throw new SlabinfoFatalException("Too many aliases\n");
                    var target = entry.Target ?? "";
                    tree.Aliases.Add(new SlabAlias { Name = entry.Name, Ref = target[(target.LastIndexOf('/') + 1)..] });
                    break;
                case SlabEntryKind.Cache:
                    if (dialect == SlabinfoDialect.Current && tree.Caches.Count == maxSlabs)
                        throw new SlabinfoFatalException("Too many slabs\n");
                    var cache = ReadCache(entry.Name, tree);
                    if (cache.Name.StartsWith(':'))
                        tree.AliasTargets++;
                    tree.Caches.Add(cache);
                    break;
                default:
                    throw new SlabinfoFatalException($"Unknown file type {entry.FileType:x}\n");
            }
        }
        tree.ActualSlabs = tree.Caches.Count;
        if (dialect == SlabinfoDialect.Smo)
        {
            if (tree.Caches.Count > maxSlabs)
                throw new SlabinfoFatalException("Too many slabs\n");
            if (tree.Aliases.Count > maxAliases)
                throw new SlabinfoFatalException("Too many aliases\n");
        }
        return tree;
    }

    private SlabCache ReadCache(string name, SlabTree tree)
    {
        long Get(string attr) => FirstLine(name, attr) is { Length: > 0 } line ? CNumbers.Atol(line) : 0;

        var s = new SlabCache { Name = name, DirectoryName = name };
        s.Aliases = (int)Get("aliases");
        s.Align = (int)Get("align");
        s.CacheDma = (int)Get("cache_dma");
        s.CpuSlabs = (int)Get("cpu_slabs");
        s.DestroyByRcu = (int)Get("destroy_by_rcu");
        s.HwcacheAlign = (uint)Get("hwcache_align");
        s.ObjectSize = (uint)Get("object_size");
        s.Objects = (ulong)Get("objects");
        s.ObjectsPartial = (ulong)Get("objects_partial");
        s.ObjectsTotal = (ulong)Get("objects_total");
        s.ObjsPerSlab = (uint)Get("objs_per_slab");
        s.Order = (int)Get("order");
        (s.Partial, s.NumaPartial) = GetWithNodes(name, "partial", tree);
        s.Poison = (int)Get("poison");
        s.ReclaimAccount = (int)Get("reclaim_account");
        s.RedZone = (int)Get("red_zone");
        s.SanityChecks = (uint)Get("sanity_checks");
        s.SlabSize = (uint)Get("slab_size");
        (s.Slabs, s.Numa) = GetWithNodes(name, "slabs", tree);
        s.StoreUser = (uint)Get("store_user");
        s.Trace = (uint)Get("trace");
        s.AllocFastpath = (ulong)Get("alloc_fastpath");
        s.AllocSlowpath = (ulong)Get("alloc_slowpath");
        s.FreeFastpath = (ulong)Get("free_fastpath");
        s.FreeSlowpath = (ulong)Get("free_slowpath");
        s.FreeFrozen = (ulong)Get("free_frozen");
        s.FreeAddPartial = (ulong)Get("free_add_partial");
        s.FreeRemovePartial = (ulong)Get("free_remove_partial");
        s.AllocFromPartial = (ulong)Get("alloc_from_partial");
        s.AllocSlab = (ulong)Get("alloc_slab");
        s.AllocRefill = (ulong)Get("alloc_refill");
        s.FreeSlab = (ulong)Get("free_slab");
        s.CpuslabFlush = (ulong)Get("cpuslab_flush");
        s.DeactivateFull = (ulong)Get("deactivate_full");
        s.DeactivateEmpty = (ulong)Get("deactivate_empty");
        s.DeactivateToHead = (ulong)Get("deactivate_to_head");
        s.DeactivateToTail = (ulong)Get("deactivate_to_tail");
        s.DeactivateRemoteFrees = (ulong)Get("deactivate_remote_frees");
        s.OrderFallback = (ulong)Get("order_fallback");
        s.CmpxchgDoubleCpuFail = (ulong)Get("cmpxchg_double_cpu_fail");
        s.CmpxchgDoubleFail = (ulong)Get("cmpxchg_double_fail");
        s.CpuPartialAlloc = (ulong)Get("cpu_partial_alloc");
        s.CpuPartialFree = (ulong)Get("cpu_partial_free");
        s.AllocNodeMismatch = (ulong)Get("alloc_node_mismatch");
        s.DeactivateBypass = (ulong)Get("deactivate_bypass");
        if (dialect == SlabinfoDialect.Smo)
        {
            s.RemoteNodeDefragRatio = (int)Get("remote_node_defrag_ratio");
            s.DefragUsedRatio = (int)Get("defrag_used_ratio");
            // The series marks a cache by the callbacks listed in its ops file.
            if (ReadWhole(name, "ops") is { Length: > 0 } ops)
            {
                s.Ctor = ops.Contains("ctor :", StringComparison.Ordinal);
                s.Movable = ops.Contains("migrate :", StringComparison.Ordinal);
            }
        }
        return s;
    }

    // A leading number, then "N<node>=<count>" pairs separated by spaces.
    private (ulong Value, int[] Nodes) GetWithNodes(string cache, string attr, SlabTree tree)
    {
        var nodes = new int[MaxNodes];
        var line = FirstLine(cache, attr);
        if (string.IsNullOrEmpty(line))
            return (0, nodes);
        var value = CNumbers.Strtoul(line, 0, out var i);
        while (i < line.Length && line[i] == ' ')
            i++;
        while (i < line.Length && line[i] == 'N')
        {
            var node = (int)CNumbers.Strtoul(line, i + 1, out var after);
            i = after == i + 1 ? i + 1 : after;
            if (i < line.Length && line[i] == '=')
            {
                var count = (int)CNumbers.Strtoul(line, i + 1, out var afterCount);
                i = afterCount == i + 1 ? i + 1 : afterCount;
                if (node is >= 0 and < MaxNodes)
                {
                    nodes[node] = count;
                    if (node > tree.HighestNode)
                        tree.HighestNode = node;
                }
            }
            while (i < line.Length && line[i] == ' ')
                i++;
        }
        return (value, nodes);
    }

    // fgets() of the first line, at most 4095 characters.
    private string? FirstLine(string cache, string attr)
    {
        string? text;
        try
        {
            text = source.ReadAttribute(cache, attr);
        }
        catch (SlabSourceException e) when (e.Code == "EACCES")
        {
            if (dialect == SlabinfoDialect.Current)
                throw new SlabinfoFatalException("Permission denied, Try using superuser\n");
            return null;
        }
        if (text is null)
            return null;
        var nl = text.IndexOf('\n');
        var line = nl < 0 ? text : text[..(nl + 1)];
        return line.Length > 4095 ? line[..4095] : line;
    }

    private string? ReadWhole(string cache, string attr) => ReadLimited(source, cache, attr);

    /// <summary>read_slab_obj(): the whole attribute, at most 4096 bytes, "" when missing.</summary>
    public static string ReadLimited(ISlabSource source, string cache, string attr)
    {
        string? text;
        try
        {
            text = source.ReadAttribute(cache, attr);
        }
        catch (SlabSourceException e) when (e.Code is "EACCES" or "EINVAL" or "EPERM" or "EIO" or "ENOSYS")
        {
            text = null;
        }
        return Truncate(text);
    }

    /// <summary>Cuts text to the 4096-byte buffer the tool reads into (and at a NUL, where printf would stop).</summary>
    public static string Truncate(string? text)
    {
        if (string.IsNullOrEmpty(text))
            return "";
        if (text.Length > 4096)
            text = text[..4096];
        var nul = text.IndexOf('\0');
        return nul < 0 ? text : text[..nul];
    }
}
