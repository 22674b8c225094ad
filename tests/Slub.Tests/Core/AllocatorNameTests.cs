using System.Text.RegularExpressions;

namespace Slub.Tests.Core;

/// <summary><see cref="SlabAllocator.Name"/>: what tells the allocators of one process apart in their metrics.</summary>
public class AllocatorNameTests
{
    [Fact]
    public void AGivenNameIsKept()
    {
        using var a = new SlabAllocator(new SlabOptions { Name = "sessions", BytesPerNode = 4 << 20, Cpus = 1, SlubDebug = "-" });
        Assert.Equal("sessions", a.Name);
    }

    private static int Ordinal(string name)
    {
        var m = Regex.Match(name, @"^slab(?:-([0-9]+))?$");
        Assert.True(m.Success, $"default name '{name}'");
        return m.Groups[1].Success ? int.Parse(m.Groups[1].Value) : 1;
    }

    [Fact]
    public void DefaultNamesFollowCreationOrderAndDiffer()
    {
        // Other tests create allocators in parallel, so only the order and the form are certain, not the numbers.
        using var a = TestAllocator.Create();
        using var b = TestAllocator.Create();
        int na = Ordinal(a.Name), nb = Ordinal(b.Name);
        Assert.True(nb > na, $"{a.Name} then {b.Name}");
        Assert.NotEqual(a.Name, b.Name);
    }

    [Fact]
    public void TheSharedAllocatorIsNamedShared() => Assert.Equal("shared", SlabAllocator.Shared.Name);

    [Theory]
    [InlineData("")]
    [InlineData("  ")]
    public void AnEmptyNameIsRefused(string name)
    {
        var e = Assert.Throws<ArgumentException>(() => new SlabAllocator(new SlabOptions { Name = name, BytesPerNode = 4 << 20, Cpus = 1 }));
        Assert.Equal("options", e.ParamName);
        Assert.Contains("Name", e.Message);
    }
}
