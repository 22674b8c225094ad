using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Slub.Sysfs;

/// <summary>
/// Serves a process's slab attribute tree to other processes over a Unix domain socket, so that
/// <c>slub slabinfo --pid PID</c> (or the test-module suite) can read and write attributes of a live program.
/// </summary>
/// <remarks>
/// <para>Socket: <c>$TMPDIR/slub-&lt;pid&gt;.sock</c>, mode 0600; a peer whose uid differs from ours is
/// refused (SO_PEERCRED). Writes are refused with EPERM unless the owner enabled them.</para>
/// <para>Protocol (UTF-8, one request per line, many per connection; documented in docs/formats.md):
/// <c>LIST</c> → <c>OK n</c> + n bytes of <c>d name</c> / <c>l name target</c> lines;
/// <c>READ cache/attr</c> → <c>OK n</c> + n bytes, or <c>ERR CODE message</c>;
/// <c>WRITE cache/attr n</c> + n bytes → <c>OK 0</c> or <c>ERR CODE message</c>.
/// Requests longer than 4096 bytes or payloads above 64 KiB are refused and the connection closed.</para>
/// <para>Thread-safety: start/stop from any thread; each connection is served on the thread pool.</para>
/// </remarks>
public sealed partial class LiveEndpoint : IDisposable
{
    /// <summary>Protocol limits in bytes: <see cref="MaxLine"/>, the longest request line (a longer one closes the connection);
    /// <see cref="MaxPayload"/>, the largest <c>WRITE</c> payload (a larger one gets EINVAL and the connection closes).</summary>
    public const int MaxLine = 4096, MaxPayload = 64 * 1024;

    private readonly SlabSysfs _sysfs;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private int _disposed;
    private readonly Dictionary<string, (Func<string>? Read, Action<string>? Write)> _extra = new(StringComparer.Ordinal);

    /// <summary>Path of the socket file.</summary>
    public string SocketPath { get; }

    /// <summary>Whether peers may write attributes.</summary>
    public bool AllowWrites { get; set; }

    /// <summary>The socket path a process with this id listens on.</summary>
    public static string PathFor(int pid) => Path.Combine(Path.GetTempPath(), $"slub-{pid}.sock");

    /// <summary>Binds the socket (mode 0600 on Unix), listens and starts accepting on the thread pool.
    /// <see cref="SlabAllocator.OpenLiveEndpoint"/> is the usual way to get one. A file already at the path is
    /// replaced only if nothing listens on it (left by a process that died); a live one is an error.</summary>
    /// <exception cref="IOException">Another endpoint listens on the path: by default the path is per process, so a
    /// second allocator in the same process needs its own <paramref name="socketPath"/>.</exception>
    /// <param name="sysfs">The attribute tree to serve.</param>
    /// <param name="allowWrites">Whether peers may write attributes (<see cref="AllowWrites"/>).</param>
    /// <param name="socketPath">The socket file, or null for <see cref="PathFor"/> of this process.</param>
    public LiveEndpoint(SlabSysfs sysfs, bool allowWrites = false, string? socketPath = null)
    {
        _sysfs = sysfs;
        AllowWrites = allowWrites;
        SocketPath = socketPath ?? PathFor(Environment.ProcessId);
        RemoveStaleSocket(SocketPath);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try { _listener.Bind(new UnixDomainSocketEndPoint(SocketPath)); }
        catch (SocketException e)
        {
            _listener.Dispose();
            // The socket error's own text for a missing directory is "Cannot assign requested address".
            string? dir = Path.GetDirectoryName(Path.GetFullPath(SocketPath));
            string why = dir is not null && !Directory.Exists(dir) ? $"no directory {dir}" : e.Message;
            throw new IOException($"{SocketPath}: cannot create the live endpoint's socket: {why}", e);
        }
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(SocketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _listener.Listen(16);
        _ = Task.Run(AcceptLoop);
    }

    // Deleting a socket file unconditionally would steal the path from a live endpoint (its peers would then reach
    // us, and its Dispose would delete our file). So probe it: only a file nobody accepts on is removed. And only a
    // socket: connect() refuses a regular file the same way, and a path given by mistake must not cost a user a file.
    private static void RemoveStaleSocket(string path)
    {
        if (Directory.Exists(path))
            throw new IOException($"{path}: a directory is there, not a socket; give the endpoint a path of its own");
        if (!File.Exists(path)) return;
        if (!(IsSocket(path) ?? new FileInfo(path).Length == 0))
            throw new IOException($"{path}: a file that is not a socket is there; it is left alone: give the endpoint a path of its own");
        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try { probe.Connect(new UnixDomainSocketEndPoint(path)); }
            catch (SocketException)
            {
                File.Delete(path);
                return;
            }
        }
        throw new IOException($"{path}: another live endpoint is listening there; give this one its own socketPath");
    }

    /// <summary>Adds a file outside the slab tree (e.g. a test module's control file <c>smo/callfn</c>).</summary>
    public void AddFile(string path, Func<string>? read, Action<string>? write)
    {
        lock (_extra) _extra[path] = (read, write);
    }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await _listener.AcceptAsync(_stop.Token); }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException) { continue; }
            _ = Task.Run(() => Serve(client));
        }
    }

    private void Serve(Socket client)
    {
        using var _ = client;
        using var stream = new NetworkStream(client, ownsSocket: false);
        if (!PeerIsSameUser(client, OwnerUid))
        {
            try { Send(stream, "ERR EACCES peer is not the same user\n"); }
            catch (IOException) { }
            return;
        }
        ServeStream(stream);
    }

    /// <summary>
    /// Runs the protocol over <paramref name="stream"/> until it ends or a request is malformed (the part of a
    /// connection after the peer check; the fuzz target and tests drive it without a socket). Writes are
    /// still refused unless <see cref="AllowWrites"/>. Never throws for anything the peer sends.
    /// </summary>
    public void ServeStream(Stream stream)
    {
        try
        {
            while (ReadLine(stream) is { } line)
            {
                if (!Handle(stream, line)) return;
            }
        }
        catch (IOException) { }
        catch (SocketException) { }
    }

    /// <summary>The uid a peer must have: ours (a test may set another to act as a foreign peer).</summary>
    internal uint OwnerUid { get; set; } = OperatingSystem.IsWindows() ? 0 : geteuid();

    /// <summary>Handles one request; false closes the connection (malformed framing).</summary>
    private bool Handle(Stream stream, string line)
    {
        string[] parts = line.Split(' ');
        switch (parts[0])
        {
            case "LIST" when parts.Length == 1:
                var sb = new StringBuilder();
                foreach (var e in _sysfs.Entries())
                    sb.Append(e.IsLink ? $"l {e.Name} {e.Target}\n" : $"d {e.Name}\n");
                SendOk(stream, sb.ToString());
                return true;
            case "READ" when parts.Length == 2:
                Reply(stream, () => ReadPath(parts[1]));
                return true;
            case "WRITE" when parts.Length == 3:
                if (!int.TryParse(parts[2], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) || n > MaxPayload)
                {
                    Send(stream, "ERR EINVAL bad payload length\n");
                    return false;
                }
                byte[] payload = new byte[n];
                stream.ReadExactly(payload);
                string value = Encoding.UTF8.GetString(payload);
                if (!AllowWrites) { Send(stream, "ERR EPERM writes are not enabled in this process\n"); return true; }
                Reply(stream, () => { WritePath(parts[1], value); return ""; });
                return true;
            default:
                Send(stream, "ERR EINVAL unknown request\n");
                return true;
        }
    }

    private string ReadPath(string path)
    {
        (Func<string>? Read, Action<string>? Write) f;
        bool extra;
        lock (_extra) extra = _extra.TryGetValue(path, out f);
        if (!extra) return _sysfs.Read(path);
        return f.Read is null ? throw new SysfsException(Errno.EACCES, path, "write-only file") : f.Read();
    }

    private void WritePath(string path, string value)
    {
        (Func<string>? Read, Action<string>? Write) f;
        bool extra;
        lock (_extra) extra = _extra.TryGetValue(path, out f);
        if (!extra) { _sysfs.Write(path, value); return; }
        if (f.Write is null) throw new SysfsException(Errno.EIO, path, "read-only file");
        f.Write(value);
    }

    private static void Reply(Stream stream, Func<string> action)
    {
        string result;
        try { result = action(); }
        catch (SysfsException e) { Send(stream, $"ERR {e.Errno} {OneLine(e.Message)}\n"); return; }
        // The slab allocator running dry is an answer (ENOMEM), not a reason to drop the peer unanswered: it
        // derives from OutOfMemoryException, which the next clause leaves to the runtime.
        catch (SlabOutOfMemoryException e) { Send(stream, $"ERR ENOMEM {OneLine(e.Message)}\n"); return; }
        catch (Exception e) when (e is not OutOfMemoryException) { Send(stream, $"ERR EIO {OneLine(e.Message)}\n"); return; }
        SendOk(stream, result);
    }

    private static string OneLine(string s) => s.Replace('\n', ' ').Replace('\r', ' ');

    private static void SendOk(Stream stream, string body)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(body);
        Send(stream, $"OK {bytes.Length}\n");
        stream.Write(bytes);
    }

    private static void Send(Stream stream, string text) => stream.Write(Encoding.UTF8.GetBytes(text));

    /// <summary>Reads one '\n'-terminated line; null at end of stream. Throws IOException past <see cref="MaxLine"/>.</summary>
    internal static string? ReadLine(Stream stream)
    {
        var buf = new List<byte>(64);
        while (true)
        {
            int b = stream.ReadByte();
            if (b < 0) return buf.Count == 0 ? null : throw new IOException("connection closed mid-line");
            if (b == '\n') return Encoding.UTF8.GetString(buf.ToArray());
            if (buf.Count >= MaxLine) throw new IOException("request line too long");
            buf.Add((byte)b);
        }
    }

    [LibraryImport("libc")]
    private static partial uint geteuid();

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    /// <summary>Whether <paramref name="path"/> (not followed if a symlink) is a socket; null when it cannot be told
    /// (not Linux, no statx in the C library, or the call failed).</summary>
    private static unsafe bool? IsSocket(string path)
    {
        if (!OperatingSystem.IsLinux()) return null;
        const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100;
        const uint StatxType = 1;
        byte* buffer = stackalloc byte[256];   // struct statx, the same layout on every architecture
        try
        {
            if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType, buffer) != 0) return null;
        }
        catch (EntryPointNotFoundException) { return null; }
        ushort mode = *(ushort*)(buffer + 28);   // stx_mode
        return (mode & 0xF000) == 0xC000;        // S_IFSOCK
    }

    /// <summary>True if the peer of the connected Unix socket <paramref name="s"/> runs as <paramref name="uid"/> (SO_PEERCRED).</summary>
    internal static bool PeerIsSameUser(Socket s, uint uid)
    {
        if (!OperatingSystem.IsLinux()) return true;
        try
        {
            Span<byte> cred = stackalloc byte[12];   // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
            int len = s.GetRawSocketOption(1 /* SOL_SOCKET */, 17 /* SO_PEERCRED */, cred);
            if (len < 12) return false;
            return BitConverter.ToUInt32(cred[4..8]) == uid;
        }
        catch (SocketException) { return false; }
    }

    /// <summary>Stops accepting and closes the listening socket, which deletes the socket file; connections already open are served until they end. Safe to call more than once.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;   // a second call must not delete a successor's file
        _stop.Cancel();
        _listener.Dispose();   // .NET unlinks the file a socket bound when it disposes it: nothing else to delete
    }
}
