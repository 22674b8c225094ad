using System.Net.Sockets;
using Slub.Sysfs;

namespace Slub.Tests.Sysfs;

/// <summary>What the live endpoint does with what it finds at its socket path (<c>slub test-module --socket PATH</c>).</summary>
public sealed class LiveEndpointSocketPathTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("slub-sockpath-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void ARegularFileAtThePathIsNeverDeleted()
    {
        // Only a socket nobody listens on is stale; a user's file given by mistake must survive.
        using var a = TestAllocator.Create();
        string path = Path.Combine(_dir.FullName, "notes.txt");
        File.WriteAllText(path, "precious");
        var e = Assert.Throws<IOException>(() => new LiveEndpoint(a.Sysfs, false, path));
        Assert.Contains(path, e.Message);
        Assert.Contains("not a socket", e.Message);
        Assert.Equal("precious", File.ReadAllText(path));
    }

    [Fact]
    public void ADirectoryAtThePathIsNamed()
    {
        using var a = TestAllocator.Create();
        var e = Assert.Throws<IOException>(() => new LiveEndpoint(a.Sysfs, false, _dir.FullName));
        Assert.Contains(_dir.FullName, e.Message);
        Assert.Contains("not a socket", e.Message);
    }

    [Fact]
    public void AMissingDirectoryIsNamed()
    {
        using var a = TestAllocator.Create();
        string path = Path.Combine(_dir.FullName, "no-such-dir", "x.sock");
        var e = Assert.Throws<IOException>(() => new LiveEndpoint(a.Sysfs, false, path));
        Assert.Contains(path, e.Message);
        Assert.Contains("no directory", e.Message);
    }

    [Fact]
    public void ASocketLeftByADeadProcessIsReplaced()
    {
        using var a = TestAllocator.Create();
        string path = Path.Combine(_dir.FullName, "stale.sock");
        StaleSocket(path);
        using var ep = new LiveEndpoint(a.Sysfs, false, path);
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Connect(new UnixDomainSocketEndPoint(path));   // ours now
        Assert.True(s.Connected);
    }

    /// <summary>Leaves a socket file at <paramref name="path"/> that nothing listens on, as a killed process does.</summary>
    internal static void StaleSocket(string path)
    {
        string bound = path + ".tmp";
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Bind(new UnixDomainSocketEndPoint(bound));
        File.Move(bound, path);   // the socket's dispose unlinks the old name only
    }
}
