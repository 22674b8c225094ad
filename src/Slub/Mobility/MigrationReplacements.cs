using System.Buffers;
using System.Runtime.CompilerServices;

namespace Slub;

/// <summary>
/// The replacements of one migrate call, allocated up front in one <see cref="KmemCache.AllocBulk"/> (on the
/// defragmenting thread, one pass over the core's reserved target slab) and handed out one by one; disposing
/// gives back the ones not taken. The way <see cref="MigrateCallback"/> advises a moving callback to allocate.
/// </summary>
/// <remarks>
/// <para>Use it with <c>using</c> inside the callback, with a stack buffer for the common case:
/// <c>using var fresh = new MigrationReplacements(cache, objects.Length, node, stackalloc nint[Math.Min(objects.Length, 256)]);</c> — a
/// call offering more objects than the buffer holds rents a pooled array instead.</para>
/// <para>When memory runs out the batch holds fewer than asked for: <see cref="TryTake"/> then fails, and the
/// object it was meant for should stay where it is (<see cref="MigrateResult.Later"/>).</para>
/// <para>On a defrag run's thread, each replacement handed out also asks for the lines the run needs next (a
/// target slot further on, an object of a source further on), so those misses come as an even stream at the
/// pace the callback copies (<see cref="KmemCache.PaceMigration"/>).</para>
/// <para>Not thread-safe: one migrate call owns it.</para>
/// </remarks>
public ref struct MigrationReplacements
{
    private readonly KmemCache _cache;
    private readonly Span<nint> _objects;
    private nint[]? _rented;
    private readonly int _allocated;
    private int _taken;
    private readonly MigrationContext? _paced;

    /// <summary>Allocates up to <paramref name="count"/> objects of <paramref name="cache"/> on <paramref name="node"/> (-1: any). Not thread-safe: one migrate call owns the batch.</summary>
    /// <param name="cache">The cache being defragmented.</param>
    /// <param name="count">How many replacements the call may need: its number of objects.</param>
    /// <param name="node">The node the migrate call was given.</param>
    /// <param name="buffer">Where to keep them when <paramref name="count"/> fits (a <c>stackalloc</c>); otherwise a pooled array is rented.</param>
    /// <exception cref="ArgumentNullException"><paramref name="cache"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // a defrag run calls it once per slab: tier 0 would run for its first shrinks
    public MigrationReplacements(KmemCache cache, int count, int node, Span<nint> buffer)
    {
        ArgumentNullException.ThrowIfNull(cache);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        _cache = cache;
        if (count <= buffer.Length) _objects = buffer[..count];
        else
        {
            _rented = ArrayPool<nint>.Shared.Rent(count);
            _objects = _rented.AsSpan(0, count);
        }
        _allocated = cache.AllocBulkCore(_objects, node, pace: true, out _paced);
    }

    /// <summary>Replacements not taken yet.</summary>
    public readonly int Remaining => _allocated - _taken;

    /// <summary>The next replacement, or false when the batch is used up (memory ran out for the rest). Not thread-safe: one migrate call owns the batch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryTake(out nint replacement)
    {
        if (_taken == _allocated)
        {
            replacement = 0;
            return false;
        }
        replacement = _objects[_taken++];
        if (_paced is not null) _cache.PaceMigration(_paced);
        return true;
    }

    /// <summary>Frees the replacements not taken and returns a rented array. Safe to call more than once. Not thread-safe: one migrate call owns the batch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // as the constructor
    public void Dispose()
    {
        if (_taken < _allocated) _cache.FreeBulk(_objects[_taken.._allocated]);
        _taken = _allocated;
        if (_rented is not null)
        {
            ArrayPool<nint>.Shared.Return(_rented);
            _rented = null;
        }
    }
}
