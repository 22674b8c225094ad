using System.Numerics;
using System.Runtime.InteropServices;

namespace Slub.XArray;

/// <summary>
/// The leaf-directory blocks of one allocator's arrays (XArray.LeafDirectory.cs), kept type-stable: a block is
/// never given back to the native heap while the allocator lives. A retired block comes back here after its
/// grace period and is reused only as a directory block of the same length.
/// </summary>
/// <remarks>
/// <para><b>Why.</b> The plain load reads the directory without a read section (<c>XArray.TryLoadFast</c>):
/// the block it read the pointer to may be retired, freed and reused before it reads the entry. Because every
/// block stays a directory of its first length, that read stays inside the block and returns
/// <see cref="XArray.NoLeaf"/> or the node entry of a leaf of some array of this allocator (its memory is in the
/// allocator's arena, mapped until the allocator is disposed), so the slot read that follows cannot fault either;
/// the load's final check then throws away what it read. The kernel's <c>SLAB_TYPESAFE_BY_RCU</c> makes the same
/// bargain for slab objects.</para>
/// <para><b>Memory.</b> A pooled block is kept until a directory of the same length needs one or the allocator
/// is disposed: at most what this allocator's directories once held at the same time (for one growing array,
/// the blocks it outgrew, less than its current directory). Directories cost 8 bytes per 64 indices.</para>
/// <para><b>Thread-safety.</b> Thread-safe; <see cref="Rent"/> and <see cref="Return"/> take a short lock, a leaf:
/// <see cref="Rent"/> runs under an array's lock (a directory growing), <see cref="Return"/> in a reclaimer pass
/// with no lock held, and nothing is taken while it is held.</para>
/// </remarks>
internal sealed unsafe class XaDirectoryPool
{
    private readonly Stack<nint>[] _free = new Stack<nint>[64];   // by log2 of the block's length
    private readonly Lock _lock = new();
    private bool _disposed;

    /// <summary>Blocks in the pool (tests, memory figures).</summary>
    public int Pooled { get { lock (_lock) return _free.Sum(s => s?.Count ?? 0); } }

    /// <summary>A block of <paramref name="length"/> entries (a power of two), its length word set; the entries are the caller's to fill.</summary>
    public nint Rent(ulong length)
    {
        if (!BitOperations.IsPow2(length)) throw new ArgumentOutOfRangeException(nameof(length), length, "directory lengths are powers of two");
        int c = BitOperations.Log2(length);
        lock (_lock)
            if (_free[c] is { Count: > 0 } pooled) return pooled.Pop();
        nint block = (nint)NativeMemory.Alloc((nuint)((length + 1) * sizeof(ulong)));
        *(ulong*)block = length;   // never written again: a stale reader always finds this length
        return block;
    }

    /// <summary>
    /// <see cref="Return"/> as the reclaimer's free action for a retired block (one delegate for all).
    /// </summary>
    public Action<nint> ReturnAfterGracePeriod { get; }

    public XaDirectoryPool() => ReturnAfterGracePeriod = Return;

    /// <summary>Takes back a retired block after its grace period. Its entries should all be <see cref="XArray.NoLeaf"/> (a stale reader then falls back at once).</summary>
    public void Return(nint block)
    {
        int c = BitOperations.Log2(*(ulong*)block);
        lock (_lock)
        {
            if (!_disposed)
            {
                (_free[c] ??= new Stack<nint>()).Push(block);
                return;
            }
        }
        NativeMemory.Free((void*)block);   // the allocator is gone, and with it every reader's arena
    }

    /// <summary>Frees every pooled block; blocks returned later are freed at once. At the allocator's dispose, after its arrays were detached.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            foreach (var stack in _free)
                while (stack is { Count: > 0 }) NativeMemory.Free((void*)stack.Pop());
        }
    }
}
