using System.Net.Sockets;
using System.Text;
using Slub.Sysfs;

namespace Slub.Tests.Faults;

/// <summary>
/// The live endpoint against peers that misbehave, and the guards the existing protocol test does not reach:
/// a peer of another uid, framing violations, writes while disabled, allocator failures inside a handler.
/// </summary>
public class LiveEndpointHostileTests
{
    private static string SocketPath() => Path.Combine(Path.GetTempPath(), $"slub-hostile-{Guid.NewGuid():N}.sock");

    private static Socket Connect(string path)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Connect(new UnixDomainSocketEndPoint(path));
        s.ReceiveTimeout = 20_000;   // a hang fails the test instead of blocking the run
        return s;
    }

    /// <summary>Everything the endpoint sends until it closes the connection.</summary>
    private static string ReadToEnd(Stream ns)
    {
        using var ms = new MemoryStream();
        ns.CopyTo(ms);
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static string Serve(LiveEndpoint ep, string input)
    {
        var output = new MemoryStream();
        ep.ServeStream(new Duplex(new MemoryStream(Encoding.UTF8.GetBytes(input)), output));
        return Encoding.UTF8.GetString(output.ToArray());
    }

    [Fact]
    public void APeerOfAnotherUidIsRefusedBeforeAnyRequest()
    {
        using var a = TestAllocator.Create();
        a.CreateCache("guarded", 64, flags: SlabFlags.NoMerge);
        string sock = SocketPath();
        var ep = a.OpenLiveEndpoint(allowWrites: true, socketPath: sock);
        ep.OwnerUid += 1;   // we now look like a foreign peer to the endpoint
        using var s = Connect(sock);
        using var ns = new NetworkStream(s);
        Assert.Equal("ERR EACCES peer is not the same user\n", ReadToEnd(ns));   // answered, then closed
        try { ns.Write("WRITE guarded/defrag_used_ratio 2\n50"u8); } catch (IOException) { }
        Assert.Equal(30, a.FindCache("guarded")!.DefragUsedRatio);
    }

    [Fact]
    public void PeerCredentialsAreReadFromTheSocket()
    {
        string sock = SocketPath();
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(sock));
        listener.Listen(1);
        try
        {
            using var client = Connect(sock);
            using var server = listener.Accept();
            using var a = TestAllocator.Create();
            uint ownUid;
            using (var ep = new LiveEndpoint(a.Sysfs, false, SocketPath())) ownUid = ep.OwnerUid;   // geteuid()
            Assert.True(LiveEndpoint.PeerIsSameUser(server, ownUid));
            Assert.False(LiveEndpoint.PeerIsSameUser(server, ownUid + 1));
        }
        finally { File.Delete(sock); }
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]   // Unix socket file modes
    public void TheSocketFileIsPrivateReplacedWhenStaleAndRemovedOnDispose()
    {
        using var a = TestAllocator.Create();
        string sock = SocketPath();
        Sysfs.LiveEndpointSocketPathTests.StaleSocket(sock);   // a socket left by a process that died
        var ep = new LiveEndpoint(a.Sysfs, false, sock);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(sock));
        using (var s = Connect(sock))
        using (var ns = new NetworkStream(s))
        {
            ns.Write("LIST\n"u8);
            Assert.StartsWith("OK ", LiveEndpoint.ReadLine(ns));
        }
        ep.Dispose();
        Assert.False(File.Exists(sock));
    }

    [Fact]
    public void FramingViolationsCloseTheConnectionAndChangeNothing()
    {
        using var a = TestAllocator.Create();
        var c = a.CreateCache("framed", 64, flags: SlabFlags.NoMerge);
        var ep = a.OpenLiveEndpoint(allowWrites: true, socketPath: SocketPath());
        // A line longer than MaxLine: nothing is answered, nothing after it is read.
        Assert.Equal("", Serve(ep, new string('R', LiveEndpoint.MaxLine + 1) + "\nWRITE framed/defrag_used_ratio 2\n50"));
        // Bad payload lengths: refused, connection closed before the payload could be taken as a request.
        foreach (string len in new[] { "-1", "x", "65537", "+2", "2.0", "99999999999", "\u0662" })
            Assert.Equal("ERR EINVAL bad payload length\n", Serve(ep, $"WRITE framed/defrag_used_ratio {len}\nREAD framed/order\n"));
        // A payload cut short by the end of the stream: no answer, no write.
        Assert.Equal("", Serve(ep, "WRITE framed/defrag_used_ratio 3\n5"));
        // A request cut mid-line.
        Assert.Equal("", Serve(ep, "READ framed/ord"));
        Assert.Equal(30, c.DefragUsedRatio);
        // Unknown or malformed requests are answered and the connection goes on.
        Assert.Equal("ERR EINVAL unknown request\nERR EINVAL unknown request\nERR EINVAL unknown request\nOK 3\n64\n",
            Serve(ep, "list\nREAD\nLIST extra\nREAD framed/object_size\n"));
        // A non-ASCII path is just an unknown path.
        Assert.StartsWith("ERR ENOENT", Serve(ep, "READ fr\u00e9med/order\n"));
    }

    [Fact]
    public void DisabledWritesStillConsumeThePayloadSoTheStreamStaysInStep()
    {
        using var a = TestAllocator.Create();
        var c = a.CreateCache("instep", 64, flags: SlabFlags.NoMerge);
        var ep = a.OpenLiveEndpoint(allowWrites: false, socketPath: SocketPath());
        // The payload looks like a request; it must be swallowed as payload, not executed.
        string reply = Serve(ep, "WRITE instep/shrink 19\nREAD instep/order\n\nREAD instep/object_size\n");
        Assert.Equal("ERR EPERM writes are not enabled in this process\nOK 3\n64\n", reply);
        Assert.Equal(30, c.DefragUsedRatio);
    }

    [Fact]
    public void AnAllocatorOutOfMemoryInAHandlerIsAnsweredWithEnomem()
    {
        // Found while reviewing the endpoint for the fuzz target: SlabOutOfMemoryException derives from
        // OutOfMemoryException, which Reply let through, so the peer was dropped without an answer.
        using var a = TestAllocator.Create();
        var c = a.CreateCache("oom", 64, flags: SlabFlags.NoMerge);
        var ep = a.OpenLiveEndpoint(allowWrites: true, socketPath: SocketPath());
        ep.AddFile("mod/alloc", null, _ => c.Alloc());
        a.Faults.Slab.EveryNth = 1;
        string reply = Serve(ep, "WRITE mod/alloc 1\n1READ oom/object_size\n");
        Assert.StartsWith("ERR ENOMEM oom: out of memory", reply);
        Assert.EndsWith("\nOK 3\n64\n", reply);   // and the connection went on
        a.Faults.Reset();
        Assert.Equal("OK 0\n", Serve(ep, "WRITE mod/alloc 1\n1"));
    }

    private sealed class Duplex(Stream input, Stream output) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => input.Read(buffer, offset, count);
        public override void Write(byte[] buffer, int offset, int count) => output.Write(buffer, offset, count);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
