using System.Buffers.Binary;
using System.Text;

namespace Slub.Dcache;

/// <summary>
/// Dentry names: UTF-8 bytes, hashed with the parent's address as salt (as the kernel's
/// <c>full_name_hash(parent, …)</c> does, so a child's bucket depends on its parent), stored inline up to
/// <see cref="DentryData.InlineNameLength"/> − 1 bytes and in a kmalloc'ed buffer beyond that.
/// </summary>
internal static unsafe class DentryName
{
    /// <summary>NAME_MAX: longest component a file system accepts.</summary>
    public const int MaxLength = 255;

    /// <summary>
    /// Hash of <paramref name="name"/> under <paramref name="parent"/>: eight bytes at a time, multiply-xorshift
    /// mixing, then folded to 32 bits. (Our own mix; only the salting by parent follows the kernel.)
    /// </summary>
    public static uint Hash(nint parent, ReadOnlySpan<byte> name)
    {
        ulong h = (ulong)parent * 0x9E3779B97F4A7C15UL;
        int i = 0;
        for (; i + 8 <= name.Length; i += 8)
        {
            h = (h ^ BinaryPrimitives.ReadUInt64LittleEndian(name[i..])) * 0xFF51AFD7ED558CCDUL;
            h ^= h >> 29;
        }
        ulong tail = 0;
        for (int k = 0; i < name.Length; i++, k += 8) tail |= (ulong)name[i] << k;
        h = (h ^ tail ^ ((ulong)name.Length << 56)) * 0xC4CEB9FE1A85EC53UL;
        h ^= h >> 32;
        return (uint)h;
    }

    /// <summary>Encodes a component to UTF-8 into <paramref name="buffer"/>; returns the length, or -1 if it does not fit or holds NUL/'/'.</summary>
    /// <remarks>
    /// A component of at most <see cref="MaxLength"/> ASCII characters other than NUL and '/' (the common case)
    /// is narrowed in one scalar pass (a name is a few dozen characters: too short for the vectorised
    /// converters to pay off); any other goes through the checks and the UTF-8 encoder. Both give the same bytes.
    /// </remarks>
    public static int Encode(ReadOnlySpan<char> component, Span<byte> buffer)
    {
        if (component.Length <= MaxLength && component.Length <= buffer.Length)
        {
            int i = 0;
            for (; i < component.Length; i++)
            {
                char c = component[i];
                if (c - 1u >= 0x7Fu || c == '/') break;   // NUL, '/' or not ASCII: the slow path decides
                buffer[i] = (byte)c;
            }
            if (i == component.Length) return i;
        }
        if (component.IndexOfAny('\0', '/') >= 0) return -1;
        if (!Encoding.UTF8.TryGetBytes(component, buffer, out int written)) return -1;
        return written;
    }

    /// <summary>True if dentry <paramref name="d"/> has exactly this name (caller guarantees the name is stable).</summary>
    public static bool Matches(DentryData* d, ReadOnlySpan<byte> name) =>
        d->Length == name.Length && new ReadOnlySpan<byte>((void*)d->Name, d->Length).SequenceEqual(name);

    /// <summary>
    /// <see cref="Matches"/> for a lock-free reader, whose dentry may be renamed while it compares (the caller
    /// validates the answer against the seqcounts afterwards): it must only never read outside the name's
    /// storage. A rename writes the name pointer and the length one after the other, so the two may not belong
    /// together: an inline name is compared only if <paramref name="name"/> fits inline (the bytes read stay in
    /// the dentry); an external buffer is never rewritten and ends with a NUL, which <paramref name="name"/>
    /// never holds, so comparing byte by byte stops at the buffer's end at the latest.
    /// </summary>
    public static bool MatchesRcu(DentryData* d, ReadOnlySpan<byte> name)
    {
        if (Volatile.Read(ref d->Length) != name.Length) return false;
        byte* s = (byte*)Volatile.Read(ref d->Name);   // acquire: an external buffer's bytes were written before it was published
        if (s == d->InlineName)
        {
            if (name.Length >= DentryData.InlineNameLength) return false;
            return new ReadOnlySpan<byte>(s, name.Length).SequenceEqual(name);
        }
        if (s == null) return false;
        for (int i = 0; i < name.Length; i++)
            if (s[i] != name[i]) return false;
        return true;
    }

    /// <summary>Copies a name into a fresh dentry (<c>__d_alloc</c>'s name part): inline, or kmalloc'ed when too long.</summary>
    public static void Store(Kmalloc kmalloc, DentryData* d, ReadOnlySpan<byte> name, nint external)
    {
        if (external != 0)
        {
            name.CopyTo(new Span<byte>((void*)external, name.Length));
            ((byte*)external)[name.Length] = 0;
            Volatile.Write(ref d->Name, external);   // lock-free readers see the bytes before the pointer
            d->Flags |= (uint)DentryFlags.ExternalName;
        }
        else
        {
            byte* inline = d->InlineName;
            name.CopyTo(new Span<byte>(inline, DentryData.InlineNameLength));
            inline[name.Length] = 0;
            Volatile.Write(ref d->Name, (nint)inline);
            d->Flags &= ~(uint)DentryFlags.ExternalName;
        }
        d->Length = name.Length;
    }

    /// <summary>Allocates external storage for a name that does not fit inline, or returns 0 when it fits.</summary>
    public static nint AllocExternal(Kmalloc kmalloc, int length) =>
        length < DentryData.InlineNameLength ? 0 : kmalloc.Alloc(length + 1);

    /// <summary>The external name buffer of <paramref name="d"/>, or 0 when its name is inline.</summary>
    public static nint External(DentryData* d) =>
        (d->Flags & (uint)DentryFlags.ExternalName) != 0 ? d->Name : 0;

    public static string ToString(DentryData* d) => Encoding.UTF8.GetString((byte*)d->Name, d->Length);
}
