using System.Numerics;
using System.Runtime.CompilerServices;

namespace Slub;

// The batched side of migration (see MigrationContext): replacements from a reserved target slab, and the
// old objects returned to their source slab in one step after each migrate call.
public sealed unsafe partial class KmemCache
{
    /// <summary>
    /// A replacement for a migrate callback on the defragmenting thread: the next free slot of the reserved
    /// target, reserving the next target (fullest partial slab of the node first, else a new slab) when it
    /// runs out. Returns 0 when no target can be had; the caller then takes the ordinary path.
    /// </summary>
    private nint TakeReserved(MigrationContext ctx)
    {
        while (true)
        {
            if (ctx.Target is { } t)
            {
                for (; ctx.Word < ctx.Words; ctx.Word++)
                {
                    ulong bits = ctx.Slots[ctx.Word];
                    if (bits == 0) continue;
                    ctx.Slots[ctx.Word] = bits & (bits - 1);
                    int i = (ctx.Word << 6) + BitOperations.TrailingZeroCount(bits);
                    nint obj = t.FirstObject + (nint)i * _size;
                    // The next slot handed out is in the same word or the next: ask for its line now.
                    if (System.Runtime.Intrinsics.X86.Sse.IsSupported && (bits &= bits - 1) != 0)
                        System.Runtime.Intrinsics.X86.Sse.Prefetch0((void*)(t.FirstObject + (nint)((ctx.Word << 6) + BitOperations.TrailingZeroCount(bits)) * _size));
                    return obj;
                }
            }
            if (ctx.Exhausted || !ReserveTarget(ctx)) return 0;
        }
    }

    /// <summary>Releases the current target and reserves the next one. False when none can be had (marks the context exhausted).</summary>
    private bool ReserveTarget(MigrationContext ctx)
    {
        ReleaseTarget(ctx);
        var n = _nodes[ctx.Node];
        bool unmapped = false;
        lock (n.ListLock)
        {
            // The head is the fullest partial slab after a defrag pass sorted the list.
            int tries = 0;
            for (var s = n.Partial.Head; s is not null && tries < 8; s = s.Next, tries++)
            {
                if (s.FreeMap is null) { unmapped = true; continue; }   // made before mobility: ordinary path
                if (!SpinLockWord.TryEnter(ref s.LockWord)) continue;
                n.Partial.Remove(s);
                TakeAllSlots(ctx, s);
                SpinLockWord.Exit(ref s.LockWord);
                return true;
            }
        }
        if (unmapped || _debug) { ctx.Exhausted = true; return false; }
        var fresh = NewSlab(ctx.Node, exactNode: false);
        if (fresh is null) { ctx.Exhausted = true; return false; }
        SpinLockWord.Enter(ref fresh.LockWord);
        TakeAllSlots(ctx, fresh);
        SpinLockWord.Exit(ref fresh.LockWord);
        return true;
    }

    /// <summary>Takes every slot on <paramref name="s"/>'s free list into the context, as a CPU takes a slab's free list. Slab lock held.</summary>
    private static void TakeAllSlots(MigrationContext ctx, Slab s)
    {
        var map = s.FreeMap!;
        if (ctx.Slots.Length < map.Length) ctx.Slots = new ulong[map.Length];
        map.AsSpan().CopyTo(ctx.Slots);
        map.AsSpan().Clear();
        s.Freelist = 0;
        s.Inuse = s.Objects;
        s.Frozen = true;
        s.List = SlabList.Reserved;
        ctx.Target = s;
        ctx.Word = 0;
        ctx.Words = map.Length;
    }

    /// <summary>
    /// Gives the reserved target back: its unhanded slots go onto its free list (with any objects freed into
    /// it meanwhile), then it goes to the head of the partial list (it was the fullest), the full list, or
    /// is discarded when empty and the node has enough partial slabs — as a deactivated CPU slab does.
    /// </summary>
    private void ReleaseTarget(MigrationContext ctx)
    {
        var s = ctx.Target;
        if (s is null) return;
        ctx.Target = null;
        var n = _nodes[s.Node];
        bool discard = false;
        lock (n.ListLock)
        {
            SpinLockWord.Enter(ref s.LockWord);
            int returned = 0;
            for (int w = ctx.Word; w < ctx.Words; w++)
            {
                for (ulong bits = ctx.Slots[w]; bits != 0; bits &= bits - 1)
                {
                    nint obj = s.FirstObject + (nint)((w << 6) + BitOperations.TrailingZeroCount(bits)) * _size;
                    *(nint*)(obj + _fpOffset) = s.Freelist;
                    s.Freelist = obj;
                    s.MarkFree(obj);
                    returned++;
                }
                ctx.Slots[w] = 0;
            }
            s.Inuse -= returned;
            s.Frozen = false;
            if (s.Inuse == 0 && n.Partial.Count >= MinPartial) { s.List = SlabList.None; discard = true; }
            else if (s.Freelist != 0) { s.List = SlabList.Partial; n.Partial.AddHead(s); }
            else AddFull(n, s);
            SpinLockWord.Exit(ref s.LockWord);
        }
        if (discard) DiscardSlab(s);
    }

    /// <summary>
    /// After a migrate call: the objects of the source slab the callback freed go onto its free list in one
    /// step, under one slab lock. Throws <see cref="InvalidFreeException"/> for an object that a concurrent
    /// free had already returned (a double free); the others are applied first.
    /// </summary>
    private void ApplyDeferredFrees(MigrationContext ctx)
    {
        var s = ctx.Source;
        if (s is null) return;
        ctx.Source = null;
        int count = ctx.DeferredCount;
        ctx.DeferredCount = 0;
        ctx.DeferredMap.AsSpan().Clear();
        if (count == 0) return;
        nint doubleFree = 0;
        SpinLockWord.Enter(ref s.LockWord);
        int applied = 0;
        for (int k = 0; k < count; k++)
        {
            nint obj = ctx.Deferred[k];
            if (s.IsMarkedFree(s.SlotOf(obj))) { doubleFree = obj; continue; }
            *(nint*)(obj + _fpOffset) = s.Freelist;
            s.Freelist = obj;
            s.MarkFree(obj);
            applied++;
        }
        s.Inuse -= applied;
        SpinLockWord.Exit(ref s.LockWord);
        if (doubleFree != 0)
            throw new InvalidFreeException(Name, doubleFree, $"kmem_cache_free({Name}): double free of object 0x{doubleFree:x} (freed by migrate and by another thread)");
    }

    /// <summary>A free on the defragmenting thread into the slab its migrate call is emptying: deferred. Otherwise the isolated-slab path.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void FreeIsolated(Slab slab, nint obj)
    {
        if (MigrationContext.Current is { } ctx && ctx.Source == slab && ctx.Cache == this)
        {
            ctx.Defer(slab, obj);
            return;
        }
        if (FreeToIsolated(slab, obj)) return;
        FreeTo(_cpus[_allocator.CurrentCpu()], obj, slab);
    }
}
