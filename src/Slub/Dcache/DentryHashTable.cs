using System.Numerics;

namespace Slub.Dcache;

/// <summary>
/// The dentry hash table (<c>dentry_hashtable</c>): buckets of doubly linked chains threaded through the
/// dentries' <see cref="DentryData.HashNext"/>/<see cref="DentryData.HashPrev"/>, keyed by (parent, name hash,
/// name). The bucket is chosen by the top bits of the 32-bit hash, as the kernel's <c>d_hash</c> does.
/// </summary>
/// <remarks>
/// <para>Changes need the dcache tree lock for writing. Walks either hold it for reading (<see cref="Find"/>) or
/// are lock-free inside a read section of the cache's reclaimer (<see cref="FindRcu"/>), so changes keep
/// every chain walkable at every instant: a dentry is published at a bucket head only once fully initialised
/// (a release store), and an unhashed dentry keeps its <see cref="DentryData.HashNext"/>, so a reader standing
/// on it goes on along its old chain (it cannot be freed under the reader: frees wait for a grace period).</para>
/// <para>What a lock-free walk cannot see from the chain alone is a dentry unhashed, killed or renamed under it, or a
/// dentry moved to another chain meanwhile (the reader follows it into the wrong chain and misses). Every such
/// change happens inside a write section of the dentry's own <see cref="DentryData.Seq"/>, which readers sample
/// before they compare and validate afterwards; a rename also enters the cache's rename sequence
/// (docs/dcache.md, "Locking").</para>
/// </remarks>
internal sealed unsafe class DentryHashTable
{
    private readonly nint[] _buckets;
    private readonly int _shift;

    public DentryHashTable(int bucketBits)
    {
        if (bucketBits is < 4 or > 24) throw new ArgumentOutOfRangeException(nameof(bucketBits), bucketBits, "4..24");
        _buckets = new nint[1 << bucketBits];
        _shift = 32 - bucketBits;
    }

    public int BucketCount => _buckets.Length;

    private ref nint Bucket(uint hash) => ref _buckets[hash >> _shift];

    /// <summary><c>__d_lookup</c> without the reference: the hashed dentry (parent, name) or 0. Tree lock held (read or write).</summary>
    public nint Find(nint parent, uint hash, ReadOnlySpan<byte> name)
    {
        for (nint p = Bucket(hash); p != 0; p = ((DentryData*)p)->HashNext)
        {
            var d = (DentryData*)p;
            if (d->Hash == hash && d->Parent == parent && DentryName.Matches(d, name)) return p;
        }
        return 0;
    }

    /// <summary><c>__d_rehash</c>: adds <paramref name="p"/> at the head of its bucket. Tree lock held for writing, dentry lock held.</summary>
    public void Insert(nint p)
    {
        var d = (DentryData*)p;
        ref nint head = ref Bucket(d->Hash);
        d->HashPrev = 0;
        d->HashNext = head;
        d->Flags |= (uint)DentryFlags.Hashed;
        if (head != 0) ((DentryData*)head)->HashPrev = p;
        Volatile.Write(ref head, p);   // publish: lock-free readers see every field written before this
    }

    /// <summary>
    /// <c>__d_drop</c>'s unhash (<c>hlist_bl_del_rcu</c>): removes <paramref name="p"/> from its bucket but leaves
    /// its <see cref="DentryData.HashNext"/>, so a lock-free reader standing on it can go on to the rest of the chain
    /// (the dentry's memory outlives every reader that can stand on it: frees wait for a grace period). Tree lock
    /// held for writing, dentry lock held, inside a write section of the dentry's <see cref="DentryData.Seq"/>.
    /// </summary>
    public void Remove(nint p)
    {
        var d = (DentryData*)p;
        if ((d->Flags & (uint)DentryFlags.Hashed) == 0) return;
        nint next = d->HashNext;
        if (d->HashPrev != 0) Volatile.Write(ref ((DentryData*)d->HashPrev)->HashNext, next);
        else Volatile.Write(ref Bucket(d->Hash), next);
        if (next != 0) ((DentryData*)next)->HashPrev = d->HashPrev;
        d->HashPrev = 0;
        d->Flags &= ~(uint)DentryFlags.Hashed;
    }

    /// <summary>Test hook: runs in <see cref="FindRcu"/> with each dentry the reader steps onto, before it samples its seqcount.</summary>
    internal Action<nint>? StepHook;

    /// <summary>
    /// <c>__d_lookup_rcu</c>: the hashed dentry (parent, name) in the chain of <paramref name="hash"/>, or 0, with no
    /// lock, inside a read section of the cache's reclaimer. <paramref name="seq"/> is the dentry's
    /// <see cref="DentryData.Seq"/> sampled before its fields were compared. A dentry read as unhashed is skipped
    /// (<c>d_unhashed</c>): if its sample is the value its unhash ended with, the flag is certainly read clear, and if
    /// it is older, whatever was read is checked against it later. A hit is a candidate only: the caller must
    /// validate the sample (the name may have been read while it was rewritten, the dentry unhashed or killed after it
    /// was read). A miss may be a name not cached, a dentry unhashed before the reader reached it, or a reader carried
    /// into another chain behind a renamed dentry: the caller never answers from a miss. Gives up (returns 0) after
    /// <paramref name="maxSteps"/> dentries, so a reader dragged from chain to chain by renames cannot loop.
    /// </summary>
    public nint FindRcu(nint parent, uint hash, ReadOnlySpan<byte> name, int maxSteps, out uint seq)
    {
        for (nint p = Volatile.Read(ref Bucket(hash)); p != 0 && maxSteps-- > 0; p = Volatile.Read(ref ((DentryData*)p)->HashNext))
        {
            StepHook?.Invoke(p);
            var d = (DentryData*)p;
            uint s = SeqCount.ReadBegin(ref d->Seq);
            if (d->Hash == hash && d->Parent == parent && (Volatile.Read(ref d->Flags) & (uint)DentryFlags.Hashed) != 0
                && DentryName.MatchesRcu(d, name))
            {
                seq = s;
                return p;
            }
        }
        seq = 0;
        return 0;
    }

    /// <summary>Longest chain (for statistics). Tree lock held.</summary>
    public int LongestChain()
    {
        int max = 0;
        foreach (var head in _buckets)
        {
            int n = 0;
            for (nint p = head; p != 0; p = ((DentryData*)p)->HashNext) n++;
            max = Math.Max(max, n);
        }
        return max;
    }

    public static int BitsFor(long entries) =>
        Math.Clamp(BitOperations.Log2((ulong)Math.Max(entries, 16)) + 1, 4, 24);
}
