namespace Slub.Sysfs;

/// <summary>The error numbers an attribute read or write can fail with, named as in errno.h.</summary>
public enum Errno
{
    EPERM = 1, ENOENT = 2, EIO = 5, ENOMEM = 12, EBUSY = 16, EACCES = 13, EINVAL = 22, ERANGE = 34,
}

/// <summary>A sysfs-style attribute operation failed; <see cref="Errno"/> is the kernel's error kind. Nothing was changed.</summary>
public sealed class SysfsException : IOException
{
    public Errno Errno { get; }
    public string Path { get; }

    public SysfsException(Errno errno, string path, string message)
        : base($"{path}: {message} ({errno})")
    {
        Errno = errno;
        Path = path;
    }
}
