using System.Runtime.InteropServices;

namespace Slub.Dcache;

/// <summary>
/// The native layout of a dentry, one object of slab cache <c>dentry</c>: 192 bytes like the kernel's
/// <c>struct dentry</c> on 64-bit, fields in the kernel's order where they exist.
/// </summary>
/// <remarks>
/// <para>Because the cache has a constructor, SLUB keeps the free pointer outside the object, so a slot is
/// 200 bytes (20 per 4 KiB slab) — as the kernel's dentry slab would be with the series' patch 12.</para>
/// <para><b>Who guards what.</b> <see cref="LockWord"/> and <see cref="Count"/> form the lockref (the
/// kernel's <c>d_lockref</c>); the lock guards <see cref="Count"/>, <see cref="Flags"/>, <see cref="Inode"/>
/// and the LRU/shrink-list membership bits. Hash links, parent, name and children/sibling links change only
/// under the dcache's tree lock held for writing. <see cref="LruNext"/>/<see cref="LruPrev"/> are guarded by
/// the LRU lock while on the LRU, and by the list owner while on a private shrink list. <see cref="Seq"/> is a
/// seqcount (<see cref="SeqCount"/>) written under the tree write lock and the dentry lock. Lock-free walkers
/// (RCU-walk) read any field without a lock and validate what they read against <see cref="Seq"/> and the
/// cache's rename sequence; a dentry's memory stays intact until their read sections end (frees are retired).</para>
/// <para><b>Constructed state</b> (the series' patch 12): lock free, <see cref="Count"/> =
/// <see cref="DeadCount"/>, everything else zero. A dentry gets that state back before it is freed, and
/// the lock word is never re-initialised on allocation, so the evictor (isolate) may lock and inspect any
/// slot at any time and always reads "not evictable" for a slot that is free or not yet set up.</para>
/// </remarks>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal unsafe struct DentryData
{
    public const int Size = 192;
    /// <summary>DNAME_INLINE_LEN of current kernels: names up to 39 bytes plus NUL are stored inline.</summary>
    public const int InlineNameLength = 40;
    /// <summary>The count <c>lockref_mark_dead</c> sets: negative means dead or never set up.</summary>
    public const int DeadCount = -128;

    /// <summary><c>d_flags</c>.</summary>
    [FieldOffset(0)] public uint Flags;
    /// <summary><c>d_seq</c>: a seqcount, odd while a rename, kill, unhash, instantiation or delete-in-place changes the dentry, so lock-free walkers can detect it.</summary>
    [FieldOffset(4)] public uint Seq;
    /// <summary><c>d_hash</c>: next dentry in the hash bucket; kept when the dentry is unhashed, for a lock-free walker standing on it.</summary>
    [FieldOffset(8)] public nint HashNext;
    /// <summary><c>d_hash</c>: previous dentry in the bucket, 0 for the first.</summary>
    [FieldOffset(16)] public nint HashPrev;
    /// <summary><c>d_parent</c>: the parent dentry; a root points to itself.</summary>
    [FieldOffset(24)] public nint Parent;
    /// <summary><c>d_name.hash</c>: name hash salted with the parent's address.</summary>
    [FieldOffset(32)] public uint Hash;
    /// <summary><c>d_name.len</c>: name length in UTF-8 bytes.</summary>
    [FieldOffset(36)] public int Length;
    /// <summary><c>d_name.name</c>: points at <see cref="InlineName"/> or at a kmalloc'ed external name.</summary>
    [FieldOffset(40)] public nint Name;
    /// <summary><c>d_inode</c>: the inode identity (0 for a negative dentry).</summary>
    [FieldOffset(48)] public ulong Inode;
    /// <summary><c>d_shortname</c>: inline name storage, NUL-terminated.</summary>
    [FieldOffset(56)] public fixed byte InlineName[InlineNameLength];
    /// <summary><c>d_lockref.lock</c>: the dentry's spin lock word (0 free, 1 held).</summary>
    [FieldOffset(96)] public int LockWord;
    /// <summary><c>d_lockref.count</c>: references; 0 = unused (kept for caching), negative = dead.</summary>
    [FieldOffset(100)] public int Count;
    /// <summary><c>d_time</c>: when the file system was last asked about this name (UTC ticks).</summary>
    [FieldOffset(104)] public long Time;
    /// <summary><c>d_lru</c>: next on the LRU or on a private shrink list.</summary>
    [FieldOffset(112)] public nint LruNext;
    /// <summary><c>d_lru</c>: previous on the LRU (unused on shrink lists, which are singly linked).</summary>
    [FieldOffset(120)] public nint LruPrev;
    /// <summary><c>d_sib</c>: next sibling in the parent's children list.</summary>
    [FieldOffset(128)] public nint SibNext;
    /// <summary><c>d_sib</c>: previous sibling, 0 for the first child.</summary>
    [FieldOffset(136)] public nint SibPrev;
    /// <summary><c>d_children</c>: first child.</summary>
    [FieldOffset(144)] public nint Children;
    /// <summary><c>d_sb</c>: identity of the owning <see cref="DentryCache"/>; operations taking a handle (all but get/put) check it.</summary>
    [FieldOffset(152)] public nint Sb;
    // Bytes 160..191 correspond to the kernel's d_op, d_fsdata and the d_u union (inode alias list, RCU
    // head); this implementation has no per-fs methods and no inode alias lists, and its reclaimer queues
    // retired dentries itself, so they stay zero.

    public readonly DentryFlags DFlags => (DentryFlags)Flags;
    public readonly InodeKind Kind => (InodeKind)((Flags & (uint)DentryFlags.TypeMask) >> 19);

    public void SetKind(InodeKind kind) =>
        Flags = (Flags & ~(uint)DentryFlags.TypeMask) | ((uint)kind << 19);

    /// <summary>The slab constructor (patch 12): puts a slot into the known state.</summary>
    public static void Construct(nint obj)
    {
        var d = (DentryData*)obj;
        *d = default;
        d->Count = DeadCount;
    }
}
