using System.Runtime.CompilerServices;

namespace Slub.Dcache;

// Path walk over the real tree (fs/namei.c's link_path_walk / walk_component / lookup_slow: RCU-walk first,
// see DentryCache.RcuWalk.cs, then a walk under the tree read lock, then ref-walk) and the notifications that
// keep the cache coherent with the disk.
public sealed unsafe partial class DentryCache
{
    /// <summary>
    /// Resolves <paramref name="path"/> (relative to <see cref="RootPath"/>, or absolute under it) component by
    /// component through the cache. A component not cached is asked of the file system (the probe) and the
    /// answer cached — a missing name as a negative dentry. Logical "." and ".." are resolved textually first.
    /// Thread-safe; answers are as fresh as the last <see cref="Invalidate"/> for a changed path.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The cache, or its allocator, has been disposed.</exception>
    /// <exception cref="ArgumentException">An absolute path outside the root, or a path holding a NUL character ('\0'):
    /// a Linux pathname ends at its first NUL, so no path can contain one. Every path-taking member of the cache refuses
    /// it the same way, naming the parameter and the dcache, before it walks, asks the file system, caches or
    /// invalidates anything.</exception>
    public LookupResult LookupPath(string path)
    {
        CheckPath(path, nameof(path));
        if (TryWalkable(path, out int start))
        {
            var span = path.AsSpan(start);
            if (TryRcuWalk(span, WalkFinish.MarkReferenced, out _, out var cached) || TryLockedWalk(span, out cached)) return cached;
        }
        string rel = Relative(path, nameof(path));
        nint p = Walk(rel, out int queries, out bool complete);
        try { return Answer(p, queries, complete); }
        finally { Put(new Dentry(p)); }
    }

    /// <summary>
    /// <see cref="LookupPath(string)"/> for a path held in a span (a slice of a request line, a pooled buffer): a path
    /// the cache answers is resolved from the span itself, with no string built; anything else (a component not cached,
    /// "." or "..", a path that needs normalising) takes the string overload's walk with <c>path.ToString()</c>.
    /// Same answers, counters and exceptions as <see cref="LookupPath(string)"/>. Thread-safe.
    /// </summary>
    /// <exception cref="ArgumentException">As <see cref="LookupPath(string)"/>: outside the root, or a NUL in the path.</exception>
    /// <exception cref="ObjectDisposedException">The cache, or its allocator, has been disposed.</exception>
    public LookupResult LookupPath(ReadOnlySpan<char> path)
    {
        ThrowIfDisposed();
        if (!path.Contains('\0') && TryWalkable(path, out int start))
        {
            var span = path[start..];
            if (TryRcuWalk(span, WalkFinish.MarkReferenced, out _, out var cached) || TryLockedWalk(span, out cached)) return cached;
        }
        return LookupPath(path.ToString());   // also the NUL check's exception, with the string overload's message
    }

    /// <summary>
    /// The fallback of <see cref="TryRcuWalk"/> (a miss, or a failed validation): with the tree lock held for
    /// reading nothing can be unhashed or renamed, so the walk follows the hash table without taking references
    /// or validating. Only the dentry that answers is touched: if it is unused on the LRU it gets the referenced
    /// bit, as a get/put pair would give it. Returns false at the first component that is not cached; the caller
    /// then walks again in ref mode.
    /// </summary>
    /// <remarks>
    /// <paramref name="rel"/> may still hold empty components ("a//b", a trailing '/'), which are skipped, but
    /// no "." or ".." (<see cref="TryWalkable"/>).
    /// </remarks>
    [SkipLocalsInit]   // the name buffer is only read where Encode wrote it: zeroing its 765 bytes per call is waste
    private bool TryLockedWalk(ReadOnlySpan<char> rel, out LookupResult result)
    {
        Span<byte> buf = stackalloc byte[DentryName.MaxLength * 3];
        result = default;
        int components = 0;
        _tree.EnterReadLock();
        try
        {
            nint cur = _root;
            bool complete = true;
            for (ReadOnlySpan<char> rest = rel; NextComponent(ref rest, out var component);)
            {
                if (((DentryData*)cur)->Kind != InodeKind.Directory) { complete = false; break; }
                int len = DentryName.Encode(component, buf);
                if (len <= 0 || len > DentryName.MaxLength) return false;
                nint next = _hash.Find(cur, DentryName.Hash(cur, buf[..len]), buf[..len]);
                if (next == 0) return false;
                cur = next;
                components++;
            }
            var d = (DentryData*)cur;
            Lock(d);
            if (d->Count == 0 && (d->Flags & (uint)DentryFlags.LruList) != 0) d->Flags |= (uint)DentryFlags.Referenced;
            result = Answer(cur, 0, complete);
            Unlock(d);
        }
        finally { _tree.ExitReadLock(); }
        Interlocked.Add(ref _walkHits, components);
        return true;
    }

    /// <summary>
    /// Like <see cref="LookupPath(string)"/>, but also returns the dentry where the walk ended, with a reference the
    /// caller drops with <see cref="Put"/>: the target (negative when the name does not exist, the root for an
    /// empty path), or the file or directory that made the rest of the path impossible. Holding it pins it, as
    /// an open file or a working directory pins a dentry. Thread-safe.
    /// </summary>
    /// <exception cref="ArgumentException">As <see cref="LookupPath(string)"/>: outside the root, or a NUL in the path.</exception>
    public Dentry Resolve(string path, out LookupResult result)
    {
        CheckPath(path, nameof(path));
        if (TryWalkable(path, out int start) && TryRcuWalk(path.AsSpan(start), WalkFinish.TakeReference, out nint held, out result))
            return new Dentry(held);
        nint p = Walk(Relative(path, nameof(path)), out int queries, out bool complete);
        result = Answer(p, queries, complete);
        return new Dentry(p);
    }

    private static LookupResult Answer(nint p, int queries, bool complete)
    {
        var d = (DentryData*)p;
        return !complete || d->Kind is InodeKind.Negative or InodeKind.Unknown
            ? new LookupResult(InodeKind.Negative, 0, queries)
            : new LookupResult(d->Kind, d->Inode, queries);
    }

    /// <summary>
    /// The walk: returns the held dentry where it ended. <paramref name="complete"/> is false when it stopped
    /// before the last component (a negative or non-directory dentry on the way, or a name no file system
    /// accepts), in which case the path does not exist.
    /// </summary>
    private nint Walk(string rel, out int queries, out bool complete)
    {
        Span<byte> buf = stackalloc byte[DentryName.MaxLength * 3];
        queries = 0;
        complete = false;
        nint cur = Get(new Dentry(_root)).Address;
        try
        {
            foreach (Range part in rel.AsSpan().Split('/'))
            {
                var component = rel.AsSpan(part);
                if (component.IsEmpty) continue;
                if (((DentryData*)cur)->Kind != InodeKind.Directory) return Detach(ref cur);
                int len = DentryName.Encode(component, buf);
                if (len <= 0 || len > DentryName.MaxLength) return Detach(ref cur);
                var name = buf[..len];
                uint hash = DentryName.Hash(cur, name);
                nint next = LookupFast(cur, hash, name);
                if (next == 0)
                {
                    next = LookupSlow(cur, hash, name);
                    queries++;
                }
                nint prev = cur;
                cur = next;
                Put(new Dentry(prev));
            }
            complete = true;
            return Detach(ref cur);
        }
        finally { if (cur != 0) Put(new Dentry(cur)); }
    }

    private static nint Detach(ref nint cur)
    {
        nint p = cur;
        cur = 0;
        return p;
    }

    /// <summary>True if <paramref name="path"/> exists (file or directory), answered through the cache. Thread-safe.</summary>
    /// <exception cref="ArgumentException">As <see cref="LookupPath(string)"/>: outside the root, or a NUL in the path.</exception>
    public bool Exists(string path) => LookupPath(path).Exists;

    /// <summary>
    /// Tells the cache that <paramref name="path"/> changed on disk (created, deleted, replaced): its cached
    /// dentry — or the cached negative or non-directory dentry that blocks the walk to it — is unhashed
    /// (<c>d_drop</c>) and its unused descendants freed, so the next lookup asks the file system. Lookups that
    /// raced with the change do not cache what they saw. The root itself invalidates everything. Thread-safe.
    /// </summary>
    /// <exception cref="ArgumentException">As <see cref="LookupPath(string)"/>: outside the root, or a NUL in the path
    /// (nothing is invalidated then).</exception>
    public void Invalidate(string path)
    {
        string rel = Relative(path, nameof(path));
        Interlocked.Increment(ref _generation);
        nint p = WalkCached(rel, stopAtBlocker: true);
        if (p == 0) return;
        try
        {
            if (p == _root)
            {
                _tree.EnterWriteLock();
                try
                {
                    for (nint c = ((DentryData*)_root)->Children; c != 0;)
                    {
                        nint next = ((DentryData*)c)->SibNext;
                        DropTreeLocked(c);
                        c = next;
                    }
                }
                finally { _tree.ExitWriteLock(); }
            }
            else Drop(new Dentry(p));
            ShrinkParent(p);
        }
        finally { Put(new Dentry(p)); }
    }

    /// <summary>
    /// True if every component of <paramref name="path"/> is cached (positive or negative), so a lookup would
    /// not ask the file system. A peek: asks nothing, takes no reference and leaves the LRU and its referenced
    /// bits alone (an RCU-walk, or, when that fails, a walk under the tree lock held for reading). Thread-safe.
    /// </summary>
    /// <exception cref="ArgumentException">As <see cref="LookupPath(string)"/>: outside the root, or a NUL in the path.</exception>
    public bool IsCached(string path)
    {
        CheckPath(path, nameof(path));
        if (TryWalkable(path, out int start) && TryRcuWalk(path.AsSpan(start), WalkFinish.Peek, out _, out _)) return true;
        string rel = Relative(path, nameof(path));
        Span<byte> buf = stackalloc byte[DentryName.MaxLength * 3];
        _tree.EnterReadLock();
        try
        {
            nint cur = _root;
            foreach (Range part in rel.AsSpan().Split('/'))
            {
                var component = rel.AsSpan(part);
                if (component.IsEmpty) continue;
                if (((DentryData*)cur)->Kind != InodeKind.Directory) return true;   // the cached answer is "not there"
                int len = DentryName.Encode(component, buf);
                if (len <= 0 || len > DentryName.MaxLength) return false;
                cur = _hash.Find(cur, DentryName.Hash(cur, buf[..len]), buf[..len]);
                if (cur == 0) return false;
            }
            return true;
        }
        finally { _tree.ExitReadLock(); }
    }

    /// <summary>Tells the cache <paramref name="path"/> was created: drops the negative dentry that cached its absence. Thread-safe.</summary>
    /// <exception cref="ArgumentException">As <see cref="Invalidate"/>: outside the root, or a NUL in the path.</exception>
    public void NotifyCreated(string path) => Invalidate(path);

    /// <summary>
    /// Tells the cache <paramref name="path"/> was deleted: a cached positive dentry becomes negative in place when
    /// nobody else uses it (<c>d_delete</c>), otherwise it is unhashed. Thread-safe.
    /// </summary>
    /// <exception cref="ArgumentException">As <see cref="Invalidate"/>: outside the root, or a NUL in the path.</exception>
    public void NotifyDeleted(string path)
    {
        string rel = Relative(path, nameof(path));
        Interlocked.Increment(ref _generation);
        nint p = WalkCached(rel, stopAtBlocker: false);
        if (p == 0 || p == _root || ((DentryData*)p)->Kind == InodeKind.Negative)
        {
            if (p != 0) Put(new Dentry(p));
            Invalidate(path);
            return;
        }
        try { Delete(new Dentry(p)); }
        finally { Put(new Dentry(p)); }
    }

    /// <summary>
    /// Tells the cache <paramref name="from"/> was renamed to <paramref name="to"/>: when both the source and the
    /// destination directory are cached, the dentry is moved (<c>d_move</c>), keeping its cached subtree;
    /// otherwise both paths are invalidated. Thread-safe.
    /// </summary>
    /// <exception cref="ArgumentException">Either path outside the root or holding a NUL character; both are checked
    /// before anything changes, and the exception names the one that was refused.</exception>
    public void NotifyRenamed(string from, string to)
    {
        string relFrom = Relative(from, nameof(from)), relTo = Relative(to, nameof(to));
        Interlocked.Increment(ref _generation);
        int slash = relTo.LastIndexOf('/');
        string toParent = slash < 0 ? "" : relTo[..slash];
        string toName = relTo[(slash + 1)..];
        nint src = relFrom.Length == 0 || toName.Length == 0 ? 0 : WalkCached(relFrom, stopAtBlocker: false);
        nint dir = src == 0 ? 0 : WalkCached(toParent, stopAtBlocker: false);
        try
        {
            if (src != 0 && dir != 0 && ((DentryData*)src)->Kind != InodeKind.Negative
                && ((DentryData*)dir)->Kind == InodeKind.Directory && !IsAncestor(src, dir))
            {
                Move(new Dentry(src), new Dentry(dir), toName);
                return;
            }
        }
        finally
        {
            if (dir != 0) Put(new Dentry(dir));
            if (src != 0) Put(new Dentry(src));
        }
        Invalidate(from);
        Invalidate(to);
    }

    private bool IsAncestor(nint ancestor, nint p)
    {
        _tree.EnterReadLock();
        try
        {
            for (nint a = p; ; a = ((DentryData*)a)->Parent)
            {
                if (a == ancestor) return true;
                if (a == _root) return false;
            }
        }
        finally { _tree.ExitReadLock(); }
    }

    /// <summary>
    /// Cache-only walk (no file-system access): the held dentry of <paramref name="rel"/> when every component is
    /// cached; with <paramref name="stopAtBlocker"/>, a cached negative or non-directory dentry met on the way
    /// is returned instead (it is what makes the path stale). 0 when the walk leaves the cache.
    /// </summary>
    private nint WalkCached(string rel, bool stopAtBlocker)
    {
        Span<byte> buf = stackalloc byte[DentryName.MaxLength * 3];
        nint cur = Get(new Dentry(_root)).Address;
        foreach (Range part in rel.AsSpan().Split('/'))
        {
            var component = rel.AsSpan(part);
            if (component.IsEmpty) continue;
            if (((DentryData*)cur)->Kind != InodeKind.Directory)
            {
                if (stopAtBlocker) return cur;
                Put(new Dentry(cur));
                return 0;
            }
            int len = DentryName.Encode(component, buf);
            nint next = len <= 0 || len > DentryName.MaxLength ? 0 : LookupFast(cur, DentryName.Hash(cur, buf[..len]), buf[..len]);
            Put(new Dentry(cur));
            if (next == 0) return 0;
            cur = next;
        }
        return cur;
    }

    /// <summary>
    /// <c>lookup_slow</c>: asks the file system about the child's path as the cache knows its parent now (see
    /// <see cref="DiskPathOf"/>) with no lock held, then under the tree
    /// lock either takes the dentry another thread added meanwhile, or links, instantiates and hashes a new
    /// one. If an invalidation ran while the file system was being asked, the answer may be stale: ask again
    /// (a few times), and in the end return it without caching it (an unhashed dentry, dying at its dput).
    /// </summary>
    private nint LookupSlow(nint parent, uint hash, ReadOnlySpan<byte> name)
    {
        for (int attempt = 0; ; attempt++)
        {
            long generation = Volatile.Read(ref _generation);
            // Where the parent is now, not the path the walk was given: a directory renamed since the walk reached
            // it (or during a probe) would otherwise be asked about under its old name, and the answer cached under
            // its new one.
            string full = DiskPathOf(parent, name);
            InodeKind kind = _probe(full);
            Interlocked.Increment(ref _misses);
            nint fresh = AllocDentry(parent, hash, name);
            nint result = 0;
            _tree.EnterWriteLock();
            try
            {
                nint existing = _hash.Find(parent, hash, name);
                bool stale = Volatile.Read(ref _generation) != generation;
                if (existing != 0)
                {
                    var e = (DentryData*)existing;
                    Lock(e);
                    e->Count++;
                    Unlock(e);
                    result = existing;
                }
                else if (!stale || attempt >= 3)
                {
                    LinkChild(parent, fresh);
                    var d = (DentryData*)fresh;
                    Lock(d);
                    InstantiateLocked(d, kind);
                    if (!stale) _hash.Insert(fresh);
                    Unlock(d);
                    result = fresh;
                    fresh = 0;
                }
            }
            finally { _tree.ExitWriteLock(); }
            if (fresh != 0) DiscardUnpublished(fresh);
            if (result != 0) return result;
        }
    }

    /// <summary>
    /// The disk path of child <paramref name="name"/> of <paramref name="parent"/> (which the caller holds) as the
    /// cache knows the parent now: its names up to the root, read under the tree lock for reading.
    /// </summary>
    private string DiskPathOf(nint parent, ReadOnlySpan<byte> name)
    {
        var parts = new List<string>();
        _tree.EnterReadLock();
        try
        {
            for (nint a = parent; a != _root; a = ((DentryData*)a)->Parent) parts.Add(DentryName.ToString((DentryData*)a));
        }
        finally { _tree.ExitReadLock(); }
        var sb = new System.Text.StringBuilder(RootPath);
        for (int i = parts.Count - 1; i >= 0; i--)
        {
            if (sb[^1] != '/') sb.Append('/');
            sb.Append(parts[i]);
        }
        if (sb[^1] != '/') sb.Append('/');
        sb.Append(System.Text.Encoding.UTF8.GetString(name));
        return sb.ToString();
    }

    /// <summary>Frees a dentry from <see cref="AllocDentry"/> that was never linked or hashed: no walker can have seen it, so at once. No locks held.</summary>
    private void DiscardUnpublished(nint p)
    {
        var d = (DentryData*)p;
        Lock(d);
        d->Count = DentryData.DeadCount;
        Unlock(d);
        Interlocked.Decrement(ref _nrDentry);
        FreeDentryNow(p);
    }

    /// <summary>
    /// The cheap case of <see cref="Relative"/> for the cached walk, with no string built: true when
    /// <paramref name="path"/> from <paramref name="start"/> on is already a walkable relative path — relative
    /// with no "." or ".." component, or absolute as the root followed by such a path. Repeated and trailing
    /// '/' are left in (the walk skips empty components, as <see cref="Relative"/>'s normalisation would drop
    /// them). False sends the caller to <see cref="Relative"/> (which also throws for a path outside the root).
    /// </summary>
    private bool TryWalkable(ReadOnlySpan<char> path, out int start)
    {
        start = 0;
        if (Path.IsPathRooted(path))
        {
            string root = RootPath;
            if (!path.StartsWith(root, StringComparison.Ordinal)) return false;
            if (root.EndsWith('/')) start = root.Length;
            else if (path.Length == root.Length) start = root.Length;
            else if (path[root.Length] == '/') start = root.Length + 1;
            else return false;
        }
        var rest = path[start..];
        // A "." or ".." component starts the path or follows a '/': look for those places only.
        return !(rest.StartsWith('.') || rest.IndexOf("/.", StringComparison.Ordinal) >= 0) || !HasDotComponent(rest);
    }

    /// <summary>
    /// Takes the next non-empty '/'-separated component off the front of <paramref name="rest"/> (empty ones, from
    /// "//" or a trailing '/', are skipped, as normalising would drop them). False when none is left. The cached
    /// walks (locked and RCU) step through the caller's path with it, building no string.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static bool NextComponent(ref ReadOnlySpan<char> rest, out ReadOnlySpan<char> component)
    {
        while (!rest.IsEmpty)
        {
            int slash = rest.IndexOf('/');
            if (slash < 0) { component = rest; rest = default; }
            else { component = rest[..slash]; rest = rest[(slash + 1)..]; }
            if (!component.IsEmpty) return true;
        }
        component = default;
        return false;
    }

    /// <summary>
    /// The checks every public path-taking member makes before it touches any state: the cache is not disposed
    /// (<see cref="ObjectDisposedException"/>), the path is not null, and it holds no NUL character. A NUL cannot be
    /// part of a Linux pathname (the C string ends there; the kernel never sees what follows), and .NET's path APIs
    /// refuse it in some places and not others, so every member refuses it the same way: an
    /// <see cref="ArgumentException"/> naming the parameter and the dcache, with nothing walked, asked of the file
    /// system, cached or invalidated. (A single component with a NUL passed to <see cref="Lookup"/> is simply not
    /// cached, and <see cref="Alloc"/> and <see cref="Move"/> refuse it as an invalid name.)
    /// </summary>
    private void CheckPath(string path, string paramName)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(path, paramName);
        int nul = path.IndexOf('\0');
        if (nul >= 0)
            throw new ArgumentException($"dcache {RootPath}: '{path.Replace("\0", "\\0", StringComparison.Ordinal)}' holds a NUL character " +
                $"at {nul}; a path cannot contain one", paramName);
    }

    /// <summary>
    /// The path relative to the root, '/'-separated, without "." or ".." components or a trailing '/', after
    /// <see cref="CheckPath"/>. <paramref name="paramName"/> is the caller's parameter, named by the exceptions.
    /// </summary>
    private string Relative(string path, string paramName)
    {
        CheckPath(path, paramName);   // every path operation starts here
        bool rooted = Path.IsPathRooted(path);
        if (!rooted && !HasDotComponent(path)) return path.EndsWith('/') ? path.TrimEnd('/') : path;
        string full = Path.GetFullPath(rooted ? path : Path.Join(RootPath, path));
        if (full == RootPath || full + "/" == RootPath) return "";
        string prefix = RootPath.EndsWith('/') ? RootPath : RootPath + "/";
        if (!full.StartsWith(prefix, StringComparison.Ordinal))
            throw new ArgumentException($"'{path}' is not under the dcache root {RootPath}", paramName);
        return full[prefix.Length..].TrimEnd('/');
    }

    private static bool HasDotComponent(ReadOnlySpan<char> path)
    {
        foreach (Range part in path.Split('/'))
            if (path[part] is "." or "..") return true;
        return false;
    }
}
