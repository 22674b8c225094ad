using System.Numerics;

namespace Slub.Dcache;

/// <summary>
/// The dentry hash table (<c>dentry_hashtable</c>): buckets of doubly linked chains threaded through the
/// dentries' <see cref="DentryData.HashNext"/>/<see cref="DentryData.HashPrev"/>, keyed by (parent, name hash,
/// name). The bucket is chosen by the top bits of the 32-bit hash, as the kernel's <c>d_hash</c> does.
/// </summary>
/// <remarks>Not synchronised itself: walks need the dcache tree lock for reading, changes need it for writing.</remarks>
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
        if (head != 0) ((DentryData*)head)->HashPrev = p;
        head = p;
        d->Flags |= (uint)DentryFlags.Hashed;
    }

    /// <summary><c>__d_drop</c>'s unhash: removes <paramref name="p"/> from its bucket. Tree lock held for writing, dentry lock held.</summary>
    public void Remove(nint p)
    {
        var d = (DentryData*)p;
        if ((d->Flags & (uint)DentryFlags.Hashed) == 0) return;
        if (d->HashPrev != 0) ((DentryData*)d->HashPrev)->HashNext = d->HashNext;
        else Bucket(d->Hash) = d->HashNext;
        if (d->HashNext != 0) ((DentryData*)d->HashNext)->HashPrev = d->HashPrev;
        d->HashNext = d->HashPrev = 0;
        d->Flags &= ~(uint)DentryFlags.Hashed;
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
