namespace Slub.Sysfs;

/// <summary>The error numbers an attribute read or write can fail with, named as in errno.h.</summary>
public enum Errno
{
    /// <summary>Operation not permitted (1).</summary>
    EPERM = 1,
    /// <summary>No such file or directory (2): no such cache or attribute, or a malformed path.</summary>
    ENOENT = 2,
    /// <summary>I/O error (5): a write to a read-only attribute, as sysfs answers it.</summary>
    EIO = 5,
    /// <summary>Out of memory (12).</summary>
    ENOMEM = 12,
    /// <summary>Permission denied (13): a read of an attribute that cannot be read.</summary>
    EACCES = 13,
    /// <summary>Device or resource busy (16).</summary>
    EBUSY = 16,
    /// <summary>Invalid argument (22): a value or request the attribute does not accept.</summary>
    EINVAL = 22,
    /// <summary>Result out of range (34): a value outside the attribute's range.</summary>
    ERANGE = 34,
    /// <summary>Function not implemented (38): a read of <c>alloc_calls</c>/<c>free_calls</c> on a cache without store_user, as the kernel answers it.</summary>
    ENOSYS = 38,
}

/// <summary>A sysfs-style attribute operation failed; <see cref="Errno"/> is the kernel's error kind. Nothing was changed.</summary>
public sealed class SysfsException : IOException
{
    /// <summary>The error number, as the kernel would return it.</summary>
    public Errno Errno { get; }
    /// <summary>The attribute path the operation was on, e.g. <c>dentry/order</c>.</summary>
    public string Path { get; }

    /// <summary>Creates the exception; its message is <c>path: message (errno)</c>.</summary>
    /// <param name="errno">The error number.</param>
    /// <param name="path">The attribute path.</param>
    /// <param name="message">What went wrong.</param>
    public SysfsException(Errno errno, string path, string message)
        : base($"{path}: {message} ({errno})")
    {
        Errno = errno;
        Path = path;
    }
}
