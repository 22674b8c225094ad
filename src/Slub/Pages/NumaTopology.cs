namespace Slub.Pages;

/// <summary>
/// Which NUMA nodes exist and which CPUs belong to each. Either read from the machine
/// (<c>/sys/devices/system/node</c>) or emulated, like the kernel's <c>numa=fake=N</c>.
/// Immutable once built: every member is thread-safe.
/// </summary>
public sealed class NumaTopology
{
    private readonly int[] _cpuToNode;

    /// <summary>Number of nodes (always at least one).</summary>
    public int NodeCount { get; }

    /// <summary>Number of CPUs the allocator keeps per-CPU state for.</summary>
    public int CpuCount => _cpuToNode.Length;

    /// <summary>True when the nodes are the machine's own, so arena memory is bound to them.</summary>
    public bool IsReal { get; }

    private NumaTopology(int nodes, int[] cpuToNode, bool real)
    {
        NodeCount = nodes;
        _cpuToNode = cpuToNode;
        IsReal = real;
    }

    /// <summary>The node CPU <paramref name="cpu"/> allocates from by default.</summary>
    public int NodeOfCpu(int cpu) => _cpuToNode[cpu];

    /// <summary>Emulated nodes: <paramref name="nodes"/> nodes, CPUs dealt round-robin (cpu % nodes).</summary>
    public static NumaTopology Emulated(int nodes, int cpus)
    {
        if (nodes < 1 || nodes > 64) throw new ArgumentOutOfRangeException(nameof(nodes), nodes, "1..64 nodes");
        if (cpus < 1 || cpus > 1024) throw new ArgumentOutOfRangeException(nameof(cpus), cpus, "1..1024 CPUs");
        var map = new int[cpus];
        for (int c = 0; c < cpus; c++) map[c] = c % nodes;
        return new NumaTopology(nodes, map, real: false);
    }

    /// <summary>The machine's nodes, or one node when the machine does not say.</summary>
    public static NumaTopology Detect(int? cpus = null)
    {
        int ncpu = cpus ?? Environment.ProcessorCount;
        if (ncpu < 1) throw new ArgumentOutOfRangeException(nameof(cpus), ncpu, "at least 1 CPU");
        var map = new int[ncpu];
        int nodes = 1;
        const string root = "/sys/devices/system/node";
        try
        {
            if (Directory.Exists(root))
            {
                var nodeDirs = Directory.GetDirectories(root, "node*")
                    .Select(d => Path.GetFileName(d)!)
                    .Where(n => int.TryParse(n.AsSpan(4), out _))
                    .Select(n => int.Parse(n.AsSpan(4)))
                    .OrderBy(n => n).ToArray();
                // Node ids must be dense for our per-node arrays; a sparse layout falls back to one node.
                if (nodeDirs.Length > 0 && nodeDirs[^1] == nodeDirs.Length - 1)
                {
                    nodes = nodeDirs.Length;
                    foreach (int n in nodeDirs)
                    {
                        string list = File.ReadAllText($"{root}/node{n}/cpulist").Trim();
                        foreach (int c in ParseCpuList(list))
                            if (c < ncpu) map[c] = n;
                    }
                }
            }
        }
        catch (IOException) { nodes = 1; Array.Clear(map); }
        catch (UnauthorizedAccessException) { nodes = 1; Array.Clear(map); }
        return new NumaTopology(nodes, map, real: nodes > 1);
    }

    internal static IEnumerable<int> ParseCpuList(string list)
    {
        if (list.Length == 0) yield break;
        foreach (string part in list.Split(','))
        {
            int dash = part.IndexOf('-');
            if (dash < 0) { yield return int.Parse(part); continue; }
            int lo = int.Parse(part.AsSpan(0, dash)), hi = int.Parse(part.AsSpan(dash + 1));
            for (int c = lo; c <= hi; c++) yield return c;
        }
    }
}
