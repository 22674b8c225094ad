namespace Slub;

/// <summary>
/// A node's partial list, kept in fill-level buckets: one doubly linked list (threaded through
/// <see cref="Slab.Prev"/>/<see cref="Slab.Next"/>) whose slabs run from the fullest bucket at
/// <see cref="Head"/> to the sparsest at <see cref="Tail"/>, with the first and last slab of every bucket
/// remembered. With one bucket (the default) it is the kernel's plain partial list: add at head or tail,
/// take from the head. Movable caches use <see cref="MovableBuckets"/> buckets, so allocation (which takes
/// the head) fills the fullest slabs and the defragmenter finds the sparsest at the tail without walking
/// or sorting the list: every operation is O(1) (O(buckets) when a bucket is empty).
/// </summary>
/// <remarks>
/// Guarded by the node's list lock. A slab's bucket is decided when it is linked, from its free slots at
/// that time (<see cref="BucketOf(int, int)"/>); callers that change <see cref="Slab.Inuse"/> of a linked slab
/// move it with <see cref="Refile"/> when <see cref="NeedsRefile"/> says its bucket changed.
/// </remarks>
internal sealed class PartialList
{
    /// <summary>Buckets of a movable cache's list: 1/8 of a slab's objects per bucket.</summary>
    public const int MovableBuckets = 8;

    public Slab? Head, Tail;
    /// <summary>Slabs on the list (<c>nr_partial</c>); read without the lock as a hint.</summary>
    public long Count;
    private readonly Slab?[] _first = new Slab?[MovableBuckets], _last = new Slab?[MovableBuckets];
    private int _buckets = 1;

    /// <summary>The first (fullest-end) slab of bucket <paramref name="b"/>, or null when the bucket is empty.</summary>
    public Slab? FirstOf(int b) => _first[b];

    /// <summary>The last slab of bucket <paramref name="b"/>, or null when the bucket is empty.</summary>
    public Slab? LastOf(int b) => _last[b];

    /// <summary>Number of fill-level buckets (1: a plain list).</summary>
    public int Buckets => Volatile.Read(ref _buckets);

    /// <summary>The bucket of a slab with <paramref name="free"/> free slots of <paramref name="objects"/>: 0 for the fullest, Buckets-1 for the sparsest.</summary>
    public int BucketOf(int free, int objects)
    {
        int b = Volatile.Read(ref _buckets);
        if (b == 1 || objects <= 0) return 0;
        return (int)Math.Clamp(((long)free * b - 1) / objects, 0, b - 1);
    }

    private int BucketOf(Slab s) => BucketOf(s.Objects - Volatile.Read(ref s.Inuse), s.Objects);

    /// <summary>True if <paramref name="s"/> (linked) now belongs in another bucket than the one it is in. A hint without the list lock.</summary>
    public bool NeedsRefile(Slab s) => Volatile.Read(ref _buckets) > 1 && BucketOf(s) != s.Bucket;

    /// <summary>Links <paramref name="s"/> at the head of its bucket.</summary>
    public void AddHead(Slab s) => Link(s, BucketOf(s), atHead: true);

    /// <summary>Links <paramref name="s"/> at the tail of its bucket.</summary>
    public void AddTail(Slab s) => Link(s, BucketOf(s), atHead: false);

    private void Link(Slab s, int b, bool atHead)
    {
        Slab? after, before;
        if (_first[b] is { } first)
        {
            if (atHead) { before = first; after = first.Prev; }
            else { after = _last[b]!; before = after.Next; }
        }
        else
        {
            // An empty bucket goes right after the nearest fuller bucket that has slabs.
            after = null;
            for (int j = b - 1; j >= 0 && after is null; j--) after = _last[j];
            before = after is null ? Head : after.Next;
        }
        s.Bucket = (byte)b;
        s.Prev = after;
        s.Next = before;
        if (after is not null) after.Next = s; else Head = s;
        if (before is not null) before.Prev = s; else Tail = s;
        if (_first[b] is null) _first[b] = _last[b] = s;
        else if (atHead) _first[b] = s;
        else _last[b] = s;
        Count++;
    }

    public void Remove(Slab s)
    {
        int b = s.Bucket;
        if (_first[b] == s && _last[b] == s) _first[b] = _last[b] = null;
        else if (_first[b] == s) _first[b] = s.Next;
        else if (_last[b] == s) _last[b] = s.Prev;
        if (s.Prev is not null) s.Prev.Next = s.Next; else Head = s.Next;
        if (s.Next is not null) s.Next.Prev = s.Prev; else Tail = s.Prev;
        s.Prev = s.Next = null;
        Count--;
    }

    /// <summary>
    /// Unlinks the whole of bucket <paramref name="b"/>, which holds <paramref name="slabs"/> slabs, in O(1): a
    /// defrag pass taking every slab of a bucket would otherwise relink both neighbours of each (four reference
    /// stores, each with its GC write barrier). The slabs keep their links to each other: the caller clears them.
    /// </summary>
    public void UnlinkBucket(int b, int slabs)
    {
        if (_first[b] is not { } first) return;
        var last = _last[b]!;
        var before = first.Prev;
        var after = last.Next;
        if (before is not null) before.Next = after; else Head = after;
        if (after is not null) after.Prev = before; else Tail = before;
        _first[b] = _last[b] = null;
        Count -= slabs;
    }

    /// <summary>Moves a linked slab to the tail of the bucket its fill now belongs to. Returns true if it moved.</summary>
    public bool Refile(Slab s)
    {
        int b = BucketOf(s);
        if (b == s.Bucket) return false;
        Remove(s);
        Link(s, b, atHead: false);
        return true;
    }

    /// <summary>Unlinks everything (for callers that rebuild the list in a new order; membership counters are theirs to keep).</summary>
    public void Clear()
    {
        Head = Tail = null;
        Count = 0;
        Array.Clear(_first);
        Array.Clear(_last);
    }

    /// <summary>Changes the number of buckets and re-files every slab (O(slabs); done once, when a cache becomes movable).</summary>
    public void SetBuckets(int buckets)
    {
        if (buckets < 1 || buckets > MovableBuckets) throw new ArgumentOutOfRangeException(nameof(buckets), buckets, $"1..{MovableBuckets}");
        var all = new List<Slab>((int)Count);
        for (var s = Head; s is not null; s = s.Next) all.Add(s);
        Clear();
        Volatile.Write(ref _buckets, buckets);
        foreach (var s in all)
        {
            // Under the slab lock, so a concurrent free either lands before (and is seen here) or sees the new bucket count.
            SpinLockWord.Enter(ref s.LockWord);
            AddTail(s);
            SpinLockWord.Exit(ref s.LockWord);
        }
    }

    /// <summary>Checks the links, the count and the bucket order (for tests). Returns a description of the first problem, or null.</summary>
    public string? CheckInvariants()
    {
        long n = 0;
        int lastBucket = 0;
        Slab? prev = null;
        for (var s = Head; s is not null; prev = s, s = s.Next)
        {
            n++;
            if (s.Prev != prev) return $"slab {n}: Prev link broken";
            if (s.Bucket < lastBucket) return $"slab {n}: bucket {s.Bucket} after bucket {lastBucket}";
            if (s.Bucket != lastBucket || prev is null)
            {
                if (_first[s.Bucket] != s) return $"slab {n}: first of bucket {s.Bucket} not remembered";
                if (prev is not null && _last[prev.Bucket] != prev) return $"slab {n - 1}: last of bucket {prev.Bucket} not remembered";
            }
            lastBucket = s.Bucket;
        }
        if (Tail != prev) return "Tail is not the last slab";
        if (prev is not null && _last[prev.Bucket] != prev) return $"last of bucket {prev.Bucket} not remembered";
        if (n != Count) return $"Count {Count}, linked {n}";
        return null;
    }
}
