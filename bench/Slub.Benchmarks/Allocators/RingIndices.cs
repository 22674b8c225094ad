using System.Runtime.InteropServices;

namespace Slub.Benchmarks.Allocators;

/// <summary>
/// Head and tail of <see cref="RemoteFreeHarness{TAlloc,THandle}"/>'s ring on separate cache lines, so the
/// producer's writes do not invalidate the consumer's line and vice versa (false sharing would be measured
/// as allocator cost). Not nested in the generic harness: generic types cannot have explicit layout.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 192)]
internal struct RingIndices
{
    /// <summary>Next slot the producer fills.</summary>
    [FieldOffset(64)] public long Head;

    /// <summary>Next slot the consumer frees.</summary>
    [FieldOffset(128)] public long Tail;
}
