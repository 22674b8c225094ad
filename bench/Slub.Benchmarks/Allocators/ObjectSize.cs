namespace Slub.Benchmarks.Allocators;

/// <summary>The object size every allocator benchmark uses (issue: "hot, 64-byte objects").</summary>
public static class ObjectSize
{
    public const int Bytes = 64;
}
