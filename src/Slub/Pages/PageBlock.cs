namespace Slub.Pages;

/// <summary>
/// The descriptor of an allocated block of page frames (the kernel's <c>struct page</c> of a compound page).
/// Every frame of the block maps to the same descriptor, so an address inside the block finds it in O(1).
/// Higher layers derive from it (a slab is a page block with slab state), which keeps the page allocator
/// ignorant of what the memory is used for.
/// <para>Thread-safety: the page allocator sets the public fields under its zone lock while it allocates or frees the
/// block; read them while you own the block (e.g. through <see cref="PageAllocator.OwnerOf"/> for memory you allocated).</para>
/// </summary>
public abstract class PageBlock
{
    /// <summary>Start address of the block.</summary>
    public nint Address { get; internal set; }

    /// <summary>Buddy order: the block is 2^Order frames.</summary>
    public int Order { get; internal set; }

    /// <summary>NUMA node whose arena holds the block.</summary>
    public int Node { get; internal set; }

    /// <summary>Frame number of the first frame inside its node's arena.</summary>
    public int Pfn { get; internal set; }

    /// <summary>Size of the block in bytes.</summary>
    public int Bytes => OsMemory.PageSize << Order;
}
