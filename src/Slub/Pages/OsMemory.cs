using System.Runtime.InteropServices;

namespace Slub.Pages;

/// <summary>
/// The only place that talks to the operating system about memory: reserve an address range, give pages
/// back, bind a range to a NUMA node, and read the process's resident set size.
/// </summary>
/// <remarks>
/// On Linux the arena is an anonymous <c>mmap</c> with <c>MAP_NORESERVE</c>: address space only, pages are
/// faulted in on first touch and handed back with <c>madvise(MADV_DONTNEED)</c>, so freeing slabs really
/// lowers the resident set. Elsewhere the arena is one committed aligned block and "giving back" is a
/// no-op; everything else behaves the same.
/// </remarks>
internal static unsafe partial class OsMemory
{
    public const int PageShift = 12;
    public const int PageSize = 1 << PageShift;

    private const int ProtRead = 0x1, ProtWrite = 0x2;
    private const int MapPrivate = 0x02, MapAnonymous = 0x20, MapNoReserve = 0x4000;
    private const int MadvDontNeed = 4;
    private const int MpolBind = 2;

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int munmap(nint addr, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int madvise(nint addr, nuint length, int advice);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, nint a1, nuint a2, long a3, ulong* a4, ulong a5, ulong a6);

    /// <summary>Reserves <paramref name="bytes"/> of zero-filled address space aligned to <paramref name="alignment"/>.</summary>
    public static nint Reserve(nuint bytes, nuint alignment)
    {
        if (OperatingSystem.IsLinux())
        {
            // Over-reserve by one alignment unit and trim both ends so the block starts aligned: buddy
            // arithmetic (pfn ^ 1 << order) needs the arena aligned to its largest block.
            nuint total = bytes + alignment;
            nint raw = mmap(0, total, ProtRead | ProtWrite, MapPrivate | MapAnonymous | MapNoReserve, -1, 0);
            if (raw == -1)
                throw new OutOfMemoryException($"mmap of {total} bytes failed (errno {Marshal.GetLastPInvokeError()})");
            nint aligned = (nint)(((nuint)raw + alignment - 1) & ~(alignment - 1));
            nuint head = (nuint)(aligned - raw);
            if (head != 0) munmap(raw, head);
            nuint tail = total - head - bytes;
            if (tail != 0) munmap(aligned + (nint)bytes, tail);
            return aligned;
        }
        void* p = NativeMemory.AlignedAlloc(bytes, alignment);
        NativeMemory.Clear(p, bytes);
        return (nint)p;
    }

    public static void Release(nint address, nuint bytes)
    {
        if (OperatingSystem.IsLinux()) munmap(address, bytes);
        else NativeMemory.AlignedFree((void*)address);
    }

    /// <summary>Hands the pages of a freed block back to the OS; the range reads as zeros afterwards.</summary>
    public static void Discard(nint address, nuint bytes)
    {
        if (OperatingSystem.IsLinux()) madvise(address, bytes, MadvDontNeed);
    }

    /// <summary>Binds a range to one NUMA node (mbind MPOL_BIND). Returns false where unsupported.</summary>
    public static bool BindToNode(nint address, nuint bytes, int node)
    {
        if (!OperatingSystem.IsLinux() || node < 0 || node >= 64) return false;
        long nr = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 237,
            Architecture.Arm64 => 235,
            _ => -1,
        };
        if (nr < 0) return false;
        ulong mask = 1UL << node;
        return syscall(nr, address, bytes, MpolBind, &mask, 64, 0) == 0;
    }

    /// <summary>The process's resident set size in bytes (Linux /proc/self/statm), or the working set elsewhere.</summary>
    public static long ResidentBytes()
    {
        try
        {
            if (OperatingSystem.IsLinux())
            {
                string statm = File.ReadAllText("/proc/self/statm");
                string[] parts = statm.Split(' ');
                return long.Parse(parts[1]) * Environment.SystemPageSize;
            }
        }
        catch (IOException) { }
        return Environment.WorkingSet;
    }
}
