using Slub.Sysfs;

namespace Slub.Tests.Faults;

/// <summary>Inputs the fuzz harness's oracles flagged (fuzz/Slub.Fuzz), kept as regression tests.</summary>
public class HostileInputRegressionTests
{
    [Theory]
    [InlineData("N1\n\n")]      // `$` in the move syntax matched before the second newline
    [InlineData("N0 N1\n\n")]
    [InlineData("1\n\n")]
    public void MoveRefusesMoreThanOneTrailingNewline(string value)
    {
        using var a = TestAllocator.Create(nodes: 2);
        var t = new MovableHandleTable(a, "mv_strict", 32);
        var handles = Enumerable.Range(0, 500).Select(i => t.Allocate(0)).ToList();
        var where = handles.ToDictionary(h => h, t.AddressOf);
        var e = Assert.Throws<SysfsException>(() => a.Sysfs.Write("mv_strict/move", value));
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.All(handles, h => Assert.Equal(where[h], t.AddressOf(h)));   // nothing moved
        a.Sysfs.Write("mv_strict/move", "N1\n");                           // one newline is fine
        Assert.All(handles, h => Assert.Equal(1, a.Pages.NodeOf(t.AddressOf(h))));
    }
}
