using System.Globalization;
using System.Text;

namespace Slub;

// The alloc_calls and free_calls attributes of a store_user cache (Linux 5.2's list_locations).
public sealed unsafe partial class KmemCache
{
    // The kernel stops adding lines once its page-sized buffer is this full: PAGE_SIZE - KSYM_SYMBOL_LEN (241 on a
    // 64-bit 5.2 kernel) - 100, so the last line always fits.
    private const int LocationsTextLimit = 4096 - 241 - 100;

    /// <summary>One call site's summary, as the kernel's <c>struct location</c>.</summary>
    private sealed class Location
    {
        public long Count, SumAge, MinAge = long.MaxValue, MaxAge;
        public int MinPid = int.MaxValue, MaxPid = int.MinValue;
        public readonly SortedSet<int> Cpus = [], Nodes = [];
    }

    /// <summary>
    /// The text of <c>alloc_calls</c> (<paramref name="free"/> false) or <c>free_calls</c>: the objects in use,
    /// grouped by the call site of their last allocation (or of their last free: <c>&lt;not-available&gt;</c> for
    /// objects never freed), one line each as Linux 5.2's <c>list_locations</c> prints them:
    /// <c>%7ld</c> count, the call site, <c>age=min/avg/max</c> (or <c>age=N</c> when the sum of ages equals the
    /// minimum), <c>pid=min-max</c> (or one pid), <c>cpus=</c> and <c>nodes=</c> as bitmap lists when there is more
    /// than one CPU or node. Ages are in milliseconds (jiffies at HZ=1000); pids are managed thread ids. Call sites
    /// have no addresses here, so lines are ordered by call-site name, <c>&lt;not-available&gt;</c> (address 0) first.
    /// "No data" when no object is in use. Only slabs on the node lists are walked, as in the kernel (a slab a
    /// defragmentation run holds is on none).
    /// </summary>
    internal string ListLocations(bool free)
    {
        var sites = new Dictionary<int, Location>();
        long now = Environment.TickCount64;   // store_user makes a debug cache: no CPU slabs or magazines to flush
        foreach (var n in _nodes)
        {
            lock (n.ListLock)
            {
                for (var s = n.Partial.Head; s is not null; s = s.Next) AddLocations(s, free, now, sites);
                for (var s = n.Full.Head; s is not null; s = s.Next) AddLocations(s, free, now, sites);
            }
        }
        if (sites.Count == 0) return "No data\n";

        var sb = new StringBuilder();
        bool cpus = _cpus.Length > 1, nodes = _nodes.Length > 1;
        var ordered = sites.Select(kv => (Name: kv.Key == 0 ? "<not-available>" : _allocator.CallSites.Name(kv.Key), Loc: kv.Value))
            .OrderBy(x => x.Name == "<not-available>" ? 0 : 1).ThenBy(x => x.Name, StringComparer.Ordinal);
        foreach (var (name, l) in ordered)
        {
            if (sb.Length > LocationsTextLimit) break;
            sb.Append(CultureInfo.InvariantCulture, $"{l.Count,7} {name}");
            if (l.SumAge != l.MinAge) sb.Append(CultureInfo.InvariantCulture, $" age={l.MinAge}/{l.SumAge / l.Count}/{l.MaxAge}");
            else sb.Append(CultureInfo.InvariantCulture, $" age={l.MinAge}");
            if (l.MinPid != l.MaxPid) sb.Append(CultureInfo.InvariantCulture, $" pid={l.MinPid}-{l.MaxPid}");
            else sb.Append(CultureInfo.InvariantCulture, $" pid={l.MinPid}");
            if (cpus && l.Cpus.Count > 0) sb.Append(" cpus=").Append(BitmapList(l.Cpus));
            if (nodes && l.Nodes.Count > 0) sb.Append(" nodes=").Append(BitmapList(l.Nodes));
            sb.Append('\n');
        }
        return sb.ToString();
    }

    // The in-use objects of one slab, under its slab lock: their alloc or free track.
    private void AddLocations(Slab s, bool free, long now, Dictionary<int, Location> sites)
    {
        SpinLockWord.Enter(ref s.LockWord);
        try
        {
            var isFree = new bool[s.Objects];
            for (nint p = s.Freelist; p != 0; p = *(nint*)(p + _fpOffset))
            {
                int i = s.IndexOf(p);
                if (i < 0 || isFree[i]) break;   // a damaged free list: validate reports it
                isFree[i] = true;
            }
            for (int i = 0; i < s.Objects; i++)
            {
                if (isFree[i]) continue;
                var t = TrackOf(s.ObjectAt(i), free);
                if (!sites.TryGetValue(t->CallSite, out var l)) sites[t->CallSite] = l = new Location();
                long age = now - t->When;
                l.Count++;
                l.SumAge += age;
                l.MinAge = Math.Min(l.MinAge, age);
                l.MaxAge = Math.Max(l.MaxAge, age);
                l.MinPid = Math.Min(l.MinPid, t->Thread);
                l.MaxPid = Math.Max(l.MaxPid, t->Thread);
                l.Cpus.Add(t->Cpu);
                l.Nodes.Add(s.Node);
            }
        }
        finally
        {
            SpinLockWord.Exit(ref s.LockWord);
        }
    }

    // The kernel's %*pbl: ascending numbers separated by commas, each run of consecutive numbers as a-b.
    private static string BitmapList(SortedSet<int> bits)
    {
        var sb = new StringBuilder();
        int? start = null, prev = null;
        foreach (int b in bits)
        {
            if (prev is int p && b == p + 1) { prev = b; continue; }
            if (start is int s0) Range(sb, s0, prev!.Value);
            start = prev = b;
        }
        if (start is int s1) Range(sb, s1, prev!.Value);
        return sb.ToString();

        static void Range(StringBuilder sb, int a, int b)
        {
            if (sb.Length > 0) sb.Append(',');
            sb.Append(a.ToString(CultureInfo.InvariantCulture));
            if (b != a) sb.Append('-').Append(b.ToString(CultureInfo.InvariantCulture));
        }
    }
}
