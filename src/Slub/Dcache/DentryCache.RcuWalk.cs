using System.Runtime.CompilerServices;
using Slub.Rcu;

namespace Slub.Dcache;

// The lock-free path walk (fs/namei.c's RCU-walk: __d_lookup_rcu, lookup_fast in LOOKUP_RCU mode, and
// complete_walk / legitimize_path for the last step). Its own code; the kernel is the reference for behaviour.
public sealed unsafe partial class DentryCache
{
    /// <summary>Dentries one component may visit in a chain before the walk gives up (a reader carried from chain to chain by renames).</summary>
    private const int MaxChainSteps = 4096;

    /// <summary>What the walk does with the dentry it ends on, once legitimised.</summary>
    private enum WalkFinish : byte
    {
        /// <summary>Nothing (<see cref="IsCached"/>).</summary>
        Peek,
        /// <summary>Mark it referenced if it is unused on the LRU, as a get/put pair would (<see cref="LookupPath(string)"/>).</summary>
        MarkReferenced,
        /// <summary>Take a reference (<see cref="Resolve"/>).</summary>
        TakeReference,
    }

    private long _rcuWalkRetries, _rcuWalkFallbacks;

    /// <summary>RCU-walks that failed validation (a seqcount moved, or the last dentry died) and fell back to the locked walk. For tests and tools.</summary>
    internal long RcuWalkRetries => Volatile.Read(ref _rcuWalkRetries);

    /// <summary>Test hook: runs inside the read section with the dentry the walk ended on, before it is legitimised.</summary>
    internal Action<nint>? BeforeLegitimizeHook;

    /// <summary>
    /// RCU-walk: follows <paramref name="rel"/> through the hash table with no lock and no reference, inside a read
    /// section of <see cref="_rcu"/> (so no dentry or name it reads is freed under it). Each dentry's
    /// <see cref="DentryData.Seq"/> is sampled when it is found (<see cref="DentryHashTable.FindRcu"/>, which skips
    /// dentries it reads as unhashed); a parent whose sample moved while its child was looked up ends the walk
    /// (<c>read_seqcount_retry</c>). The last dentry is legitimised (<see cref="Legitimate"/>) after a full fence — under
    /// its lock when there is something to write, else after the counter's atomic add: alive, its own sample
    /// unchanged — every unhash, kill, rename and change of kind of a dentry moves its d_seq, so it is still the
    /// hashed child it was found as, with the kind and inode read — and the rename sequence unchanged since the walk
    /// began (no dentry anywhere was renamed meanwhile). So each component was, at the moment it was found, the
    /// hashed child of that name of the one before, which was itself unchanged since it was found; those moments
    /// follow one another; and the answer was still true when it was legitimised: it is the answer of a walk that takes
    /// a reference on each component in turn (the ref walk) with its steps at those moments. Unhashes and kills
    /// anywhere else do not fail it (docs/dcache.md, "Locking"). Only then is
    /// <paramref name="finish"/> applied. False on a miss, an odd (in-progress) seqcount or a failed check: the
    /// caller walks again under the tree lock. <paramref name="end"/> is the last dentry (referenced only for
    /// <see cref="WalkFinish.TakeReference"/>). Counts lookups and hits as the locked walk does, on success only (a peek counts nothing);
    /// every false return but a peek's is counted as a fallback (<see cref="DcacheStatistics.RcuWalkFallbacks"/>).
    /// </summary>
    /// <remarks><paramref name="rel"/> may hold empty components, but no "." or ".." (<see cref="TryWalkable"/>).</remarks>
    [SkipLocalsInit]   // the name buffer is only read where Encode wrote it
    private bool TryRcuWalk(ReadOnlySpan<char> rel, WalkFinish finish, out nint end, out LookupResult result)
    {
        Span<byte> buf = stackalloc byte[DentryName.MaxLength * 3];
        end = 0;
        result = default;
        int components = 0;
        bool invalid = false;   // a validation failure (not a miss): counted in _rcuWalkRetries too
        bool answered = false;  // every other return is a fallback: counted in _rcuWalkFallbacks
        var reader = _rcu.EnterReadFast();
        try
        {
            uint renameSeq = SeqCount.ReadBegin(ref _renameSeq);
            if (SeqCount.IsWriting(renameSeq)) { invalid = true; return false; }
            nint cur = _root;
            uint seq = SeqCount.ReadBegin(ref ((DentryData*)cur)->Seq);
            bool complete = true;
            for (ReadOnlySpan<char> rest = rel; NextComponent(ref rest, out var component);)
            {
                var cd = (DentryData*)cur;
                if (cd->Kind != InodeKind.Directory) { complete = false; break; }
                int len = DentryName.Encode(component, buf);
                if (len <= 0 || len > DentryName.MaxLength) return false;
                var name = buf[..len];
                nint next = _hash.FindRcu(cur, DentryName.Hash(cur, name), name, MaxChainSteps, out uint nextSeq);
                if (next == 0) return false;
                // The child must be stable, and the parent unchanged while it was looked up: still the hashed child
                // it was found as, of the kind read above, when the child was read as its hashed child. (A parent
                // unhashed after this check is not noticed, as a ref walk holding it would not notice.)
                if (SeqCount.IsWriting(nextSeq) || !SeqCount.Recheck(ref cd->Seq, seq)) { invalid = true; return false; }
                cur = next;
                seq = nextSeq;
                components++;
            }
            BeforeLegitimizeHook?.Invoke(cur);
            var d = (DentryData*)cur;
            if (finish == WalkFinish.TakeReference
                || finish == WalkFinish.MarkReferenced && (Volatile.Read(ref d->Flags) & (uint)(DentryFlags.LruList | DentryFlags.Referenced)) == (uint)DentryFlags.LruList)
            {
                // Something to write: under the dentry's lock, whose interlocked exchange is a full fence between
                // the walk's loads and the checks (legitimize_path).
                Lock(d);
                if (!Legitimate(d, seq, renameSeq))
                {
                    Unlock(d);
                    invalid = true;
                    return false;
                }
                if (finish == WalkFinish.TakeReference) d->Count++;
                else if (d->Count == 0) d->Flags |= (uint)DentryFlags.Referenced;   // unused on the LRU: as a get/put pair would
                result = Answer(cur, 0, complete);
                Unlock(d);
            }
            else
            {
                // Nothing to write (a peek, or the bit is set or the dentry is not on the LRU): read the answer,
                // then a full fence — the counter's atomic add — then validate. A d_seq unchanged since the
                // dentry was found means its kind and inode were the ones read.
                result = Answer(cur, 0, complete);
                if (finish == WalkFinish.Peek) Interlocked.MemoryBarrier();
                else Interlocked.Add(ref _walkHits, components);
                if (!Legitimate(d, seq, renameSeq))
                {
                    if (finish != WalkFinish.Peek) Interlocked.Add(ref _walkHits, -components);   // the fallback counts its own walk
                    invalid = true;
                    return false;
                }
                end = cur;
                answered = true;
                return true;
            }
            end = cur;
            answered = true;
        }
        finally
        {
            EpochReclaimer.ExitReadFast(reader);
            if (!answered)
            {
                if (finish != WalkFinish.Peek) Interlocked.Increment(ref _rcuWalkFallbacks);
                if (invalid) Interlocked.Increment(ref _rcuWalkRetries);
            }
        }
        Interlocked.Add(ref _walkHits, components);
        return true;
    }

    /// <summary>
    /// <c>legitimize_path</c>'s checks on the dentry the walk ended on, after a full fence: alive
    /// (<c>lockref_get_not_dead</c>), not changed since it was found — its d_seq moves when it is unhashed, killed,
    /// renamed or changes kind, so no separate hashed check is needed (a dentry is found only when read as hashed,
    /// and the root is never unhashed) — and nothing anywhere renamed since the walk began.
    /// </summary>
    private bool Legitimate(DentryData* d, uint seq, uint renameSeq) =>
        Volatile.Read(ref d->Count) >= 0 && SeqCount.Unchanged(ref d->Seq, seq) && SeqCount.Unchanged(ref _renameSeq, renameSeq);
}
